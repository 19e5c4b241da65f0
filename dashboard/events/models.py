from __future__ import annotations

import enum
import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.auth.models import User
from dashboard.db_types import UTCDateTime, Words, enum_column, utcnow
from dashboard.extensions import db


class Role(enum.StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return {"viewer": 1, "editor": 2, "owner": 3}[self.value]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class RsvpStatus(Words):
    ATTENDING = "attending"
    PENDING = "pending"
    DECLINED = "declined"
    MAYBE = "maybe"


class EventStatus(Words):
    ACTIVE = "active"
    #: Called off: its open messages were cancelled, nothing more goes out for it.
    CANCELLED = "cancelled"
    #: Done with: hidden from the index, readable, and nothing more goes out for it.
    ARCHIVED = "archived"


#: How long an event lasts when its host gives no end.
DEFAULT_LENGTH = timedelta(hours=2)


def _default_end(context: Any) -> datetime:
    return context.get_current_parameters()["starts_at"] + DEFAULT_LENGTH


class Event(db.Model):
    __tablename__ = "events"
    #: SQLite reuses the highest id of deleted rows without this; links must never change meaning.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_default_end)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    venue: Mapped[str] = mapped_column(sa.String(300), default="")
    status: Mapped[EventStatus] = mapped_column(
        enum_column(EventStatus, "event_status"),
        default=EventStatus.ACTIVE,
        server_default=EventStatus.ACTIVE.value,
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The From display name of its e-mails (the address stays MAIL_DEFAULT_SENDER's, so
    #: SPF and DKIM keep passing); empty means MAIL_DEFAULT_SENDER's own name.
    sender_name: Mapped[str] = mapped_column(sa.String(100), default="", server_default="")
    #: Where guests' replies go (the Reply-To header); empty means no such header.
    reply_to: Mapped[str] = mapped_column(sa.String(254), default="", server_default="")
    #: The SEQUENCE of its calendar invitation: raised whenever the start or end moves,
    #: so calendars replace the entry they already have instead of keeping the old time.
    calendar_sequence: Mapped[int] = mapped_column(default=0, server_default="0")
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    collaborators: Mapped[list[Collaborator]] = relationship(
        back_populates="event", cascade="all, delete-orphan"
    )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def starts_local(self) -> datetime:
        return self.starts_at.astimezone(self.tz)

    @property
    def active(self) -> bool:
        return self.status is EventStatus.ACTIVE

    @property
    def closed_reason(self) -> str | None:
        """Why nothing new may be sent for (or changed on) this event; None while it is active."""
        if self.status is EventStatus.ACTIVE:
            return None
        return f"This event is {self.status.value}: nothing new can be sent or changed for it."


class Collaborator(db.Model):
    __tablename__ = "collaborators"
    __table_args__ = (sa.UniqueConstraint("event_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, "collaborator_role"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    event: Mapped[Event] = relationship(back_populates="collaborators")
    user: Mapped[User] = relationship()


class Guest(db.Model):
    """A guest of one event. ``email_key`` is the lower-cased address that makes it unique."""

    __tablename__ = "guests"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "email_key"),
        sa.Index("ix_guests_event_id_rsvp_status", "event_id", "rsvp_status"),
        # The preview's first receivable guest, without sorting the event's guests.
        sa.Index("ix_guests_event_id_id", "event_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(254))
    email_key: Mapped[str] = mapped_column(sa.String(254))
    rsvp_status: Mapped[RsvpStatus] = mapped_column(
        enum_column(RsvpStatus, "rsvp_status"), default=RsvpStatus.PENDING
    )
    token: Mapped[str] = mapped_column(
        sa.String(64), unique=True, default=lambda: secrets.token_urlsafe(24)
    )
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Removed from the guest list: out of every audience and count, but the row stays so
    #: their deliveries keep their history, and adding the address again restores it.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship()

    @staticmethod
    def key_for(email: str) -> str:
        return email.strip().lower()

    @property
    def unsubscribed(self) -> bool:
        return self.unsubscribed_at is not None

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


class GuestCount(db.Model):
    """How many guests of an event have an RSVP status and a kind (``removed``,
    ``unsubscribed``, ``no_address``, ``reachable``): kept by database triggers on
    ``guests`` in the transaction of each guest write (migration 0013), so the live
    recipient count reads a few rows whatever the size of the guest list."""

    __tablename__ = "guest_counts"

    event_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    rsvp_status: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    n: Mapped[int] = mapped_column()
