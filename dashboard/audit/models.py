from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db_types import UTCDateTime, utcnow
from dashboard.extensions import db


class AuditEntry(db.Model):
    """One change, who made it and when: a user, an API token, a CLI command or the scheduler.

    The rows name what they touched by id without foreign keys, so an entry outlives the
    row it speaks of (a removed guest, a deleted draft) until the retention job removes it.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_event_id_id", "event_id", "id"),
        sa.Index("ix_audit_log_message_id_id", "message_id", "id"),
        sa.Index("ix_audit_log_at", "at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: In words: a user's e-mail, "<e-mail> (token <name>)", "cli:<name>" or "scheduler".
    actor: Mapped[str] = mapped_column(sa.String(300))
    actor_user_id: Mapped[int | None] = mapped_column()
    #: "<object>.<verb>", e.g. "message.cancel", "event.move", "guest.remove".
    action: Mapped[str] = mapped_column(sa.String(64))
    event_id: Mapped[int | None] = mapped_column()
    message_id: Mapped[int | None] = mapped_column()
    batch_id: Mapped[int | None] = mapped_column()
    guest_id: Mapped[int | None] = mapped_column()
    #: What changed: the fields an edit changed (old and new), counts a cancel affected...
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON(), default=dict)
