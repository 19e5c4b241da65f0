"""Messages over JSON: the same services as the Communications page."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, url_for
from flask_login import current_user
from werkzeug.exceptions import NotFound

from dashboard.api import bp, load_body, load_query
from dashboard.api.inputs import (
    MessageCreate,
    MessageQuery,
    MessageUpdate,
    RecipientCountQuery,
)
from dashboard.api.openapi import operation
from dashboard.api.schemas import (
    Derived,
    Message,
    MessagePage,
    MessageSent,
    RecipientCount,
)
from dashboard.audit.current import current_actor
from dashboard.dispatch import scheduler
from dashboard.dispatch.queries import message_counts, send_times
from dashboard.events.access import get_event_for
from dashboard.events.models import Event, Role
from dashboard.extensions import db
from dashboard.messages import audience as audiences
from dashboard.messages import lists
from dashboard.messages import services as svc
from dashboard.messages.models import Message as MessageRow
from dashboard.messages.models import MessageStatus
from dashboard.messages.restore import restore_to_draft
from dashboard.web import paginate

#: What a message's state can refuse, on top of the usual errors.
CHANGE_ERRORS = (401, 403, 404, 409)


def _now() -> datetime:
    return datetime.now(UTC)


def _message(event: Event, message_id: int) -> MessageRow:
    message = lists.get_message_of(db.session, event, message_id)
    if message is None:
        raise NotFound("No such message on this event.")
    return message


def _one(
    message: MessageRow, event: Event, model: type[Message] = Message, **extra: int
) -> Message:
    counts = message_counts(db.session, [message.id])
    times = send_times(db.session, [message.id])
    row = Derived(message, **extra) if extra else message
    return model.model_validate(row, context={"tz": event.tz, "counts": counts, "times": times})


def _wake() -> None:
    scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]


@bp.get("/events/<int:event_id>/messages")
@operation(ok=MessagePage, tag="messages", query=MessageQuery)
def list_messages(event_id: int) -> MessagePage:
    """Messages of an event, newest first."""
    event = get_event_for(db.session, current_user, event_id)
    query = load_query(MessageQuery)
    result = paginate(lists.messages_query(event.id, query.status), query.page, query.per_page)
    ids = [m.id for m in result.items]
    context = {
        "tz": event.tz,
        "counts": message_counts(db.session, ids),
        "times": send_times(db.session, ids),
    }
    return MessagePage.model_validate(result, context=context)


@bp.post("/events/<int:event_id>/messages")
@operation(ok=Message, status=201, tag="messages", body=MessageCreate, errors=CHANGE_ERRORS)
def create_message(event_id: int) -> tuple[Message, int, dict[str, str]]:
    """Compose a message: save a draft, schedule it, or send it now; editor or owner."""
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    body = load_body(MessageCreate)
    message = svc.create_message(
        db.session, event, current_actor(), **body.model_dump(), now=_now()
    )
    db.session.commit()
    if message.status is MessageStatus.SENDING:
        _wake()
    location = url_for("api.get_message", event_id=event.id, message_id=message.id)
    return _one(message, event), 201, {"Location": location}


@bp.get("/events/<int:event_id>/messages/recipient-count")
@operation(ok=RecipientCount, tag="messages", query=RecipientCountQuery)
def recipient_count(event_id: int) -> RecipientCount:
    """How many guests of an audience would receive a message, and who is left out."""
    event = get_event_for(db.session, current_user, event_id)
    chosen = load_query(RecipientCountQuery).audience
    return RecipientCount.model_validate(audiences.count_recipients(db.session, event.id, chosen))


@bp.get("/events/<int:event_id>/messages/<int:message_id>")
@operation(ok=Message, tag="messages")
def get_message(event_id: int, message_id: int) -> Message:
    """One message."""
    event = get_event_for(db.session, current_user, event_id)
    return _one(_message(event, message_id), event)


@bp.patch("/events/<int:event_id>/messages/<int:message_id>")
@operation(ok=Message, tag="messages", body=MessageUpdate, errors=CHANGE_ERRORS)
def update_message(event_id: int, message_id: int) -> Message:
    """Edit a draft or scheduled message; editor or owner."""
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    changes = load_body(MessageUpdate).model_dump(exclude_unset=True)
    svc.update_message(db.session, message, now=_now(), actor=current_actor(), **changes)
    db.session.commit()
    if message.status is MessageStatus.SENDING:
        _wake()
    return _one(message, event)


@bp.delete("/events/<int:event_id>/messages/<int:message_id>")
@operation(ok=Message, tag="messages", errors=CHANGE_ERRORS)
def cancel_message(event_id: int, message_id: int) -> Message:
    """Cancel a draft or scheduled message; editor or owner."""
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    svc.cancel_message(db.session, message, now=_now(), actor=current_actor())
    db.session.commit()
    return _one(message, event)


@bp.post("/events/<int:event_id>/messages/<int:message_id>/restore")
@operation(ok=Message, tag="messages", errors=CHANGE_ERRORS)
def restore_message(event_id: int, message_id: int) -> Message:
    """Restore a cancelled message as a draft (no send time); editor or owner. 409 for any
    other status, or while the event is cancelled or archived."""
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    restore_to_draft(db.session, message, now=_now(), actor=current_actor())
    db.session.commit()
    return _one(message, event)


@bp.post("/events/<int:event_id>/messages/<int:message_id>/send-now")
@operation(ok=MessageSent, status=202, tag="messages", errors=CHANGE_ERRORS)
def send_now(event_id: int, message_id: int) -> tuple[Message, int]:
    """Send a message now (hands it to dispatch); editor or owner.

    Drafts, scheduled and overdue messages, and dry runs (sent for real this time). Refused
    (409, with why) when nobody would receive it, or when it can never be sent: a reminder
    of an event that has started or is cancelled, anything of an archived event.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    batch = svc.send_now(db.session, message, current_actor(), now=_now())
    db.session.commit()
    _wake()
    return _one(message, event, MessageSent, batch_id=batch.id), 202
