from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.auth.models import User
from dashboard.db_types import ChannelName, UTCDateTime, Words, enum_column, utcnow
from dashboard.errors import IllegalTransition  # noqa: F401 - raised for messages
from dashboard.events.models import Event
from dashboard.extensions import db


class Audience(enum.StrEnum):
    EVERYONE = "everyone"
    ATTENDING = "attending"
    PENDING = "pending"
    DECLINED = "declined"
    MAYBE = "maybe"
    #: Everyone who has not declined (a cancellation notice, say).
    NOT_DECLINED = "not_declined"

    @property
    def label(self) -> str:
        return {"everyone": "Everyone", "not_declined": "Everyone but declined guests"}.get(
            self.value, f"{self.value.capitalize()} guests"
        )


class MessageKind(enum.StrEnum):
    CUSTOM = "custom"
    REMINDER_7D = "reminder_7d"
    REMINDER_3D = "reminder_3d"
    REMINDER_1D = "reminder_1d"
    REMINDER_DAY_OF = "reminder_day_of"

    @property
    def label(self) -> str:
        return KIND_LABELS[self]


KIND_LABELS = {
    MessageKind.CUSTOM: "Custom message",
    MessageKind.REMINDER_7D: "7-day reminder",
    MessageKind.REMINDER_3D: "3-day last call",
    MessageKind.REMINDER_1D: "1-day reminder",
    MessageKind.REMINDER_DAY_OF: "Day-of reminder",
}


class MessageStatus(Words):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    SENT_WITH_FAILURES = "sent_with_failures"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Found too late by the poller (or its event had started): held back, never sent late.
    OVERDUE = "overdue"
    #: Went through dispatch with dry run on: nothing was sent, every recipient still pending.
    DRY_RUN = "dry_run"
    #: A host paused the send (or it reached ``hold_after``): nothing more goes out until a
    #: host resumes it.
    PAUSED = "paused"
    #: A host stopped the send for good: the recipients left are recorded as cancelled.
    STOPPED = "stopped"


EDITABLE = frozenset({MessageStatus.DRAFT, MessageStatus.SCHEDULED, MessageStatus.OVERDUE})
FINISHED = frozenset({MessageStatus.SENT, MessageStatus.SENT_WITH_FAILURES, MessageStatus.FAILED})


def _default_channel() -> Any:
    from dashboard.dispatch.channels import EMAIL

    return EMAIL


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        sa.Index(
            "ix_messages_due",
            "send_at",
            sqlite_where=sa.text("status = 'scheduled'"),
            postgresql_where=sa.text("status = 'scheduled'"),
        ),
        sa.Index("ix_messages_event_id_status", "event_id", "status"),
        sa.Index(
            "ix_messages_in_flight",
            "resume_at",
            sqlite_where=sa.text("status = 'sending'"),
            postgresql_where=sa.text("status = 'sending'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    kind: Mapped[MessageKind] = mapped_column(
        enum_column(MessageKind, "message_kind"), default=MessageKind.CUSTOM
    )
    audience: Mapped[Audience] = mapped_column(enum_column(Audience, "message_audience"))
    #: The registered channel (``dashboard.dispatch.channels``); stored as its name.
    channel: Mapped[Any] = mapped_column(ChannelName(), default=_default_channel)
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text())
    #: Attach the event as a calendar invitation (.ics) with "Add to calendar" links.
    attach_calendar: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    status: Mapped[MessageStatus] = mapped_column(
        enum_column(MessageStatus, "message_status"), default=MessageStatus.DRAFT
    )
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Why the message is in its status, in words, when the system put it there ("due Sat
    #: 28 Nov 09:00, found 3 days late", "event cancelled"); NULL after a host's own change.
    status_reason: Mapped[str | None] = mapped_column(sa.String(300))
    #: Set by dispatch when the mail server was unreachable: no new batch before this time.
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The worker (dispatcher process) holding this message, and its last sign of life:
    #: the lease. Older than the lease, any worker may take the message over.
    worker: Mapped[str | None] = mapped_column(sa.String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The delivery figures, aggregated from the rows once the message is finished (NULL
    #: while it is not): lists of sent messages read these instead of re-counting rows.
    final_total: Mapped[int | None] = mapped_column()
    final_sent: Mapped[int | None] = mapped_column()
    final_failed: Mapped[int | None] = mapped_column()
    final_skipped: Mapped[int | None] = mapped_column()
    final_cancelled: Mapped[int | None] = mapped_column()
    #: Send to the first N recipients, then pause until a host has checked how it arrived;
    #: ``held_at`` says the hold was reached (a resume sends the rest without holding again).
    hold_after: Mapped[int | None] = mapped_column()
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Who paused it and when, while it is paused (``status_reason`` says it in words).
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_by: Mapped[str | None] = mapped_column(sa.String(300))
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship()
    created_by: Mapped[User | None] = relationship()

    @property
    def label(self) -> str:
        return self.kind.label

    @property
    def editable(self) -> bool:
        return self.status in EDITABLE
