"""Claiming work: every claim is one conditional UPDATE, so two processes never both win.

A message being sent is leased by one dispatcher process (``dispatch_owner`` and
``dispatch_heartbeat_at``). The lease is taken with a conditional UPDATE and
renewed on every commit group; a lease older than ``lease_seconds`` may be taken
over by any process, which is how a crashed process's work is resumed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.auth.models import User
from dashboard.database import is_postgres
from dashboard.dispatch.models import Batch, BatchEntry, BatchStatus, BatchTrigger, Delivery
from dashboard.messages.models import EDITABLE, IllegalTransition, Message, MessageStatus


def start_send_now(session: Session, message: Message, actor: User | None, now: datetime) -> Batch:
    """Move a draft or scheduled message to sending and queue its batch for a dispatcher.

    The caller commits, then wakes the scheduler. Refused (IllegalTransition, HTTP 409)
    when the message is no longer draft/scheduled, e.g. the scheduler just claimed it.
    """
    result = session.execute(
        sa.update(Message)
        .where(Message.id == message.id, Message.status.in_([s.value for s in EDITABLE]))
        .values(status=MessageStatus.SENDING, dispatch_owner=None, resume_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(message)
        raise IllegalTransition(message.status, MessageStatus.SENDING)
    session.refresh(message)
    return queue_batch(session, message.id, BatchTrigger.SEND_NOW, actor, now)


def queue_batch(
    session: Session, message_id: int, trigger: BatchTrigger, actor: User | None, now: datetime
) -> Batch:
    """A batch that no process has started yet (heartbeat NULL); the lease holder adopts it."""
    batch = Batch(
        message_id=message_id,
        trigger=trigger,
        initiated_by_id=actor.id if actor else None,
        initiated_label=actor.email if actor else "scheduler",
        status=BatchStatus.RUNNING,
        started_at=now,
        heartbeat_at=None,
    )
    session.add(batch)
    session.flush()
    return batch


def claim_due(session: Session, message_id: int, owner: str, now: datetime) -> bool:
    """scheduled -> sending, atomically, taking the lease. True if this process won."""
    result = session.execute(
        sa.update(Message)
        .where(
            Message.id == message_id,
            Message.status == MessageStatus.SCHEDULED,
            Message.send_at <= now,
        )
        .values(
            status=MessageStatus.SENDING,
            dispatch_owner=owner,
            dispatch_heartbeat_at=now,
            resume_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_in_flight(
    session: Session, message_id: int, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Take the lease of a message in ``sending`` that nobody holds (or whose holder went quiet)."""
    result = session.execute(
        sa.update(Message)
        .where(
            Message.id == message_id,
            Message.status == MessageStatus.SENDING,
            sa.or_(Message.resume_at.is_(None), Message.resume_at <= now),
            sa.or_(
                Message.dispatch_owner.is_(None),
                Message.dispatch_heartbeat_at.is_(None),
                Message.dispatch_heartbeat_at < now - lease,
            ),
        )
        .values(dispatch_owner=owner, dispatch_heartbeat_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def renew_lease(session: Session, message_id: int, owner: str, now: datetime) -> bool:
    """Heartbeat. False means another process took the message over: stop at once."""
    result = session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.dispatch_owner == owner)
        .values(dispatch_heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_lease(session: Session, message_id: int, owner: str) -> None:
    session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.dispatch_owner == owner)
        .values(dispatch_owner=None)
        .execution_options(synchronize_session=False)
    )


# --- chunks of deliveries: how several processes share one batch -------------------------


def unclaimed(now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    """Nobody is sending this row, or its sender went quiet for longer than the lease.

    Like the message lease, a claim's age is judged by the process that wants the row,
    with its own lease, so a process restarted with a shorter lease is not held back.
    """
    return sa.or_(Delivery.claimed_at.is_(None), Delivery.claimed_at < now - lease)


def open_batch(batch_id: int) -> sa.ColumnElement[bool]:
    """The batch still takes claims: running and not sealed by its owner."""
    return sa.exists().where(
        Batch.id == batch_id, Batch.status == BatchStatus.RUNNING, Batch.sealed_at.is_(None)
    )


def claim_deliveries(
    session: Session,
    *,
    batch_id: int,
    message_id: int,
    scope: sa.ColumnElement[bool],
    owner: str,
    now: datetime,
    lease: timedelta,
    after_id: int,
    limit: int,
) -> list[int]:
    """Claim the next ``limit`` unclaimed deliveries of ``scope`` after ``after_id``, in id order.

    One conditional UPDATE: the claim condition is repeated in its WHERE, so of two
    processes racing for a row only one gets it back. On PostgreSQL the candidates are
    picked ``FOR UPDATE SKIP LOCKED`` (racing processes take different rows instead of
    queueing behind each other), and the batch row is read ``FOR SHARE`` first, so the
    owner's seal waits for claims in progress and no claim lands after it.
    The caller commits.
    """
    postgres = is_postgres(session)
    if postgres:
        still_open = session.scalar(
            sa.select(Batch.id)
            .where(
                Batch.id == batch_id,
                Batch.status == BatchStatus.RUNNING,
                Batch.sealed_at.is_(None),
            )
            .with_for_update(read=True)
        )
        if still_open is None:
            return []
    # Never twice in one batch: a row with an outcome in it is done here whatever its status.
    free = sa.and_(
        unclaimed(now, lease),
        ~sa.exists().where(BatchEntry.batch_id == batch_id, BatchEntry.delivery_id == Delivery.id),
    )
    pick = (
        sa.select(Delivery.id)
        .where(Delivery.message_id == message_id, Delivery.id > after_id, scope, free)
        .order_by(Delivery.id)
        .limit(limit)
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    # A CTE, evaluated once: as ``IN (subquery ... LIMIT n)`` PostgreSQL may run the
    # subquery again for rows the UPDATE has already locked and claim far more than n.
    picked = pick.cte("picked")
    claimed = session.scalars(
        sa.update(Delivery)
        .where(Delivery.id.in_(sa.select(picked.c.id)), scope, free, open_batch(batch_id))
        .values(claimed_by=owner, claimed_at=now)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(claimed)


def renew_claims(session: Session, ids: list[int], owner: str, now: datetime) -> None:
    """Heartbeat of the chunk being sent (the caller commits)."""
    if ids:
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.claimed_by == owner)
            .values(claimed_at=now)
            .execution_options(synchronize_session=False)
        )


def release_claims(session: Session, message_id: int, owner: str) -> None:
    """Give back whatever this process claimed of a message and did not record (caller commits)."""
    session.execute(
        sa.update(Delivery)
        .where(
            Delivery.claimed_at.is_not(None),
            Delivery.message_id == message_id,
            Delivery.claimed_by == owner,
        )
        .values(claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )


def claimed_by_others(
    session: Session, message_id: int, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Another process holds a live claim on some of this message's deliveries."""
    return bool(
        session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.claimed_at >= now - lease,
                    Delivery.message_id == message_id,
                    Delivery.claimed_by != owner,
                )
            )
        )
    )
