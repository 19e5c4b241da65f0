"""Writing one chunk's outcomes: the deliveries, the batch entries and the batch counters.

A delivery is written only after the transport answered for it, so a row says ``sent``
only once the server accepted the message. The counters are atomic increments (the
figures of record are always counted from the entries when the batch finishes).

The statements are Core and set-based: the outcomes of a chunk fall into a few kinds
(nearly all "sent, first attempt"), and each kind is one ``UPDATE ... WHERE id IN`` (or,
when only the provider's message id differs from row to row, one executemany binding
just the id and that) and one ``INSERT ... SELECT`` of its batch entries. The shared
values are converted once per kind instead of once per row, which is where the ORM's
bulk UPDATE spent its time.
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

DELIVERIES = Delivery.__table__
ENTRIES = BatchEntry.__table__
BATCHES = Batch.__table__
#: The one delivery value that differs between otherwise identical outcomes.
PROVIDER_ID = "provider_message_id"


class _Kind:
    """Outcomes that write the same values (but for the provider's message id)."""

    def __init__(self, delivery: dict[str, Any], entry: tuple[Any, Any, Any]):
        self.delivery = delivery
        self.entry = entry
        self.ids: list[int] = []
        self.provider_ids: list[str | None] = []


def record_outcomes(
    ctx: Context, batch_id: int, outcomes: list[Outcome], now: datetime, *, heartbeat: bool
) -> Counter[str]:
    """Write the outcomes of one chunk, with the batch's heartbeat when ``heartbeat`` (its
    owner's) in the same statement as the counters. The caller commits."""
    tally: Counter[str] = Counter()
    kinds: dict[tuple[Any, ...], _Kind] = {}
    for delivery_id, attempts, result in outcomes:
        verdict = judge(result, attempts, ctx.settings, now)
        tally[verdict.counter] += 1
        values = dict(verdict.delivery)
        provider_id = values.pop(PROVIDER_ID, None)
        has_provider = PROVIDER_ID in verdict.delivery
        entry = (verdict.outcome, verdict.reason, verdict.error_kind)
        key = (has_provider, entry, tuple(sorted(values.items())))
        kind = kinds.get(key)
        if kind is None:
            kind = kinds[key] = _Kind(values, entry)
            if has_provider:
                kind.delivery[PROVIDER_ID] = None  # marks the column as written
        kind.ids.append(delivery_id)
        kind.provider_ids.append(provider_id)
    session = ctx.session
    released = {"worker": None, "claimed_at": None, "updated_at": now}
    for kind in kinds.values():
        _update_deliveries(session, kind, released)
        _insert_entries(session, kind, batch_id, ctx.worker, now)
    batches = BATCHES.c
    progress: dict[str, Any] = {
        "sent": batches.sent + tally["sent"],
        "failed": batches.failed + tally["failed"],
        "skipped": batches.skipped + tally["skipped"],
        "cancelled": batches.cancelled + tally["cancelled"],
    }
    if heartbeat:
        progress["heartbeat_at"] = now
    session.execute(sa.update(BATCHES).where(batches.id == batch_id).values(**progress))
    return tally


def _update_deliveries(session: Any, kind: _Kind, released: dict[str, Any]) -> None:
    values = {**kind.delivery, **released}
    varying = PROVIDER_ID in values and any(pid is not None for pid in kind.provider_ids)
    if not varying:
        session.execute(sa.update(DELIVERIES).where(DELIVERIES.c.id.in_(kind.ids)).values(**values))
        return
    values[PROVIDER_ID] = sa.bindparam("b_provider_id")
    statement = (
        sa.update(DELIVERIES).where(DELIVERIES.c.id == sa.bindparam("b_id")).values(**values)
    )
    session.execute(
        statement,
        [
            {"b_id": delivery_id, "b_provider_id": provider_id}
            for delivery_id, provider_id in zip(kind.ids, kind.provider_ids, strict=True)
        ],
    )


def _insert_entries(
    session: Any, kind: _Kind, batch_id: int, worker: str | None, now: datetime
) -> None:
    """The kind's batch entries from its delivery ids; a row re-sent after its sender's
    claim ran out is recorded once per batch."""
    outcome, reason, error_kind = kind.entry
    c = ENTRIES.c
    rows = sa.select(
        sa.literal(batch_id, c.batch_id.type),
        DELIVERIES.c.id,
        sa.literal(worker, c.worker.type),
        sa.literal(now, c.processed_at.type),
        sa.literal(outcome, c.outcome.type),
        sa.literal(reason, c.reason.type),
        sa.literal(error_kind, c.error_kind.type),
    ).where(DELIVERIES.c.id.in_(kind.ids))
    columns = [
        "batch_id",
        "delivery_id",
        "worker",
        "processed_at",
        "outcome",
        "reason",
        "error_kind",
    ]
    statement = insert_ignoring_duplicates(session, BatchEntry, ["batch_id", "delivery_id"])
    session.execute(statement.from_select(columns, rows))
