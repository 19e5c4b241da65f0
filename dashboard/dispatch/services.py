"""What routes, the API, the CLI and the admin pages ask of dispatch: send now, retry the
failed recipients, re-send one delivery. Plain functions; the caller commits (and then
wakes the scheduler, which runs the queued batch).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, record
from dashboard.dispatch import claim, states
from dashboard.dispatch.control import queue_batch
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger, Delivery, ErrorKind
from dashboard.dispatch.models import DeliveryStatus as D
from dashboard.dispatch.poll import Dispatcher
from dashboard.dispatch.queries import delivery_counts, kept_figures
from dashboard.dispatch.staleness import send_refusal
from dashboard.errors import Conflict
from dashboard.events.models import EventStatus
from dashboard.messages.models import EDITABLE, FINISHED, Message, MessageStatus

#: What send-now takes: what a host may change, and a dry run (sent for real this time).
SENDABLE_NOW = frozenset({*EDITABLE, MessageStatus.DRY_RUN})


def start_send_now(session: Session, message: Message, actor: Actor, now: datetime) -> Batch:
    """A draft, scheduled, overdue or dry-run message moves to sending, and its batch is
    queued for a worker.

    Refused with HTTP 409: IllegalTransition when the message is in no such state (e.g.
    the scheduler just claimed it), Conflict with the reason when it can never be sent
    (a reminder of an event that has started or is cancelled, an archived event).
    """
    refused = send_refusal(message, message.event, now)
    if refused is not None:
        raise Conflict(refused)
    was, planned = message.status, message.send_at
    if not states.move_message(
        session,
        message.id,
        MessageStatus.SENDING,
        now=now,
        expected=SENDABLE_NOW,
        worker=None,
        resume_at=None,
        status_reason=None,
        send_at=now,  # when it actually started, for the lists and the API
    ):
        session.refresh(message)
        raise states.refusal(message.status, MessageStatus.SENDING)
    session.refresh(message)
    batch = queue_batch(session, message.id, BatchTrigger.SEND_NOW, actor, now)
    details = {"from": was, "planned_send_at": planned}
    _record(session, actor, "message.send_now", message, batch, now, details)
    return batch


def _record(
    session: Session,
    actor: Actor,
    action: str,
    message: Message,
    batch: Batch,
    now: datetime,
    details: dict[str, object],
) -> None:
    record(
        session,
        actor,
        action,
        now=now,
        event_id=message.event_id,
        message_id=message.id,
        batch_id=batch.id,
        details=details,
    )


def failed_kinds(session: Session, message_id: int) -> tuple[int, int]:
    """How many deliveries of a message failed temporarily (a retry may well succeed) and
    how many permanently (the server refused the address: the same send fails again)."""
    temporary, permanent = session.execute(failed_kinds_query(message_id)).one()
    return temporary, permanent


def failed_kinds_query(message_id: int) -> sa.Select[tuple[int, int]]:
    """Read from the partial index ``ix_deliveries_failed_kind`` alone."""
    return sa.select(
        sa.func.count().filter(_temporary()),
        sa.func.count().filter(Delivery.error_kind == ErrorKind.PERMANENT),
    ).where(Delivery.message_id == message_id, Delivery.status == D.FAILED)


def _temporary() -> sa.ColumnElement[bool]:
    return sa.or_(Delivery.error_kind.is_(None), Delivery.error_kind != ErrorKind.PERMANENT)


def retry_failed(
    session: Session,
    message: Message,
    actor: Actor,
    now: datetime,
    *,
    permanent: bool = False,
    reason: str | None = None,
) -> Batch:
    """Re-send the failed deliveries of ``message``, in a new batch, reusing their rows.

    Only the temporary failures unless ``permanent``: a permanent one (a 550 "no such
    mailbox") fails again unless someone fixed the guest's address, so it is retried only
    on purpose. ``reason`` narrows it to the failures with that last error (the admin page
    retries one error group).
    """
    scope = [Delivery.message_id == message.id, Delivery.status == D.FAILED]
    if not permanent:
        scope.append(_temporary())
    if reason is not None:
        scope.append(sa.func.coalesce(Delivery.last_error, "") == reason)
    failed = session.scalar(sa.select(sa.func.count()).where(*scope))
    if not failed:
        raise Conflict(_nothing_to_retry(session, message, permanent))
    if _running(session, message.id):
        raise Conflict("A batch of this message is still running; retry when it has finished.")
    if message.status not in FINISHED and message.status is not MessageStatus.SENDING:
        raise Conflict(f"A {message.status.label.lower()} message has nothing to retry.")
    if message.event.status is EventStatus.ARCHIVED:
        raise Conflict("This event is archived: nothing more is sent for it.")
    session.execute(
        sa.update(Delivery)
        .where(*scope)
        .values(status=D.PENDING, next_attempt_at=None, updated_at=now)
    )
    if not states.move_message(
        session,
        message.id,
        MessageStatus.SENDING,
        now=now,
        expected=[*FINISHED, MessageStatus.SENDING],
        resume_at=None,
        worker=None,
        **kept_figures(None),
    ):
        raise Conflict("The message changed meanwhile; reload and try again.")
    batch = queue_batch(session, message.id, BatchTrigger.RETRY_FAILED, actor, now)
    details: dict[str, object] = {"failed": failed, "permanent": permanent}
    if reason is not None:
        details["reason"] = reason
    _record(session, actor, "batch.retry_failed", message, batch, now, details)
    session.refresh(message)
    return batch


def _nothing_to_retry(session: Session, message: Message, permanent: bool) -> str:
    refused = 0 if permanent else failed_kinds(session, message.id)[1]
    if refused:
        who = "recipient" if refused == 1 else "recipients"
        return (
            f"Nothing failed temporarily. {refused} {who} failed permanently (the mail "
            "server refused the address): fix the address on the guest list, then retry "
            "the permanent failures on purpose."
        )
    return "This message has no failed deliveries to retry."


def send_one(dispatcher: Dispatcher, delivery_id: int, actor: Actor) -> Batch:
    """Re-send one delivery on purpose (CLI ``dispatch send-one``), whatever its status.

    Refused while a batch of the same message is running, so it never races a batch.
    """
    session = dispatcher.session
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise LookupError(f"no delivery with id {delivery_id}")
    now = dispatcher.clock()
    message_id = delivery.message_id
    if delivery.message.status in (MessageStatus.PAUSED, MessageStatus.STOPPED):
        state = delivery.message.status.label.lower()
        raise Conflict(f"This message is {state}: nothing of it is sent until a host resumes it.")
    if not claim.claim_lapsed(
        session, message_id, dispatcher.worker, now, dispatcher.settings.lease
    ):
        session.rollback()
        raise Conflict("A batch of this message is running; try again when it has finished.")
    session.execute(
        sa.update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status=D.PENDING, next_attempt_at=None, updated_at=now)
    )
    batch = queue_batch(session, message_id, BatchTrigger.SEND_ONE, actor, now)
    batch.worker, batch.heartbeat_at = dispatcher.worker, now
    details = {"delivery_id": delivery.id, "name": delivery.name, "email": delivery.email}
    _record(session, actor, "batch.send_one", delivery.message, batch, now, details)
    session.commit()
    dispatcher.run(message_id, batch.id, only_delivery=delivery_id)
    # A finished message keeps figures that now include this delivery's new outcome.
    session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.final_total.is_not(None))
        .values(**kept_figures(delivery_counts(session, [message_id])[message_id]))
    )
    session.commit()
    session.refresh(batch)
    return batch


def _running(session: Session, message_id: int) -> bool:
    return bool(
        session.scalar(
            sa.select(
                sa.exists().where(
                    Batch.message_id == message_id, Batch.status == BatchStatus.RUNNING
                )
            )
        )
    )
