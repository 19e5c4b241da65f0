"""A small pool of sending threads, each with its own transport connection.

Only the dispatcher's main thread touches the database; the threads only talk to the
server. A chunk of payloads is cut into groups of the transport's ``group_size`` (one
payload for SMTP, up to a provider's batch size for an HTTP API); each group is one
request (and one step of the request rate), and the results come back in the order of
the payloads. With a rate each group is its own task, sent in its slot; without one, a
task per thread takes the next group until none is left (a task per e-mail cost the
main thread a submit and a wake-up per recipient). The rate is kept across processes
by the slots the main thread reserved in the database (``pacing.reserve_slots``): a
task waits for its slot before it sends.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from prometheus_client import Histogram

from dashboard.dispatch.transports import (
    Payload,
    SendResult,
    Transport,
    TransportSpec,
    Unreachable,
)

Result = SendResult | Unreachable

#: How long one request to the transport takes (an SMTP message, or a provider's batch
#: request), per transport. Kept in the process that sends: ``/metrics`` reads it from every
#: process in prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``).
SEND_SECONDS = Histogram(
    "dashboard_send_latency_seconds",
    "Time one request to the transport took (SMTP message or provider batch request).",
    ["transport"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=None,
)


def wait_until(moment: float | None) -> None:
    """Sleep until the wall-clock time ``moment`` (shared by every process on the host)."""
    if moment is not None:
        delay = moment - time.time()
        if delay > 0:
            time.sleep(delay)


class SenderPool:
    def __init__(self, spec: TransportSpec, size: int):
        self.make_transport = spec.make
        self.latency = SEND_SECONDS.labels(transport=spec.name)
        self.group_size = max(1, spec.group_size)
        self.size = max(1, size)
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

    def _send(self, group: Sequence[Payload], slot: float | None) -> list[Result]:
        wait_until(slot)
        started = time.perf_counter()
        try:
            return self._transport().send_group(group)
        except Unreachable as error:
            return [error] * len(group)
        finally:
            self.latency.observe(time.perf_counter() - started)

    def groups(self, payloads: Sequence[Payload]) -> list[Sequence[Payload]]:
        """``payloads`` cut into the requests the transport makes."""
        size = self.group_size
        return [payloads[first : first + size] for first in range(0, len(payloads), size)]

    def submit_group(self, group: Sequence[Payload], slot: float | None) -> Future[list[Result]]:
        """One request, sent once the wall clock reaches ``slot``."""
        return self.executor.submit(self._send, group, slot)

    def submit(
        self, payloads: Sequence[Payload], start: float | None = None, interval: float = 0.0
    ) -> list[Future[list[Result]]]:
        """Every group on its way. With an ``interval``, one task per group, group ``i``
        waiting for the slot ``start + i * interval``; without, ``lanes``."""
        groups = self.groups(payloads)
        if not interval and len(groups) > self.size:
            return [self.lanes(groups, start)]
        return [
            self.submit_group(group, None if start is None else start + i * interval)
            for i, group in enumerate(groups)
        ]

    def lanes(
        self, groups: Sequence[Sequence[Payload]], start: float | None
    ) -> Future[list[Result]]:
        """One task per thread, each sending the next group not yet taken until none is
        left (a slow server answer holds up only its own thread); one future with every
        result in the order of the groups, once all tasks have ended. An error other than
        ``Unreachable`` (a bug) ends its task and is raised by the future at the end."""
        results: list[list[Result]] = [[] for _ in groups]
        order = iter(range(len(groups)))
        lock = threading.Lock()
        finished: Future[list[Result]] = Future()
        count = min(self.size, len(groups))
        running = [count]
        errors: list[BaseException] = []

        def lane() -> None:
            try:
                wait_until(start)
                while True:
                    with lock:
                        index = next(order, None)
                    if index is None:
                        return
                    results[index] = self._send(groups[index], None)
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                errors.append(error)
            finally:
                with lock:
                    running[0] -= 1
                    last = running[0] == 0
                if last and errors:
                    finished.set_exception(errors[0])
                elif last:
                    finished.set_result([result for group in results for result in group])

        for _ in range(count):
            self.executor.submit(lane)
        return finished

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
