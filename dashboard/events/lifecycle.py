"""An event's life after it is planned: cancel it (with an optional notice to every guest
who has not declined), archive it, bring it back from the archive, or delete it while
nothing has been sent for it. Plain functions; the caller commits.

An event's status moves like a message's: one conditional ``UPDATE ... WHERE status IN
(...)``, so two hosts pressing "Cancel" at once cancel it once. Its open messages (draft,
scheduled, overdue) are cancelled through the message state machine, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, record
from dashboard.dispatch import states
from dashboard.dispatch.models import Batch
from dashboard.dispatch.staleness import REASON_EVENT_ARCHIVED, REASON_EVENT_CANCELLED
from dashboard.errors import Conflict, ValidationError
from dashboard.events.models import Event, EventStatus
from dashboard.messages.models import Audience, Message, MessageStatus
from dashboard.messages.reminders import FOOTER

#: Messages that have not gone to dispatch yet: an event that ends takes them with it.
OPEN = (MessageStatus.DRAFT, MessageStatus.SCHEDULED, MessageStatus.OVERDUE)

NOTICE_SUBJECT = "Cancelled: {{event_name}}"
NOTICE_BODY = (
    "Hi {{guest_name}},\n\nwe are sorry to tell you that {{event_name}}, planned for "
    "{{event_date}} at {{venue}}, is cancelled." + FOOTER
)


@dataclass
class Ended:
    """What ending an event did: the messages it cancelled and the notice it sent."""

    event: Event
    cancelled: list[int] = field(default_factory=list)
    notice: Message | None = None


def open_messages(session: Session, event_id: int) -> int:
    """How many messages ending the event would cancel (for the confirm step)."""
    return (
        session.scalar(
            sa.select(sa.func.count()).where(
                Message.event_id == event_id, Message.status.in_([s.value for s in OPEN])
            )
        )
        or 0
    )


def _cancel_open(session: Session, event: Event, reason: str, now: datetime) -> list[int]:
    ids = session.scalars(
        sa.select(Message.id).where(
            Message.event_id == event.id, Message.status.in_([s.value for s in OPEN])
        )
    ).all()
    return [
        message_id
        for message_id in ids
        if states.move_message(
            session,
            message_id,
            MessageStatus.CANCELLED,
            now=now,
            expected=OPEN,
            status_reason=reason,
        )
    ]


def _move(
    session: Session,
    event: Event,
    target: EventStatus,
    expected: Iterable[EventStatus],
    now: datetime,
    **values: Any,
) -> None:
    """The one guarded write of an event's status; Conflict when it moved meanwhile."""
    moved = session.execute(
        sa.update(Event)
        .where(Event.id == event.id, Event.status.in_([s.value for s in expected]))
        .values(status=target, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(event)
    if moved != 1:
        raise Conflict(f"This event is {event.status.value} now; reload the page.")


def _notice(
    session: Session,
    event: Event,
    actor: Actor,
    subject: str | None,
    body: str | None,
    now: datetime,
) -> Message:
    """The cancellation notice, handed to dispatch like any send-now (ValidationError with
    the cancel form's field names when it is not valid or would reach nobody)."""
    from dashboard.messages.services import Mode, create_message

    try:
        return create_message(
            session,
            event,
            actor,
            audience=Audience.NOT_DECLINED,
            subject=subject if subject is not None else NOTICE_SUBJECT,
            body=body if body is not None else NOTICE_BODY,
            mode=Mode.SEND_NOW,
            now=now,
        )
    except ValidationError as error:
        renamed = {"audience": "notify", "mode": "notify"}
        raise ValidationError({renamed.get(k, k): v for k, v in error.errors.items()}) from None


def cancel_event(
    session: Session,
    event: Event,
    actor: Actor,
    *,
    now: datetime,
    notify: bool = False,
    subject: str | None = None,
    body: str | None = None,
) -> Ended:
    """active -> cancelled: its open messages are cancelled ("event cancelled"), and with
    ``notify`` a notice goes to every guest who has not declined (the caller commits, then
    wakes dispatch). A message being sent right now is not stopped."""
    if event.status is not EventStatus.ACTIVE:
        raise Conflict(f"This event is already {event.status.value}.")
    ended = Ended(event, _cancel_open(session, event, REASON_EVENT_CANCELLED, now))
    if notify:
        ended.notice = _notice(session, event, actor, subject, body, now)
    _move(session, event, EventStatus.CANCELLED, [EventStatus.ACTIVE], now, cancelled_at=now)
    details: dict[str, Any] = {"cancelled_messages": len(ended.cancelled)}
    if ended.notice is not None:
        details["notice_message_id"] = ended.notice.id
    record(session, actor, "event.cancel", now=now, event_id=event.id, details=details)
    return ended


def archive_event(session: Session, event: Event, actor: Actor, *, now: datetime) -> Ended:
    """active|cancelled -> archived: hidden from the index, readable, nothing more sent.

    Open messages are cancelled ("event archived"); refused while a message is being sent.
    """
    if event.status is EventStatus.ARCHIVED:
        raise Conflict("This event is already archived.")
    sending = session.scalar(
        sa.select(Message.subject)
        .where(Message.event_id == event.id, Message.status == MessageStatus.SENDING)
        .limit(1)
    )
    if sending is not None:
        raise Conflict(f"“{sending}” is being sent; archive the event once it has finished.")
    ended = Ended(event, _cancel_open(session, event, REASON_EVENT_ARCHIVED, now))
    _move(session, event, EventStatus.ARCHIVED, [EventStatus.ACTIVE, EventStatus.CANCELLED], now)
    details = {"cancelled_messages": len(ended.cancelled)}
    record(session, actor, "event.archive", now=now, event_id=event.id, details=details)
    return ended


def unarchive_event(session: Session, event: Event, actor: Actor, *, now: datetime) -> Event:
    """archived -> back to what it was (cancelled if it had been cancelled, else active).

    The messages the archive cancelled stay cancelled."""
    if event.status is not EventStatus.ARCHIVED:
        raise Conflict(f"This event is {event.status.value}, not archived.")
    target = EventStatus.CANCELLED if event.cancelled_at is not None else EventStatus.ACTIVE
    _move(session, event, target, [EventStatus.ARCHIVED], now)
    record(session, actor, "event.unarchive", now=now, event_id=event.id)
    return event


def send_history(session: Session, event_id: int) -> int:
    """How many messages of the event went to dispatch (a batch exists: sent, tried, or a
    dry run); their log must outlive any clean-up a host asks for."""
    return (
        session.scalar(
            sa.select(sa.func.count(sa.distinct(Batch.message_id)))
            .join(Message, Message.id == Batch.message_id)
            .where(Message.event_id == event_id)
        )
        or 0
    )


def delete_event(session: Session, event: Event, actor: Actor, *, now: datetime) -> None:
    """Delete an event that nothing was ever sent for: its guests, its unsent messages and
    its collaborators go with it. Refused (Conflict, with why) once any message has a send
    log: archive it instead."""
    sent = send_history(session, event.id)
    if sent:
        what = "1 of its messages has" if sent == 1 else f"{sent} of its messages have"
        raise Conflict(
            f"“{event.name}” cannot be deleted: {what} been sent, and their log is kept. "
            "Archive the event instead."
        )
    details = {"name": event.name, "starts_at": event.starts_at.isoformat()}
    record(session, actor, "event.delete", now=now, event_id=event.id, details=details)
    session.execute(sa.delete(Event).where(Event.id == event.id))  # the rest by ON DELETE CASCADE
    session.expunge(event)
