"""Reading the audit log: an event's entries, or one message's, newest first."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.audit.models import AuditEntry


def event_log(event_id: int, message_id: int | None = None) -> sa.Select[tuple[AuditEntry]]:
    """The entries of an event (or of one of its messages), newest first, on their indexes."""
    stmt = sa.select(AuditEntry).where(AuditEntry.event_id == event_id)
    if message_id is not None:
        stmt = stmt.where(AuditEntry.message_id == message_id)
    return stmt.order_by(AuditEntry.id.desc())
