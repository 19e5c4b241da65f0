"""Taking back a cancel: a cancelled message returns as a draft. Plain function; the caller
commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, changes, record
from dashboard.dispatch import states
from dashboard.errors import Conflict
from dashboard.messages.models import Message, MessageStatus


def restore_to_draft(session: Session, message: Message, *, now: datetime, actor: Actor) -> Message:
    """cancelled -> draft, without a send time: a host takes back a cancel, and nothing goes
    out until someone schedules or sends it again. Refused (409) for any other status and
    while the event is closed (cancelled or archived: it sends nothing more)."""
    closed = message.event.closed_reason
    if closed is not None:
        raise Conflict(closed)
    moved = states.move_message(
        session,
        message.id,
        MessageStatus.DRAFT,
        now=now,
        expected=[MessageStatus.CANCELLED],
        status_reason=None,
        send_at=None,
    )
    session.refresh(message)
    if not moved:
        raise Conflict(
            f"This message is {message.status.label.lower()}: only a cancelled message can "
            "be restored as a draft."
        )
    details = {"changes": changes({"status": MessageStatus.CANCELLED}, {"status": message.status})}
    record(
        session,
        actor,
        "message.restore_draft",
        now=now,
        event_id=message.event_id,
        message_id=message.id,
        details=details,
    )
    return message
