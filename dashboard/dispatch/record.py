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

import functools
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dashboard.database import dialect_insert
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
    connection = ctx.session.connection()
    statements = _statements(connection.dialect.name)
    released = {"worker": None, "claimed_at": None, "updated_at": now}
    for kind in kinds.values():
        _update_deliveries(connection, statements, kind, released)
        outcome, reason, error_kind = kind.entry
        connection.execute(
            statements.entries,
            {
                "ids": kind.ids,
                "batch_id": batch_id,
                "worker": ctx.worker,
                "processed_at": now,
                "outcome": outcome,
                "reason": reason,
                "error_kind": error_kind,
            },
        )
    counters = {f"n_{name}": tally[name] for name in COUNTERS}
    if heartbeat:
        connection.execute(statements.progress_beat, {"batch_id": batch_id, "now": now, **counters})
    else:
        connection.execute(statements.progress, {"batch_id": batch_id, **counters})
    return tally


COUNTERS = ("sent", "failed", "skipped", "cancelled")


@dataclass(frozen=True)
class _Statements:
    """The recording statements with bound parameters, built once per database dialect:
    per chunk SQLAlchemy only binds values (building them again cost more than running
    them). The UPDATE of the deliveries is built per set of columns a kind writes."""

    entries: Any
    progress: Any
    progress_beat: Any
    provider_ids: Any


@functools.cache
def _statements(dialect: str) -> _Statements:
    c = ENTRIES.c
    columns = ["batch_id", "delivery_id", "worker", "processed_at", "outcome", "reason"]
    columns.append("error_kind")
    rows = sa.select(
        sa.bindparam("batch_id", type_=c.batch_id.type),
        DELIVERIES.c.id,
        sa.bindparam("worker", type_=c.worker.type),
        sa.bindparam("processed_at", type_=c.processed_at.type),
        sa.bindparam("outcome", type_=c.outcome.type),
        sa.bindparam("reason", type_=c.reason.type),
        sa.bindparam("error_kind", type_=c.error_kind.type),
    ).where(DELIVERIES.c.id.in_(sa.bindparam("ids", expanding=True)))
    # A row re-sent after its sender's claim ran out is recorded once per batch.
    entries = (
        dialect_insert(dialect)(ENTRIES)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["batch_id", "delivery_id"])
    )
    b = BATCHES.c
    added = {name: b[name] + sa.bindparam(f"n_{name}", type_=sa.Integer) for name in COUNTERS}
    progress = sa.update(BATCHES).where(b.id == sa.bindparam("batch_id")).values(**added)
    beat = progress.values(heartbeat_at=sa.bindparam("now", type_=b.heartbeat_at.type))
    provider_ids = (  # updated_at as the first UPDATE set it (not the column's onupdate)
        sa.update(DELIVERIES)
        .where(DELIVERIES.c.id == sa.bindparam("b_id"))
        .values(
            provider_message_id=sa.bindparam("b_provider_id"),
            updated_at=DELIVERIES.c.updated_at,
        )
    )
    return _Statements(entries, progress, beat, provider_ids)


@functools.cache
def _update_of(columns: tuple[str, ...]) -> Any:
    """UPDATE deliveries SET each of ``columns`` WHERE id IN (...), values bound by name."""
    d = DELIVERIES.c
    values = {name: sa.bindparam(f"v_{name}", type_=d[name].type) for name in columns}
    return sa.update(DELIVERIES).where(d.id.in_(sa.bindparam("ids", expanding=True))).values(values)


def _update_deliveries(
    connection: Any, statements: _Statements, kind: _Kind, released: dict[str, Any]
) -> None:
    """The values a kind shares in one set-based UPDATE; the provider's message ids, which
    differ from row to row, in an executemany that binds only the id and that."""
    values = {**kind.delivery, **released}
    varying = PROVIDER_ID in values and any(pid is not None for pid in kind.provider_ids)
    if varying:
        del values[PROVIDER_ID]
    columns = tuple(sorted(values))
    connection.execute(
        _update_of(columns), {"ids": kind.ids, **{f"v_{name}": values[name] for name in columns}}
    )
    if varying:
        connection.execute(
            statements.provider_ids,
            [
                {"b_id": delivery_id, "b_provider_id": provider_id}
                for delivery_id, provider_id in zip(kind.ids, kind.provider_ids, strict=True)
            ],
        )
