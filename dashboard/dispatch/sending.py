"""Sending one chunk within the shared limits: the daily quota, the request rate, and a
provider's "slow down".

1. The daily quota allows some or all of the chunk (``pacing.take_quota``); the rest is
   held back and the batch waits until the 24-hour window frees up.
2. Each request gets a slot on the shared timeline (``pacing.reserve_slots``), so every
   process together keeps ``DISPATCH_RATE_PER_SECOND``; without a rate a chunk only
   reads when it may start (``pacing.free_from``).
3. A "slow down" (``SlowDown``) holds every process off for the wait the server asked for
   (or a short backoff), then the same payloads go again, with the same idempotency keys:
   nobody's attempt is spent. A wait longer than ``max_inline_wait`` (or a provider's
   quota) stops the batch instead, and the message resumes later. A recipient's own
   "slow down" (an SMTP 4xx to RCPT) that keeps coming after the waits becomes that
   recipient's transient failure, so it cannot hold the batch back for ever.

Only the dispatcher's main thread calls this (it owns the session).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime

from dashboard.dispatch import pacing
from dashboard.dispatch.pool import Result, SenderPool
from dashboard.dispatch.settings import Context
from dashboard.dispatch.transports import (
    Payload,
    Refused,
    SendResult,
    SlowDown,
    Unreachable,
)

log = logging.getLogger(__name__)


class QuotaWait(SlowDown):
    """Our own daily quota (``DISPATCH_DAILY_QUOTA``) is used up until ``frees_at``."""

    def __init__(self, frees_at: datetime, now: datetime):
        wait = max(1.0, (frees_at - now).total_seconds())
        super().__init__("the daily quota is used up", wait, quota=True)
        self.frees_at = frees_at


@dataclass
class Sent:
    """One result per payload that was sent (``None`` for one the quota held back), and
    why the batch must stop, if it must (the first ``Unreachable`` of the chunk)."""

    results: list[Result | None] = field(default_factory=list)
    stop: Unreachable | None = None


@dataclass
class Flight:
    """A chunk's payloads between ``Sender.begin`` and ``Sender.end``: the quota taken for
    them and, without a rate, the first try already submitted to the pool."""

    payloads: Sequence[Payload]
    allowance: pacing.Allowance
    futures: list[Future[list[Result]]] | None


class Sender:
    def __init__(
        self, ctx: Context, pool: SenderPool, tick: float, heartbeat: Callable[[], object]
    ):
        self.ctx = ctx
        self.pool = pool
        self.tick = tick
        self.heartbeat = heartbeat
        rate = ctx.settings.rate_per_second
        self.interval = 1.0 / rate if rate else 0.0

    def send(self, payloads: Sequence[Payload]) -> Sent:
        return self.end(self.begin(payloads))

    def begin(self, payloads: Sequence[Payload]) -> Flight:
        """Take the quota for ``payloads`` and, without a rate, put them on the wire now;
        ``end`` waits for them. The main thread may compose and record meanwhile."""
        ctx = self.ctx
        allowance = pacing.take_quota(
            ctx.session, len(payloads), ctx.settings.daily_quota, ctx.clock()
        )
        granted = payloads[: allowance.granted]
        futures = None
        if granted and not self.interval:
            futures = self._submit(granted)
        return Flight(payloads, allowance, futures)

    def end(self, flight: Flight) -> Sent:
        """Every result of the flight (after any "slow down" waits), and why to stop."""
        ctx = self.ctx
        allowance = flight.allowance
        granted = flight.payloads[: allowance.granted]
        results: list[Result | None] = list(self._send_waiting(granted, flight.futures))
        unreached = [r for r in results if isinstance(r, Unreachable)]
        pacing.give_back(ctx.session, allowance.spend_id, len(unreached))  # committed with them
        results += [None] * (len(flight.payloads) - allowance.granted)
        stop = _first_stop(unreached)
        if stop is None and allowance.frees_at is not None:
            stop = QuotaWait(allowance.frees_at, ctx.clock())
        return Sent(results, stop)

    def _send_waiting(
        self, payloads: Sequence[Payload], futures: list[Future[list[Result]]] | None = None
    ) -> list[Result]:
        """Send (or wait for ``futures``, the first try already on the wire); after a "slow
        down", wait and send the same payloads again (a few times)."""
        settings = self.ctx.settings
        results: list[Result] = [Unreachable("not sent")] * len(payloads)
        todo = list(range(len(payloads)))
        waits = 0
        while todo:
            if futures is not None:
                answers = self.pool.wait(futures, self.tick, self.heartbeat)
                futures = None
            else:
                answers = self._send_once([payloads[i] for i in todo])
            for index, result in zip(todo, answers, strict=True):
                results[index] = result
            slow = [i for i in todo if isinstance(results[i], SlowDown)]
            if not slow:
                break
            first = results[slow[0]]
            assert isinstance(first, SlowDown)
            delay = first.retry_after
            if delay is None:
                delay = settings.slow_down_seconds * 2**waits
            if first.quota or delay > settings.max_inline_wait or waits >= settings.slow_down_waits:
                return [_charged(result) for result in results]
            log.info("asked to slow down (%s); every sender waits %.1f s", first, delay)
            pacing.hold_off(self.ctx.session, time.time() + delay)
            waits += 1
            todo = slow
        return results

    def _submit(self, payloads: Sequence[Payload]) -> list[Future[list[Result]]]:
        """Without a rate: every group now, unless a "slow down" of another process holds
        us off until later."""
        return self.pool.submit(payloads, pacing.free_from(self.ctx.session, time.time()))

    def _send_once(self, payloads: Sequence[Payload]) -> list[Result]:
        if not payloads:
            return []
        session, pool = self.ctx.session, self.pool
        if not self.interval:
            return pool.wait(self._submit(payloads), self.tick, self.heartbeat)
        # With a rate, each request takes its slot when a sending thread is free for it, so
        # a slow thread never sends in a slot that has passed (a burst above the rate).
        futures: list[Future[list[Result]]] = []
        for group in pool.groups(payloads):
            while len(busy := [f for f in futures if not f.done()]) >= pool.size:
                if not wait(busy, timeout=self.tick, return_when=FIRST_COMPLETED)[0]:
                    self.heartbeat()
            slot = pacing.reserve_slots(session, 1, self.interval, time.time())
            futures.append(pool.submit_group(group, slot))
        return pool.wait(futures, self.tick, self.heartbeat)


def _charged(result: Result) -> Result:
    """A recipient's "slow down" that outlasted the waits is its transient failure."""
    if isinstance(result, SlowDown) and result.recipient:
        return SendResult.transient(f"{result} (the server kept asking to slow down)")
    return result


def _first_stop(unreached: list[Unreachable]) -> Unreachable | None:
    """What stops the batch: refused credentials before an outage before a slow-down."""

    def rank(error: Unreachable) -> int:
        return 0 if isinstance(error, Refused) else 2 if isinstance(error, SlowDown) else 1

    return min(unreached, key=rank, default=None)
