"""A host in control of a send: pause, resume and stop a message while it is being sent.

- Pause: ``sending -> paused``. In the same transaction the message's running batches are
  sealed, so from the commit on no process (owner or helper, here or on another machine)
  claims another chunk of them: the claim's own conditional UPDATE checks the seal and the
  message's status. What each process had already claimed goes out and is recorded, then
  the batch's owner ends it as ``paused`` (``finish``). A queued batch no worker has
  started is ended here.
- Resume: ``paused -> sending`` with a new batch (trigger ``resume``) whose scope is the
  recipients without an outcome: nobody gets the message twice, however often it pauses.
- Stop: ``sending|paused -> stopped``, for good. Every recipient without an outcome gets a
  ``cancelled`` entry with the reason "stopped by <actor>": written by the owner of a
  running batch as it ends, or here, in a batch of its own (trigger ``stop``), when none runs.
- Hold: a message with ``hold_after`` pauses itself once that many have been sent.

Locks are taken in the order a sending process takes them (its batch, then its message),
so a host's click and a commit group never wait for each other in a circle (PostgreSQL
would abort one as a deadlock).

Plain functions of a session, an actor and ``now``; the caller commits, or rolls back on
a refusal (a refused action may have sealed nothing worth keeping).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, record
from dashboard.dispatch import claim, recipients, states
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    BatchTrigger,
    Delivery,
    DeliveryStatus,
    Outcome,
)
from dashboard.dispatch.queries import batch_figures, delivery_counts, entry_counts, kept_figures
from dashboard.dispatch.staleness import send_refusal
from dashboard.errors import Conflict, IllegalTransition
from dashboard.messages.models import Message, MessageStatus

M = MessageStatus

STILL_PAUSING = (
    "The send is still pausing: the messages already on their way are being recorded. "
    "Try again in a few seconds."
)


def _refused(message: Message, target: MessageStatus, verb: str) -> IllegalTransition:
    state = "a dry run" if message.status is M.DRY_RUN else message.status.label.lower()
    only = {
        M.PAUSED: "Only a message that is being sent can be paused.",
        M.SENDING: "Only a paused message can be resumed.",
        M.STOPPED: "Only a message that is being sent or is paused can be stopped.",
    }[target]
    return IllegalTransition(message.status, target, f"This message is {state}: {verb}. {only}")


# --- pause ---------------------------------------------------------------------------------


def pause(session: Session, message: Message, actor: Actor, now: datetime) -> Message:
    """``sending -> paused``; IllegalTransition (409) from any other status."""
    _seal(session, message.id, now)
    if not states.move_message(
        session,
        message.id,
        M.PAUSED,
        now=now,
        expected=[M.SENDING],
        paused_at=now,
        paused_by=actor.label[:300],
        status_reason=None,
        resume_at=None,
    ):
        session.refresh(message)
        raise _refused(message, M.PAUSED, "there is nothing to pause")
    _end_queued(session, message.id, BatchStatus.PAUSED, f"Paused by {actor.label}", now)
    counts = delivery_counts(session, [message.id])[message.id]
    details = {"sent": counts.sent, "pending": counts.pending}
    record(session, actor, "message.pause", now=now, **_ids(message), details=details)
    session.refresh(message)
    return message


def hold(session: Session, message_id: int, actor: Actor, now: datetime) -> bool:
    """The send reached ``hold_after``: pause it with the banner a host acts on. False if the
    message is no longer sending (a host paused or stopped it meanwhile)."""
    counts = delivery_counts(session, [message_id])[message_id]
    banner = f"{counts.sent:,} of {counts.total:,} sent. Check how it arrived, then resume."
    if not states.move_message(
        session,
        message_id,
        M.PAUSED,
        now=now,
        expected=[M.SENDING],
        paused_at=now,
        paused_by=actor.label[:300],
        held_at=now,
        status_reason=banner,
        resume_at=None,
    ):
        return False
    event_id = session.scalar(sa.select(Message.event_id).where(Message.id == message_id))
    details = {"hold_after": True, "sent": counts.sent, "pending": counts.pending}
    ids = {"event_id": event_id, "message_id": message_id}
    record(session, actor, "message.pause", now=now, **ids, details=details)
    return True


def _seal(session: Session, message_id: int, now: datetime) -> None:
    """No further claims of the message's batches being sent (if the message is in flight)."""
    in_flight = sa.exists().where(
        Message.id == message_id, Message.status.in_([M.SENDING, M.PAUSED])
    )
    session.execute(
        sa.update(Batch)
        .where(
            Batch.message_id == message_id,
            Batch.status == BatchStatus.RUNNING,
            Batch.heartbeat_at.is_not(None),
            Batch.sealed_at.is_(None),
            in_flight,
        )
        .values(sealed_at=now)
        .execution_options(synchronize_session=False)
    )


def _end_queued(
    session: Session, message_id: int, target: BatchStatus, note: str, now: datetime
) -> int:
    """End the batches no worker has started; how many are still being sent (their owners
    end them, as the message's status says)."""
    queued = session.scalars(
        sa.select(Batch.id).where(
            Batch.message_id == message_id,
            Batch.status == BatchStatus.RUNNING,
            Batch.heartbeat_at.is_(None),
        )
    ).all()
    for batch_id in queued:
        states.move_batch(
            session,
            batch_id,
            target,
            where=Batch.heartbeat_at.is_(None),
            finished_at=now,
            error=f"{note} before it started.",
        )
    return _live_batches(session, message_id)


def _live_batches(session: Session, message_id: int) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count()).where(
                Batch.message_id == message_id, Batch.status == BatchStatus.RUNNING
            )
        )
        or 0
    )


# --- resume --------------------------------------------------------------------------------


def resume(session: Session, message: Message, actor: Actor, now: datetime) -> Batch:
    """``paused -> sending`` with a queued batch (trigger resume) for a worker to adopt.

    Refused while the pause is still being recorded (a batch of it is still running), and
    when the message can never be sent any more (its event was cancelled or archived).
    """
    if message.status is not M.PAUSED:
        raise _refused(message, M.SENDING, "there is nothing to resume")
    if _live_batches(session, message.id):
        raise Conflict(STILL_PAUSING)
    refused = send_refusal(message, message.event, now)
    if refused is not None:
        raise Conflict(refused)
    paused_by, paused_at = message.paused_by, message.paused_at
    if not states.move_message(
        session,
        message.id,
        M.SENDING,
        now=now,
        expected=[M.PAUSED],
        paused_at=None,
        paused_by=None,
        status_reason=None,
        resume_at=None,
    ):
        session.refresh(message)
        raise _refused(message, M.SENDING, "there is nothing to resume")
    batch = queue_batch(session, message.id, BatchTrigger.RESUME, actor, now)
    counts = delivery_counts(session, [message.id])[message.id]
    details = {"pending": counts.pending, "paused_by": paused_by, "paused_at": paused_at}
    record(
        session,
        actor,
        "message.resume",
        now=now,
        **_ids(message),
        batch_id=batch.id,
        details=details,
    )
    session.refresh(message)
    return batch


def queue_batch(
    session: Session, message_id: int, trigger: BatchTrigger, actor: Actor, now: datetime
) -> Batch:
    """A batch that no worker has started yet (heartbeat NULL); the lease holder adopts it."""
    batch = Batch(
        message_id=message_id,
        trigger=trigger,
        initiated_by_id=actor.user_id,
        initiated_label=actor.label[:254],
        status=BatchStatus.RUNNING,
        started_at=now,
        heartbeat_at=None,
    )
    session.add(batch)
    session.flush()
    return batch


# --- stop ----------------------------------------------------------------------------------


def stop(
    session: Session, message: Message, actor: Actor, now: datetime, lease: timedelta
) -> Message:
    """``sending|paused -> stopped``; what was not sent is recorded as cancelled.

    While a batch is being sent its owner records the cancellations as it ends (the chunk
    on the wire is recorded first); otherwise they go, with the recipients who have no
    delivery row yet, into a batch of this stop.
    """
    was = message.status
    _seal(session, message.id, now)
    if not states.move_message(
        session,
        message.id,
        M.STOPPED,
        now=now,
        expected=[M.SENDING, M.PAUSED],
        status_reason=f"Stopped by {actor.label}"[:300],
        paused_at=None,
        paused_by=None,
        resume_at=None,
    ):
        session.refresh(message)
        raise _refused(message, M.STOPPED, "there is nothing to stop")
    reason = stop_reason(actor.label)
    batch_id = None
    if not _end_queued(session, message.id, BatchStatus.STOPPED, f"Stopped by {actor.label}", now):
        batch = queue_batch(session, message.id, BatchTrigger.STOP, actor, now)
        batch_id = batch.id
        end_stopped(session, message, batch.id, reason, None, now, lease)
    counts = delivery_counts(session, [message.id])[message.id]
    details = {"from": was, "sent": counts.sent, "cancelled": counts.cancelled}
    ids = {**_ids(message), "batch_id": batch_id}
    record(session, actor, "message.stop", now=now, **ids, details=details)
    session.refresh(message)
    return message


def stop_reason(actor_label: str) -> str:
    return f"stopped by {actor_label}"


def end_stopped(
    session: Session,
    message: Message,
    batch_id: int,
    reason: str,
    worker: str | None,
    now: datetime,
    lease: timedelta,
) -> None:
    """Cancel what is left into ``batch_id``, end it as stopped and keep the message's figures."""
    cancel_rest(session, message, batch_id, reason, worker, now, lease)
    figures = batch_figures(entry_counts(session, batch_id))
    states.move_batch(
        session,
        batch_id,
        BatchStatus.STOPPED,
        finished_at=now,
        heartbeat_at=now,
        error=reason[0].upper() + reason[1:],
        total=sum(figures.values()),
        **figures,
    )
    keep_stopped_figures(session, message.id)


def keep_stopped_figures(session: Session, message_id: int) -> None:
    """A stopped message keeps its figures, as a finished one does (call it after the batch
    is written: batch, then message, the order of every sending process)."""
    counts = delivery_counts(session, [message_id])[message_id]
    session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.status == M.STOPPED)
        .values(**kept_figures(counts))
    )


def cancel_rest(
    session: Session,
    message: Message,
    batch_id: int,
    reason: str,
    worker: str | None,
    now: datetime,
    lease: timedelta,
) -> int:
    """Every recipient of ``message`` without an outcome gets a ``cancelled`` entry in
    ``batch_id`` (and its delivery that status). Guests of the audience without a delivery
    row yet get one first (skipped ones are recorded as skipped), so that every member of
    the audience ends with one outcome. A row another process still holds a live claim on
    is left to that process. Returns how many were cancelled."""
    recipients.materialize(session, message, now)
    recipients.record_skips(session, message.id, batch_id, worker or "", now)
    rest = sa.and_(
        Delivery.message_id == message.id,
        Delivery.status == DeliveryStatus.PENDING,
        claim.unclaimed(now - lease),
        ~sa.exists().where(BatchEntry.batch_id == batch_id, BatchEntry.delivery_id == Delivery.id),
    )
    ids = session.scalars(sa.select(Delivery.id).where(rest)).all()
    if not ids:
        return 0
    session.execute(
        sa.insert(BatchEntry),
        [
            {
                "batch_id": batch_id,
                "delivery_id": delivery_id,
                "outcome": Outcome.CANCELLED,
                "reason": reason,
                "worker": worker,
                "processed_at": now,
            }
            for delivery_id in ids
        ],
    )
    cancelled = {
        "status": DeliveryStatus.CANCELLED,
        "last_error": reason,
        "next_attempt_at": None,
        "worker": None,
        "claimed_at": None,
        "updated_at": now,
    }
    session.execute(sa.update(Delivery), [{"id": delivery_id, **cancelled} for delivery_id in ids])
    return len(ids)


# --- how a batch ends when a host paused or stopped its message --------------------------


@dataclass(frozen=True)
class Ending:
    status: BatchStatus
    note: str


def ending_for(session: Session, message_id: int, *, lock: bool = False) -> Ending | None:
    """How a batch of this message ends now: paused or stopped by a host, or None (its
    figures decide, as always).

    ``lock`` (the owner finishing its batch): the message row stays locked until the
    batch is written, so a stop cannot land between this answer and the batch's end and
    find the batch still running (it would leave the rest to an owner that had decided
    "paused"); it waits, then sees the batch ended and cancels the rest itself.
    """
    query = sa.select(
        Message.status,
        Message.paused_by,
        Message.paused_at,
        Message.held_at,
        Message.hold_after,
        Message.status_reason,
    ).where(Message.id == message_id)
    row = session.execute(query.with_for_update() if lock else query).one()
    if row.status is M.PAUSED:
        pending = delivery_counts(session, [message_id])[message_id].pending
        held = row.held_at is not None and row.held_at == row.paused_at
        who = f"after the first {row.hold_after:,} sent" if held else f"by {row.paused_by}"
        return Ending(BatchStatus.PAUSED, f"Paused {who}; {pending:,} left to send.")
    if row.status is M.STOPPED:
        return Ending(BatchStatus.STOPPED, row.status_reason or "Stopped")
    return None


def end_by_host(
    session: Session,
    message_id: int,
    batch_id: int,
    ending: Ending,
    worker: str | None,
    now: datetime,
    lease: timedelta,
) -> dict[str, int]:
    """The figures of a batch a host paused or stopped: for a stop, what it had not sent is
    cancelled into it first; its total is what it recorded, so its figures add up. The
    caller writes the batch, then ``keep_stopped_figures`` for a stop."""
    if ending.status is BatchStatus.STOPPED:
        message = session.get(Message, message_id)
        assert message is not None
        reason = ending.note[0].lower() + ending.note[1:]
        cancel_rest(session, message, batch_id, reason, worker, now, lease)
    figures = batch_figures(entry_counts(session, batch_id))
    return {**figures, "total": sum(figures.values())}


def _ids(message: Message) -> dict[str, int]:
    return {"event_id": message.event_id, "message_id": message.id}
