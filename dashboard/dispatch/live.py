"""What this process's sending threads have had answered, per batch, before it is recorded.

The batch's counters move once per recorded chunk (one commit for many recipients), so
between two commits a live progress bar read from them stands still. The sending threads
count every answer here as it comes (a lock and an integer), and the progress fragment
adds what is answered but not yet recorded, and measures the rate of the last seconds.

It is in memory: a page served by another process than the one sending (or after a
restart) sees the recorded counters only, which is what it saw before.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from dashboard.dispatch.transports import Payload, SendResult, Transport, TransportSpec, Unreachable

#: A batch: its database (ids are unique within one) and its id.
Key = tuple[str, int]

#: How far back the rate is measured (seconds), and how many batches are remembered.
WINDOW = 10.0
KEEP = 64


@dataclass(frozen=True)
class Answered:
    """Recipients answered by the transport in this process, and the recent rate (per s)."""

    count: int
    rate: float | None


class _Counts:
    """Per batch: the count, and (time, count so far) samples of the last ``WINDOW`` seconds
    plus the newest older one, which is where the window's rate starts from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: OrderedDict[Key, tuple[int, deque[tuple[float, int]]]] = OrderedDict()

    def add(self, batch: Key, n: int, at: float) -> None:
        with self.lock:
            count, samples = self.batches.pop(batch, (0, deque()))
            count += n
            samples.append((at, count))
            while len(samples) > 1 and samples[1][0] <= at - WINDOW:
                samples.popleft()
            self.batches[batch] = (count, samples)
            while len(self.batches) > KEEP:
                self.batches.popitem(last=False)

    def read(self, batch: Key, at: float) -> Answered | None:
        with self.lock:
            found = self.batches.get(batch)
            if found is None:
                return None
            count, samples = found
            base = [(t, c) for t, c in samples if t <= at - WINDOW]
            first_t = samples[0][0]
        if base:  # the count a window ago: the rate of the last WINDOW seconds
            return Answered(count, (count - base[-1][1]) / WINDOW)
        # Younger than the window: everything since the first answer.
        return Answered(count, count / max(at - first_t, 1.0))


COUNTS = _Counts()


def key(session: Session, batch_id: int) -> Key:
    return (str(session.get_bind().url), batch_id)


def answered(batch: Key, clock: Callable[[], float] = time.monotonic) -> Answered | None:
    return COUNTS.read(batch, clock())


class _Counting(Transport):
    """A transport that counts its answers for ``batch`` (everything else is passed on)."""

    def __init__(self, inner: Transport, batch: Key):
        self.inner = inner
        self.batch = batch

    def open(self) -> None:
        self.inner.open()

    def send(self, payload: Payload) -> SendResult:
        return self.send_group([payload])[0]  # type: ignore[return-value]

    def send_group(self, payloads: Sequence[Payload]) -> list[SendResult | Unreachable]:
        results = self.inner.send_group(payloads)
        # A recipient answered (sent or refused); a dry run and "unreachable" answer nobody.
        n = sum(1 for r in results if isinstance(r, SendResult) and not r.dry_run)
        if n:
            COUNTS.add(self.batch, n, time.monotonic())
        return results

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def counted(spec: TransportSpec, batch: Key) -> TransportSpec:
    """``spec`` whose transports count their answers for the batch's live progress."""
    make = spec.make
    return replace(spec, make=lambda: _Counting(make(), batch))
