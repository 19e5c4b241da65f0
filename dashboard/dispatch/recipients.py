"""From an audience to delivery rows: one row per (message, guest), made once, in SQL.

Guests the message's channel cannot reach (unsubscribed, no usable address) get their
row too, as ``skipped`` with the reason, so that every member of the audience has one
recorded outcome.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.db_types import UTCDateTime
from dashboard.dispatch import channels
from dashboard.dispatch.models import BatchEntry, Delivery, DeliveryStatus, Outcome
from dashboard.events.models import Guest
from dashboard.messages.audience import in_audience, skip_reason
from dashboard.messages.models import Message


def materialize(session: Session, message: Message, now: datetime) -> int:
    """One delivery row per audience member not yet having one (INSERT ... SELECT)."""
    channel = channels.get(message.channel)
    reason = skip_reason(channel)
    existing = sa.exists().where(Delivery.message_id == message.id, Delivery.guest_id == Guest.id)
    select = sa.select(
        sa.literal(message.id),
        Guest.id,
        Guest.name,
        channel.address(),
        sa.case(
            (reason.is_(None), sa.literal(DeliveryStatus.PENDING.value)),
            else_=sa.literal(DeliveryStatus.SKIPPED.value),
        ),
        reason,
        sa.literal(0),
        sa.literal(False),
        sa.literal(now, UTCDateTime()),
        sa.literal(now, UTCDateTime()),
    ).where(Guest.event_id == message.event_id, in_audience(message.audience), ~existing)
    columns = [
        "message_id",
        "guest_id",
        "name",
        "email",
        "status",
        "last_error",
        "attempts",
        "dry_run",
        "created_at",
        "updated_at",
    ]
    # Core on the connection: a real rowcount on every driver.
    result = session.connection().execute(sa.insert(Delivery).from_select(columns, select))
    return result.rowcount or 0


def record_skips(
    session: Session, message_id: int, batch_id: int, worker: str, now: datetime
) -> int:
    """Skipped deliveries that no batch has recorded yet get their entry in this one.

    Returns how many skipped entries the batch holds, counted rather than taken from a
    rowcount (drivers disagree about INSERT ... SELECT).
    """
    recorded = sa.exists().where(BatchEntry.delivery_id == Delivery.id)
    session.execute(
        sa.insert(BatchEntry).from_select(
            ["batch_id", "delivery_id", "outcome", "reason", "worker", "processed_at"],
            sa.select(
                sa.literal(batch_id),
                Delivery.id,
                sa.literal(Outcome.SKIPPED.value),
                Delivery.last_error,
                sa.literal(worker),
                sa.literal(now, UTCDateTime()),
            ).where(
                Delivery.message_id == message_id,
                Delivery.status == DeliveryStatus.SKIPPED,
                Delivery.dry_run.is_(False),
                ~recorded,
            ),
        )
    )
    return (
        session.scalar(
            sa.select(sa.func.count()).where(
                BatchEntry.batch_id == batch_id, BatchEntry.outcome == Outcome.SKIPPED
            )
        )
        or 0
    )


def count_in_scope(session: Session, message_id: int, scope: sa.ColumnElement[bool]) -> int:
    return (
        session.scalar(sa.select(sa.func.count()).where(Delivery.message_id == message_id, scope))
        or 0
    )
