"""Resume a send whose batch has gone silent, without waiting for its lease to lapse."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, record
from dashboard.dispatch import states
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
from dashboard.dispatch.queries import batch_figures, entry_counts
from dashboard.dispatch.services import queue_batch
from dashboard.errors import Conflict
from dashboard.messages.models import Message, MessageStatus


def resume_stalled(
    session: Session, message: Message, actor: Actor, now: datetime, late_after: timedelta
) -> Batch:
    """A sending message whose running batch has shown no sign of life for ``late_after``
    (its dispatcher stopped, say): that batch ends as interrupted, the message's lease is
    let go, and a new batch is queued for the next dispatcher to send the rest, without
    waiting for the whole lease to lapse.

    Nobody gets it twice: the recorded outcomes stay, and a recipient the silent worker had
    claimed stays its until that claim lapses (should the worker come back, it finds its
    lease gone and stops).
    """
    cutoff = now - late_after
    stalled = session.scalar(
        sa.select(Batch).where(
            Batch.message_id == message.id,
            Batch.status == BatchStatus.RUNNING,
            Batch.heartbeat_at.is_not(None),
            Batch.heartbeat_at < cutoff,
        )
    )
    if message.status is not MessageStatus.SENDING or stalled is None:
        raise Conflict(
            "Its batch is running (it has shown a sign of life lately): nothing to resume."
        )
    silent = int((now - stalled.heartbeat_at).total_seconds()) if stalled.heartbeat_at else 0
    note = f"No sign of life for {silent} s; resumed by {actor.label}."
    figures = batch_figures(entry_counts(session, stalled.id))
    if not states.move_batch(
        session,
        stalled.id,
        BatchStatus.INTERRUPTED,
        where=Batch.heartbeat_at < cutoff,
        finished_at=now,
        error=note,
        **figures,
    ):
        raise Conflict("Its batch has just shown a sign of life: nothing to resume.")
    session.execute(
        sa.update(Message)
        .where(
            Message.id == message.id,
            sa.or_(Message.heartbeat_at.is_(None), Message.heartbeat_at < cutoff),
        )
        .values(worker=None, heartbeat_at=None, resume_at=None)
    )
    batch = queue_batch(session, message.id, BatchTrigger.RESUME, actor, now)
    details = {"stalled_batch": stalled.id, "silent_seconds": silent}
    record(
        session,
        actor,
        "message.resume",
        now=now,
        event_id=message.event_id,
        message_id=message.id,
        batch_id=batch.id,
        details=details,
    )
    session.refresh(message)
    return batch
