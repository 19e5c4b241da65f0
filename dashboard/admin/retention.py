"""Log retention (invariant 13): old batches and their entries go, in bulk, daily and from
``flask logs cleanup``, and so do audit entries older than their own (longer) period.

Deliveries are never deleted here: they hold each recipient's final outcome, which is
what makes a second send of the same message impossible.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask
from sqlalchemy.orm import Session

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import SCHEDULER, Actor, record
from dashboard.db_types import utcnow
from dashboard.dispatch.models import Batch, BatchEntry, BatchStatus
from dashboard.extensions import db

log = logging.getLogger(__name__)

RETENTION_JOB = "logs-cleanup"
#: AUDIT_RETENTION_DAYS when the configuration does not say.
AUDIT_DAYS = 730


@dataclass(frozen=True)
class CleanupCounts:
    cutoff: datetime
    batches: int
    entries: int
    audit_cutoff: datetime
    audit: int
    dry_run: bool = False


def expired_batches(cutoff: datetime) -> sa.Select[tuple[int]]:
    """Ids of finished batches whose end is older than ``cutoff``; never a running one."""
    return sa.select(Batch.id).where(
        Batch.status != BatchStatus.RUNNING,
        Batch.finished_at.is_not(None),
        Batch.finished_at < cutoff,
    )


def cleanup_logs(
    session: Session,
    now: datetime,
    days: int,
    dry_run: bool = False,
    *,
    audit_days: int = AUDIT_DAYS,
    actor: Actor = SCHEDULER,
) -> CleanupCounts:
    """Delete batches finished more than ``days`` ago and their entries, and audit entries
    older than ``audit_days``; the caller commits. What it deleted is itself audited.

    Set-based statements (``DELETE ... WHERE batch_id IN (SELECT ...)``), no rows loaded
    into Python, so 100,000 entries go in one round trip each.
    """
    if days < 1 or audit_days < 1:
        raise ValueError("the retention period must be at least one day")
    cutoff = now - timedelta(days=days)
    audit_cutoff = now - timedelta(days=audit_days)
    expired = expired_batches(cutoff)
    old_audit = AuditEntry.at < audit_cutoff
    if dry_run:
        batches = session.scalar(sa.select(sa.func.count()).select_from(expired.subquery())) or 0
        entries = (
            session.scalar(
                sa.select(sa.func.count(BatchEntry.id)).where(BatchEntry.batch_id.in_(expired))
            )
            or 0
        )
        audit = session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(old_audit)) or 0
        return CleanupCounts(cutoff, batches, entries, audit_cutoff, audit, dry_run=True)
    entries = session.execute(
        sa.delete(BatchEntry)
        .where(BatchEntry.batch_id.in_(expired))
        .execution_options(synchronize_session=False)
    ).rowcount
    batches = session.execute(
        sa.delete(Batch).where(Batch.id.in_(expired)).execution_options(synchronize_session=False)
    ).rowcount
    audit = session.execute(
        sa.delete(AuditEntry).where(old_audit).execution_options(synchronize_session=False)
    ).rowcount
    log.info(
        "log retention: deleted %s batch(es) and %s entries before %s, %s audit entries before %s",
        batches,
        entries,
        cutoff,
        audit,
        audit_cutoff,
    )
    counts = CleanupCounts(cutoff, batches or 0, entries or 0, audit_cutoff, audit or 0)
    if counts.batches or counts.entries or counts.audit:
        details = {"batches": counts.batches, "entries": counts.entries, "audit": counts.audit}
        record(session, actor, "logs.cleanup", now=now, details={**details, "days": days})
    return counts


def run_retention(app: Flask) -> None:
    """The daily job: delete logs older than LOG_RETENTION_DAYS and audit entries older than
    AUDIT_RETENTION_DAYS, in its own app context."""
    with app.app_context():
        try:
            cleanup_logs(
                db.session,
                utcnow(),
                int(app.config["LOG_RETENTION_DAYS"]),
                audit_days=int(app.config["AUDIT_RETENTION_DAYS"]),
            )
            db.session.commit()
        except Exception:  # noqa: BLE001 - the scheduler must keep running; retried tomorrow
            log.exception("log retention failed")
            db.session.rollback()
        finally:
            db.session.remove()


def add_retention_job(scheduler: BaseScheduler, app: Flask) -> None:
    """Give the dispatch scheduler the daily retention job, at 03:17 UTC."""
    scheduler.add_job(
        run_retention,
        "cron",
        hour=3,
        minute=17,
        args=[app],
        id=RETENTION_JOB,
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )
