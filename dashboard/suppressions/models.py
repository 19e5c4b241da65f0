"""The site-wide suppression list: addresses nothing is sent to any more, and why."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from dashboard.db_types import UTCDateTime, Words, enum_column, utcnow
from dashboard.extensions import db


class SuppressionKind(Words):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"

    @property
    def label(self) -> str:
        return {"hard_bounce": "hard bounce", "complaint": "spam complaint"}[self.value]


class Suppression(db.Model):
    """One suppressed address (unique by its lower-cased form, like guests' ``email_key``).

    ``reason`` is the whole sentence a skipped delivery shows after "suppressed: ", made
    when the row is written ("hard bounce on 2 Dec, 550 5.1.1 mailbox unavailable").
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    email_key: Mapped[str] = mapped_column(sa.String(254), unique=True)
    kind: Mapped[SuppressionKind] = mapped_column(enum_column(SuppressionKind, "suppression_kind"))
    reason: Mapped[str] = mapped_column(sa.String(400))
    #: Where it came from: the transport that was refused, or the provider's webhook.
    source: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class WebhookReceipt(db.Model):
    """A provider's webhook delivery already handled (its id), so a replay changes nothing."""

    __tablename__ = "webhook_receipts"
    __table_args__ = (sa.UniqueConstraint("source", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(40))
    delivery_id: Mapped[str] = mapped_column(sa.String(200))
    event_type: Mapped[str] = mapped_column(sa.String(80))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
