"""Duplicate any message into a new draft: the quickest way to send a corrected or repeated
message, whatever became of the original. Plain function; the caller commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, record
from dashboard.errors import Conflict
from dashboard.messages.models import Message, MessageKind, MessageStatus


def duplicate_message(session: Session, message: Message, actor: Actor, now: datetime) -> Message:
    """A new draft with the original's audience, channel, subject, body and hold; it has no
    send time and is a custom message even when the original was a reminder (reminders
    follow their event's date, a copy does not). Refused (409) on a closed event."""
    event = message.event
    if event.closed_reason is not None:
        raise Conflict(event.closed_reason)
    copy = Message(
        event_id=message.event_id,
        kind=MessageKind.CUSTOM,
        audience=message.audience,
        channel=message.channel,
        subject=message.subject,
        body=message.body,
        status=MessageStatus.DRAFT,
        send_at=None,
        hold_after=message.hold_after,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(copy)
    session.flush()
    details = {
        "from_message_id": message.id,
        "from_kind": message.kind,
        "from_status": message.status,
    }
    record(
        session,
        actor,
        "message.duplicate",
        now=now,
        event_id=copy.event_id,
        message_id=copy.id,
        details=details,
    )
    return copy
