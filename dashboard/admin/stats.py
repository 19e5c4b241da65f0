"""Monitoring figures: one service behind ``GET /api/stats``, ``flask stats`` and ``/healthz``.

Every figure is an SQL aggregate over the rows (invariant 7); nothing is cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dashboard.database import count_by
from dashboard.db_types import iso
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    Delivery,
    DeliveryStatus,
    Outcome,
    SchedulerPoll,
)
from dashboard.dispatch.rules import retryable
from dashboard.dispatch.settings import DispatchSettings
from dashboard.messages.models import Message, MessageStatus

log = logging.getLogger(__name__)

#: /healthz answers 503 when the newest poll is older than this many poll intervals.
MISSED_POLLS = 3


@dataclass(frozen=True)
class StatsSettings:
    """What the figures depend on, read once from the configuration."""

    max_attempts: int
    lease: timedelta
    poll_seconds: float
    scheduler_enabled: bool

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StatsSettings:
        dispatch = DispatchSettings.from_config(config)
        return cls(
            max_attempts=dispatch.max_attempts,
            lease=dispatch.lease,
            poll_seconds=float(config["SCHEDULER_POLL_SECONDS"]),
            scheduler_enabled=bool(config["SCHEDULER_ENABLED"]),
        )


def _by_status(
    session: Session, column: Any, statuses: type[Any], *where: sa.ColumnElement[bool]
) -> dict[str, int]:
    found = {statuses(value).value: n for value, n in count_by(session, column, *where).items()}
    return {status.value: found.get(status.value, 0) for status in statuses}


def last_poll_at(session: Session) -> datetime | None:
    return session.scalar(sa.select(sa.func.max(SchedulerPoll.last_poll_at)))


def stuck_clause(now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    """Running, and no sign of life for longer than the lease (queued ones count from started_at)."""
    return sa.and_(
        Batch.status == BatchStatus.RUNNING,
        sa.func.coalesce(Batch.heartbeat_at, Batch.started_at) < now - lease,
    )


def collect_stats(session: Session, now: datetime, settings: StatsSettings) -> dict[str, Any]:
    """The monitoring document (a plain dict, ready for JSON)."""
    day_ago = now - timedelta(hours=24)
    failed = Delivery.status == DeliveryStatus.FAILED
    awaiting = retryable(settings.max_attempts)
    failed_row = session.execute(
        sa.select(
            sa.func.count().filter(awaiting),
            sa.func.count().filter(sa.not_(awaiting)),
        ).where(failed)
    ).one()
    batches = session.execute(
        sa.select(
            sa.func.count().filter(Batch.status == BatchStatus.RUNNING),
            sa.func.count().filter(stuck_clause(now, settings.lease)),
            sa.func.count().filter(
                Batch.status == BatchStatus.INTERRUPTED, Batch.finished_at >= day_ago
            ),
        )
    ).one()
    last_poll = last_poll_at(session)
    return {
        "generated_at": iso(now),
        "messages": _by_status(session, Message.status, MessageStatus),
        "deliveries": {
            "last_24h": _by_status(
                session, Delivery.status, DeliveryStatus, Delivery.updated_at >= day_ago
            ),
            "all": _by_status(session, Delivery.status, DeliveryStatus),
        },
        "outcomes": {
            "last_24h": _by_status(
                session, BatchEntry.outcome, Outcome, BatchEntry.processed_at >= day_ago
            ),
            "all": _by_status(session, BatchEntry.outcome, Outcome),
        },
        "failed_awaiting_retry": failed_row[0],
        "failed_permanently": failed_row[1],
        "batches": {
            "running": batches[0],
            "stuck": batches[1],
            "interrupted_last_24h": batches[2],
        },
        "last_poll_at": iso(last_poll),
        "scheduler": scheduler_state(last_poll, now, settings),
    }


def scheduler_state(
    last_poll: datetime | None, now: datetime, settings: StatsSettings
) -> dict[str, Any]:
    """Healthy unless the scheduler is on and its newest poll is three intervals old."""
    state: dict[str, Any] = {
        "enabled": settings.scheduler_enabled,
        "poll_seconds": settings.poll_seconds,
        "last_poll_at": iso(last_poll),
        "seconds_since_poll": round((now - last_poll).total_seconds(), 1) if last_poll else None,
    }
    if not settings.scheduler_enabled:
        state["status"] = "disabled"
    elif last_poll is None:
        state["status"] = "never polled"
    elif now - last_poll > timedelta(seconds=MISSED_POLLS * settings.poll_seconds):
        state["status"] = "late"
    else:
        state["status"] = "ok"
    return state


def health(session: Session, now: datetime, settings: StatsSettings) -> tuple[dict[str, Any], bool]:
    """The /healthz document and whether the service is healthy."""
    try:
        session.execute(sa.select(1))
        last_poll = last_poll_at(session)
    except SQLAlchemyError as error:
        session.rollback()
        log.warning("health check: database unreachable: %s", error)
        return {
            "status": "unavailable",
            "database": "unreachable",
            "scheduler": {"enabled": settings.scheduler_enabled, "status": "unknown"},
        }, False
    scheduler = scheduler_state(last_poll, now, settings)
    healthy = scheduler["status"] in ("ok", "disabled")
    return {
        "status": "ok" if healthy else "unavailable",
        "database": "ok",
        "scheduler": scheduler,
    }, healthy
