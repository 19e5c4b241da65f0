from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dashboard.auth.models import User
from dashboard.db_types import UTCDateTime, Words, enum_column, utcnow
from dashboard.events.models import Guest
from dashboard.extensions import db
from dashboard.messages.models import Message


class DeliveryStatus(Words):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: Never sent: the host stopped the message first (the reason names who).
    CANCELLED = "cancelled"


class ErrorKind(enum.StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class BatchTrigger(enum.StrEnum):
    SCHEDULE = "schedule"
    SEND_NOW = "send_now"
    RETRY = "retry"  # automatic retry of transient failures
    RETRY_FAILED = "retry_failed"  # manual "retry failed"
    RESUME = "resume"  # after an interrupted batch, an outage, or a host's pause
    SEND_ONE = "send_one"
    STOP = "stop"  # a host stopped a paused message: what was left is recorded as cancelled

    @property
    def label(self) -> str:
        return {
            "schedule": "Scheduled send",
            "send_now": "Send now",
            "retry": "Automatic retry",
            "retry_failed": "Retry failed",
            "resume": "Resume",
            "send_one": "Single re-send",
            "stop": "Stop",
        }[self.value]


class BatchStatus(Words):
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    #: Ended by a host's pause (or a ``hold_after``): its figures are what it did; a
    #: resume batch sends the rest.
    PAUSED = "paused"
    #: Ended by a host's stop: what it had not sent is recorded as cancelled.
    STOPPED = "stopped"


class Outcome(Words):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    CANCELLED = "cancelled"


class Delivery(db.Model):
    """The one fact "did this guest get this message": unique per (message, guest)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "guest_id"),
        # Keyset walks and chunk claims: WHERE message_id = ? AND status = ? AND id > ? ORDER BY id.
        sa.Index("ix_deliveries_message_id_status_id", "message_id", "status", "id"),
        # The retry buttons count failed rows by kind from this index alone; only failed
        # rows are in it, so a row that is sent never touches it.
        sa.Index(
            "ix_deliveries_failed_kind",
            "message_id",
            "status",
            "error_kind",
            sqlite_where=sa.text("status = 'failed'"),
            postgresql_where=sa.text("status = 'failed'"),
        ),
        sa.Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # Only rows being sent hold a claim (NULL otherwise), so this index stays tiny.
        sa.Index("ix_deliveries_claimed_at", "claimed_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"))
    guest_id: Mapped[int] = mapped_column(
        sa.ForeignKey("guests.id", ondelete="CASCADE"), index=True
    )
    #: The name and address it was (or will be) sent to, kept as they were: the guest may
    #: be renamed, readdressed or removed later, and the history must still say who got it.
    name: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    dry_run: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text())
    error_kind: Mapped[ErrorKind | None] = mapped_column(enum_column(ErrorKind, "error_kind"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(255))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The worker (dispatcher process) sending this row right now, and when it last said
    #: so (its heartbeat renews it; older than the lease, the claim has lapsed). Several
    #: workers share one batch by claiming chunks of it.
    worker: Mapped[str | None] = mapped_column(sa.String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    message: Mapped[Message] = relationship()
    guest: Mapped[Guest] = relationship()


class Batch(db.Model):
    """One run over a message's recipients. ``worker`` + ``heartbeat_at`` form its lease."""

    __tablename__ = "batches"
    __table_args__ = (
        sa.Index("ix_batches_message_id_id", "message_id", "id"),
        sa.Index("ix_batches_status_heartbeat_at", "status", "heartbeat_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"))
    trigger: Mapped[BatchTrigger] = mapped_column(enum_column(BatchTrigger, "batch_trigger"))
    initiated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    initiated_label: Mapped[str] = mapped_column(sa.String(254), default="scheduler")
    status: Mapped[BatchStatus] = mapped_column(
        enum_column(BatchStatus, "batch_status"), default=BatchStatus.RUNNING
    )
    dry_run: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int] = mapped_column(default=0)
    sent: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The worker that runs (and finishes) it; helpers only record entries into it.
    worker: Mapped[str | None] = mapped_column(sa.String(100))
    #: The transport its owner sends through (``smtp``, ``resend``, ...), for the metrics.
    transport: Mapped[str | None] = mapped_column(sa.String(30))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set by the owner when it starts finishing: no process claims more of its work.
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(sa.Text())

    message: Mapped[Message] = relationship()
    initiated_by: Mapped[User | None] = relationship()


class BatchEntry(db.Model):
    """What one batch did to one delivery: unique on (batch, delivery) and nowhere else, so a
    retry, a resume or an overlapping audience can always record its own outcome."""

    __tablename__ = "batch_entries"
    __table_args__ = (
        sa.UniqueConstraint("batch_id", "delivery_id"),
        sa.Index("ix_batch_entries_batch_id_outcome_id", "batch_id", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("batches.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome, "entry_outcome"))
    reason: Mapped[str | None] = mapped_column(sa.Text())
    error_kind: Mapped[ErrorKind | None] = mapped_column(enum_column(ErrorKind, "entry_error_kind"))
    #: The worker that sent (or skipped) it: one batch may be shared by several.
    worker: Mapped[str | None] = mapped_column(sa.String(100))
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    batch: Mapped[Batch] = relationship()
    delivery: Mapped[Delivery] = relationship()


class SchedulerPoll(db.Model):
    """Last poll of each scheduler process, for /healthz and stats."""

    __tablename__ = "scheduler_polls"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    last_poll_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text())


class SendLimit(db.Model):
    """Shared by every dispatcher process on the database: the pacing of requests.

    ``next_at`` (seconds since the epoch) is the first free slot of the ``rate`` timeline:
    a process reserves the slots of a chunk by moving it forward in one UPDATE, so all
    processes together keep ``DISPATCH_RATE_PER_SECOND``; a provider's "slow down" moves it
    past the wait, so every process waits. The ``quota`` row is locked while the daily
    quota is counted, so two processes never spend the same remainder.
    """

    __tablename__ = "send_limits"

    name: Mapped[str] = mapped_column(sa.String(30), primary_key=True)
    next_at: Mapped[float] = mapped_column(sa.Float(), default=0.0)


class SendSpend(db.Model):
    """E-mails handed to the transport at ``at``: the rolling 24 hours of the daily quota."""

    __tablename__ = "send_spends"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    amount: Mapped[int] = mapped_column()
