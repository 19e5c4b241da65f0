"""What a change of an event did to its messages, for the audit log.

Moving an event re-times, cancels or creates its reminders (and an event-wide action may
cancel every message): take ``message_states`` before, make the change, then
``record_message_changes`` writes one entry per message that changed, with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, changes, record
from dashboard.messages.models import Message, MessageKind, MessageStatus

#: (status, send_at) of each message, by id.
States = dict[int, tuple[MessageStatus, datetime | None]]


def reminders_only() -> sa.ColumnElement[bool]:
    return Message.kind != MessageKind.CUSTOM


def message_states(session: Session, event_id: int, *where: sa.ColumnElement[bool]) -> States:
    rows = session.execute(
        sa.select(Message.id, Message.status, Message.send_at).where(
            Message.event_id == event_id, *where
        )
    )
    return {row.id: (MessageStatus(row.status), row.send_at) for row in rows}


def record_message_changes(
    session: Session,
    actor: Actor,
    event_id: int,
    before: States,
    *where: sa.ColumnElement[bool],
    now: datetime,
    reason: str,
) -> int:
    """One entry per message created, re-timed, cancelled or scheduled again since
    ``before``; how many were written."""
    written = 0
    for message in session.scalars(
        sa.select(Message).where(Message.event_id == event_id, *where).order_by(Message.id)
    ):
        details: dict[str, Any] = {"kind": message.kind, "reason": reason}
        if message.id not in before:
            action = "message.create"
            details["send_at"] = message.send_at
        else:
            status, send_at = before[message.id]
            changed = changes(
                {"status": status, "send_at": send_at},
                {"status": message.status, "send_at": message.send_at},
            )
            if not changed:
                continue
            if message.status is MessageStatus.CANCELLED:
                action = "message.cancel"
            elif status is MessageStatus.CANCELLED:
                action = "message.restore"  # the system brings back what it cancelled
            else:
                action = "message.schedule"
            details["changes"] = changed
        record(
            session,
            actor,
            action,
            now=now,
            event_id=event_id,
            message_id=message.id,
            details=details,
        )
        written += 1
    return written
