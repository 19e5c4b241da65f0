"""Recording a chunk's outcomes: the set-based statements write exactly what the ORM's
row-by-row bulk UPDATE and INSERT wrote."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from dashboard.database import insert_ignoring_duplicates
from dashboard.dispatch import recipients
from dashboard.dispatch.models import Batch, BatchEntry, Delivery, DeliveryStatus, ErrorKind
from dashboard.dispatch.record import Outcome, record_outcomes
from dashboard.dispatch.rules import Skip, judge
from dashboard.dispatch.settings import Context, DispatchSettings
from dashboard.dispatch.transports import SendResult
from dashboard.extensions import db
from tests.helpers import deliveries_of

SETTINGS = DispatchSettings(base_url="http://dashboard.test", sender="a@dashboard.test")


def reference_record(ctx: Context, batch_id: int, outcomes: list[Outcome], now) -> None:
    """The ORM bulk version the set-based statements replace."""
    updates: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    tally: Counter[str] = Counter()
    for delivery_id, attempts, result in outcomes:
        verdict = judge(result, attempts, ctx.settings, now)
        tally[verdict.counter] += 1
        updates.append(
            {"id": delivery_id, **verdict.delivery, "worker": None, "claimed_at": None}
            | {"updated_at": now}
        )
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
    session.execute(
        insert_ignoring_duplicates(session, BatchEntry, ["batch_id", "delivery_id"]), entries
    )
    session.execute(
        sa.update(Batch)
        .where(Batch.id == batch_id)
        .values(
            sent=Batch.sent + tally["sent"],
            failed=Batch.failed + tally["failed"],
            skipped=Batch.skipped + tally["skipped"],
            cancelled=Batch.cancelled + tally["cancelled"],
            heartbeat_at=now,
        )
    )


def results_for(position: int) -> tuple[int, SendResult | Skip]:
    """(attempts before, result) of every kind a chunk can hold, by position."""
    kinds: list[tuple[int, SendResult | Skip]] = [
        (0, SendResult.sent(f"<id-{position}@relay>")),
        (0, SendResult.sent(f"<id-{position}@relay>")),
        (2, SendResult.sent(None)),
        (0, SendResult.transient("421 try later")),
        (4, SendResult.transient("421 try later")),
        (0, SendResult.permanent("550 no such user")),
        (0, SendResult.permanent(f"550 no such user {position}")),
        (0, Skip("unsubscribed")),
        (0, SendResult(True, dry_run=True)),
    ]
    return kinds[position % len(kinds)]


def snapshot(message, batch) -> list[tuple[Any, ...]]:
    db.session.expire_all()
    rows = []
    entries = {
        e.delivery_id: e
        for e in db.session.scalars(sa.select(BatchEntry).where(BatchEntry.batch_id == batch.id))
    }
    for position, d in enumerate(deliveries_of(message)):
        e = entries[d.id]
        rows.append(
            (
                position,
                d.status,
                d.dry_run,
                d.attempts,
                d.last_error,
                d.error_kind,
                d.next_attempt_at,
                (d.provider_message_id or "").replace(f"-{d.id}@", "-@"),
                d.sent_at,
                d.worker,
                d.claimed_at,
                d.updated_at,
                e.outcome,
                e.reason,
                e.error_kind,
                e.worker,
                e.processed_at,
            )
        )
    db.session.refresh(batch)
    rows.append((batch.sent, batch.failed, batch.skipped, batch.cancelled, batch.heartbeat_at))
    return rows


def test_set_based_recording_writes_what_the_orm_wrote(
    app, make_event, make_guests, make_message, make_batch, now
):
    event = make_event()
    make_guests(event, 40)
    chunks = []
    for _ in range(2):
        message = make_message(event)
        recipients.materialize(db.session, message, now)
        batch = make_batch(message)
        db.session.commit()
        deliveries = deliveries_of(message)
        for delivery in deliveries:
            delivery.worker, delivery.claimed_at = "w1", now
        db.session.commit()
        outcomes: list[Outcome] = []
        for position, delivery in enumerate(deliveries):
            attempts, result = results_for(position)
            if isinstance(result, SendResult) and result.provider_id:
                result = SendResult.sent(
                    result.provider_id.replace(f"-{position}@", f"-{delivery.id}@")
                )
            outcomes.append((delivery.id, attempts, result))
        chunks.append((message, batch, outcomes))

    later = now + timedelta(seconds=5)
    ctx = Context(db.session, SETTINGS, "w1")
    (old_message, old_batch, old), (new_message, new_batch, new) = chunks
    reference_record(ctx, old_batch.id, old, later)
    tally = record_outcomes(ctx, new_batch.id, new, later, heartbeat=True)
    db.session.commit()

    assert snapshot(new_message, new_batch) == snapshot(old_message, old_batch)
    assert tally == Counter(sent=15, failed=17, skipped=8)
    by_status = Counter(d.status for d in deliveries_of(new_message))
    assert by_status[DeliveryStatus.SENT] == 15
    assert {d.error_kind for d in deliveries_of(new_message)} >= {ErrorKind.TRANSIENT}


def test_an_entry_already_recorded_is_kept_once(
    app, make_event, make_guests, make_message, make_batch, now
):
    event = make_event()
    make_guests(event, 3)
    message = make_message(event)
    recipients.materialize(db.session, message, now)
    batch = make_batch(message)
    db.session.commit()
    ctx = Context(db.session, SETTINGS, "w1")
    outcomes: list[Outcome] = [(d.id, 0, SendResult.sent(None)) for d in deliveries_of(message)]
    record_outcomes(ctx, batch.id, outcomes, now, heartbeat=False)
    record_outcomes(ctx, batch.id, outcomes, now, heartbeat=False)
    db.session.commit()
    count = db.session.scalar(sa.select(sa.func.count()).where(BatchEntry.batch_id == batch.id))
    assert count == 3
