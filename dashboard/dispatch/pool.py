"""A small pool of sending threads, each with its own transport connection.

Only the dispatcher's main thread touches the database; the threads only talk to the
server. A chunk of payloads is cut into groups of the transport's ``group_size`` (one
payload for SMTP, up to a provider's batch size for an HTTP API); each group is one task
(and one step of the rate limit), and the results come back in the order of the payloads.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from dashboard.dispatch.transports import (
    Payload,
    SendResult,
    Transport,
    TransportSpec,
    Unreachable,
)


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


Result = SendResult | Unreachable


class SenderPool:
    def __init__(self, spec: TransportSpec, size: int, rate: float | None = None):
        self.make_transport = spec.make
        self.group_size = max(1, spec.group_size)
        self.size = max(1, size)
        self.limiter = RateLimiter(rate)
        self.local = threading.local()
        self.transports: list[Transport] = []
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="send")

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

    def _send(self, group: Sequence[Payload]) -> list[Result]:
        self.limiter.wait()
        try:
            return self._transport().send_group(group)
        except Unreachable as error:
            return [error] * len(group)

    def submit(self, payloads: Sequence[Payload]) -> list[Future[list[Result]]]:
        size = self.group_size
        return [
            self.executor.submit(self._send, payloads[start : start + size])
            for start in range(0, len(payloads), size)
        ]

    def wait(
        self, futures: list[Future[list[Result]]], tick: float, on_tick: Callable[[], object]
    ) -> list[Result]:
        """Every result in payload order, calling ``on_tick`` every ``tick`` seconds meanwhile
        (the lease heartbeats)."""
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=tick)
            if pending:
                on_tick()
        return [result for future in futures for result in future.result()]

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for transport in self.transports:
            with contextlib.suppress(Exception):  # closing must not mask the batch outcome
                transport.close()
        self.transports.clear()
