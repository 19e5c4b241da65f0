"""Writing one chunk's outcomes: the deliveries, the batch entries and the batch counters.

A delivery is written only after the transport answered for it, so a row says ``sent``
only once the server accepted the message. The counters are atomic increments (the
figures of record are always counted from the entries when the batch finishes).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dashboard.database import insert_ignoring_duplicates
from dashboard.dispatch.models import Batch, BatchEntry, Delivery
from dashboard.dispatch.rules import Skip, judge
from dashboard.dispatch.settings import Context
from dashboard.dispatch.transports import SendResult

#: (delivery id, attempts before this send, what the transport said or why it was skipped)
Outcome = tuple[int, int, SendResult | Skip]


def record_outcomes(
    ctx: Context, batch_id: int, outcomes: list[Outcome], now: datetime, *, heartbeat: bool
) -> Counter[str]:
    """Write the outcomes of one chunk, with the batch's heartbeat when ``heartbeat`` (its
    owner's) in the same statement as the counters. The caller commits."""
    updates: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    tally: Counter[str] = Counter()
    released = {"worker": None, "claimed_at": None, "updated_at": now}
    for delivery_id, attempts, result in outcomes:
        verdict = judge(result, attempts, ctx.settings, now)
        tally[verdict.counter] += 1
        updates.append({"id": delivery_id, **verdict.delivery, **released})
        entries.append(
            {
                "batch_id": batch_id,
                "delivery_id": delivery_id,
                "worker": ctx.worker,
                "processed_at": now,
                "outcome": verdict.outcome,
                "reason": verdict.reason,
                "error_kind": verdict.error_kind,
            }
        )
    session = ctx.session
    session.execute(sa.update(Delivery), updates)
    # A row re-sent after its sender's claim ran out is recorded once per batch.
    session.execute(
        insert_ignoring_duplicates(session, BatchEntry, ["batch_id", "delivery_id"]), entries
    )
    progress: dict[str, Any] = {
        "sent": Batch.sent + tally["sent"],
        "failed": Batch.failed + tally["failed"],
        "skipped": Batch.skipped + tally["skipped"],
        "cancelled": Batch.cancelled + tally["cancelled"],
    }
    if heartbeat:
        progress["heartbeat_at"] = now
    session.execute(sa.update(Batch).where(Batch.id == batch_id).values(**progress))
    return tally
