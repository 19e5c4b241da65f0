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
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
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
