"""A small pool of sending threads, each with its own transport connection.

Only the dispatcher's main thread touches the database; workers only talk SMTP.
``send_all`` keeps the order of its input in its output.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from dashboard.dispatch.transports import OutgoingEmail, SendResult, Transport, Unreachable


class RateLimiter:
    """At most ``rate`` sends per second across all workers (None: unlimited)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_slot = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(self.next_slot, now)
            self.next_slot = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class SenderPool:
    def __init__(
        self, make_transport: Callable[[], Transport], size: int, rate: float | None = None
    ):
        self.make_transport = make_transport
        self.size = max(1, size)
        self.limiter = RateLimiter(rate)
        self.local = threading.local()
        self.transports: list[Transport] = []
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="smtp")

    def open(self) -> None:
        """Fail fast with Unreachable before any recipient is touched."""
        self.executor.submit(lambda: self._transport().open()).result()

    def _transport(self) -> Transport:
        transport = getattr(self.local, "transport", None)
        if transport is None:
            transport = self.make_transport()
            self.local.transport = transport
            with self.lock:
                self.transports.append(transport)
        return transport

    def _send(self, email: OutgoingEmail) -> SendResult | Unreachable:
        self.limiter.wait()
        try:
            return self._transport().send(email)
        except Unreachable as error:
            return error

    def submit(self, emails: Sequence[OutgoingEmail]) -> list[Future[SendResult | Unreachable]]:
        return [self.executor.submit(self._send, email) for email in emails]

    def wait(self, futures: list[Future], tick: float, on_tick: Callable[[], None]) -> list:
        """Wait for every future, calling ``on_tick`` every ``tick`` seconds (lease heartbeats)."""
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=tick)
            if pending:
                on_tick()
        return [future.result() for future in futures]

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for transport in self.transports:
            with contextlib.suppress(Exception):  # closing must not mask the batch outcome
                transport.close()
        self.transports.clear()
