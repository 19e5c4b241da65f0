"""Claiming work: every claim is one conditional UPDATE, so two workers never both win.

A worker is one dispatcher process (or CLI run), named by ``settings.process_name``.
A message being sent is leased by one worker (``messages.worker`` and ``heartbeat_at``).
The lease is taken with a conditional UPDATE and renewed on every commit group; a lease
older than ``lease_seconds`` may be taken over by any worker, which is how a crashed
worker's message is resumed. Chunks of deliveries are claimed the same way
(``deliveries.worker`` and ``claimed_at``), so several workers can share one batch.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.database import is_postgres
from dashboard.dispatch import states
from dashboard.dispatch.models import Batch, BatchEntry, BatchStatus, Delivery
from dashboard.messages.models import Message, MessageStatus


def lease_lapsed(now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    """No worker holds the message, or its worker went quiet for longer than the lease.

    A lease's age is judged by the worker that wants it, with its own lease, so a worker
    restarted with a shorter lease is not held back by an old one.
    """
    return sa.or_(
        Message.worker.is_(None),
        Message.heartbeat_at.is_(None),
        Message.heartbeat_at < now - lease,
    )


def claim_due(
    session: Session,
    message_id: int,
    worker: str,
    now: datetime,
    also: sa.ColumnElement[bool] | None = None,
) -> bool:
    """scheduled -> sending, atomically, taking the lease. True if this worker won.

    ``also``: a further condition the row must meet at that moment (still fresh enough).
    """
    due = Message.send_at <= now
    return states.move_message(
        session,
        message_id,
        MessageStatus.SENDING,
        now=now,
        expected=[MessageStatus.SCHEDULED],
        where=due if also is None else sa.and_(due, also),
        worker=worker,
        heartbeat_at=now,
        resume_at=None,
    )


def claim_in_flight(
    session: Session, message_id: int, worker: str, now: datetime, lease: timedelta
) -> bool:
    """Take the lease of a message in ``sending`` that nobody holds (or whose holder went quiet)."""
    result = session.execute(
        sa.update(Message)
        .where(
            Message.id == message_id,
            Message.status == MessageStatus.SENDING,
            sa.or_(Message.resume_at.is_(None), Message.resume_at <= now),
            lease_lapsed(now, lease),
        )
        # Whatever it waited for (a quota, a "slow down") is over: it sends again.
        .values(worker=worker, heartbeat_at=now, updated_at=now, status_reason=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_lapsed(
    session: Session, message_id: int, worker: str, now: datetime, lease: timedelta
) -> bool:
    """Take the lease of a message whatever its status, if nobody holds it (a single re-send)."""
    result = session.execute(
        sa.update(Message)
        .where(Message.id == message_id, lease_lapsed(now, lease))
        .values(worker=worker, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


MESSAGES = Message.__table__
DELIVERIES = Delivery.__table__
#: The heartbeat of every chunk, built once (only its values are bound each time).
RENEW_LEASE = (
    sa.update(MESSAGES)
    .where(MESSAGES.c.id == sa.bindparam("b_id"), MESSAGES.c.worker == sa.bindparam("b_worker"))
    .values(heartbeat_at=sa.bindparam("now", type_=MESSAGES.c.heartbeat_at.type))
)


def renew_lease(session: Session, message_id: int, worker: str, now: datetime) -> bool:
    """Heartbeat. False means another worker took the message over: stop at once."""
    result = session.connection().execute(
        RENEW_LEASE, {"b_id": message_id, "b_worker": worker, "now": now}
    )
    return result.rowcount == 1


def release_lease(session: Session, message_id: int, worker: str) -> None:
    session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.worker == worker)
        .values(worker=None)
        .execution_options(synchronize_session=False)
    )


# --- chunks of deliveries: how several processes share one batch -------------------------


def unclaimed(stale_before: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    """Nobody is sending this row, or its sender went quiet before ``stale_before`` (now
    less the lease, judged like the message lease by the worker that wants the row)."""
    return sa.or_(Delivery.claimed_at.is_(None), Delivery.claimed_at < stale_before)


def takes_claims() -> sa.ColumnElement[bool]:
    """A batch still takes claims: running and not sealed (by its owner, or by a host's pause
    or stop), and its message is not paused or stopped."""
    return sa.and_(
        Batch.status == BatchStatus.RUNNING,
        Batch.sealed_at.is_(None),
        Message.id == Batch.message_id,
        Message.status.not_in([MessageStatus.PAUSED, MessageStatus.STOPPED]),
    )


def open_batch(batch_id: int) -> sa.ColumnElement[bool]:
    return sa.exists().where(Batch.id == batch_id, takes_claims())


def claim_deliveries(
    session: Session,
    *,
    batch_id: int,
    message_id: int,
    scope: sa.ColumnElement[bool],
    worker: str,
    now: datetime,
    lease: timedelta,
    after_id: int,
    limit: int,
) -> list[int]:
    """Claim the next ``limit`` unclaimed deliveries of ``scope`` after ``after_id``, in id order.

    One conditional UPDATE: the claim condition is repeated in its WHERE, so of two
    processes racing for a row only one gets it back. On PostgreSQL the candidates are
    picked ``FOR UPDATE SKIP LOCKED`` (racing processes take different rows instead of
    queueing behind each other), and the batch row is read ``FOR SHARE`` first, so a seal
    (the owner's, or a host's pause) waits for claims in progress and no claim lands after it.
    The caller commits.
    """
    postgres = is_postgres(session)
    if postgres:
        still_open = session.scalar(
            sa.select(Batch.id)
            .where(Batch.id == batch_id, takes_claims())
            .with_for_update(read=True, of=Batch)
        )
        if still_open is None:
            return []
    claimed = session.connection().execute(
        _claim_statement(scope, postgres),
        {
            "batch_id": batch_id,
            "b_message_id": message_id,
            "after_id": after_id,
            "limit": limit,
            "b_worker": worker,
            "now": now,
            "stale_before": now - lease,
        },
    )
    return sorted(claimed.scalars())


@functools.lru_cache(maxsize=32)
def _claim_statement(scope: sa.ColumnElement[bool], postgres: bool) -> sa.Update:
    """The chunk claim for a pass's ``scope``, built once per pass with its values bound by
    name: building it again for every chunk cost more than running it."""
    batch_id = sa.bindparam("batch_id", type_=sa.Integer)
    stale_before = sa.bindparam("stale_before", type_=DELIVERIES.c.claimed_at.type)
    # Never twice in one batch: a row with an outcome in it is done here whatever its status.
    free = sa.and_(
        unclaimed(stale_before),
        ~sa.exists().where(BatchEntry.batch_id == batch_id, BatchEntry.delivery_id == Delivery.id),
    )
    pick = (
        sa.select(Delivery.id)
        .where(
            Delivery.message_id == sa.bindparam("b_message_id", type_=sa.Integer),
            Delivery.id > sa.bindparam("after_id", type_=sa.Integer),
            scope,
            free,
        )
        .order_by(Delivery.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    # A CTE, evaluated once: as ``IN (subquery ... LIMIT n)`` PostgreSQL may run the
    # subquery again for rows the UPDATE has already locked and claim far more than n.
    picked = pick.cte("picked")
    return (
        sa.update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(sa.select(picked.c.id)), scope, free, open_batch(batch_id))
        .values(
            worker=sa.bindparam("b_worker", type_=DELIVERIES.c.worker.type),
            claimed_at=sa.bindparam("now", type_=DELIVERIES.c.claimed_at.type),
        )
        .returning(DELIVERIES.c.id)
    )


def renew_claims(session: Session, ids: list[int], worker: str, now: datetime) -> None:
    """Heartbeat of the chunk being sent (the caller commits)."""
    if ids:
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.worker == worker)
            .values(claimed_at=now)
            .execution_options(synchronize_session=False)
        )


def release_claims(session: Session, message_id: int, worker: str) -> None:
    """Give back whatever this worker claimed of a message and did not record (caller commits)."""
    session.execute(
        sa.update(Delivery)
        .where(
            Delivery.claimed_at.is_not(None),
            Delivery.message_id == message_id,
            Delivery.worker == worker,
        )
        .values(worker=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )


def claimed_by_others(
    session: Session, message_id: int, worker: str, now: datetime, lease: timedelta
) -> bool:
    """Another worker holds a live claim on some of this message's deliveries."""
    return bool(
        session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.claimed_at >= now - lease,
                    Delivery.message_id == message_id,
                    Delivery.worker != worker,
                )
            )
        )
    )
