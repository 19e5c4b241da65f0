"""``flask stats`` and ``flask logs cleanup``, plus the daily retention job of the scheduler."""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from flask import Flask, current_app

from dashboard.db_types import utcnow
from dashboard.extensions import db

log = logging.getLogger(__name__)

RETENTION_JOB = "logs-cleanup"


def run_retention(app: Flask) -> None:
    """The daily job: delete logs older than LOG_RETENTION_DAYS, in its own app context."""
    from dashboard.admin.retention import cleanup_logs

    with app.app_context():
        try:
            cleanup_logs(db.session, utcnow(), int(app.config["LOG_RETENTION_DAYS"]))
            db.session.commit()
        except Exception:  # noqa: BLE001 - the scheduler must keep running; retried tomorrow
            log.exception("log retention failed")
            db.session.rollback()
        finally:
            db.session.remove()


def add_retention_job(scheduler: Any, app: Flask) -> None:
    """Registered through ``app.extensions["dispatch_extra_jobs"]``; runs daily at 03:17 UTC."""
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


def register(app: Flask) -> None:
    """Admin CLI commands, and the retention job for the dispatch scheduler."""
    app.extensions.setdefault("dispatch_extra_jobs", []).append(add_retention_job)

    @app.cli.command("stats")
    def stats_command() -> None:
        """Print the monitoring figures of GET /api/stats as JSON."""
        from dashboard.admin.stats import StatsSettings, collect_stats

        figures = collect_stats(db.session, utcnow(), StatsSettings.from_config(current_app.config))
        click.echo(json.dumps(figures, indent=2))

    @app.cli.group("logs")
    def logs_group() -> None:
        """Batch logs: retention."""

    @logs_group.command("cleanup")
    @click.option(
        "--days",
        type=click.IntRange(min=1),
        default=None,
        help="Delete logs of batches finished more than N days ago "
        "(default: LOG_RETENTION_DAYS, 180).",
    )
    @click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
    def cleanup_command(days: int | None, dry_run: bool) -> None:
        """Delete old batches and their entries (deliveries stay)."""
        from dashboard.admin.retention import cleanup_logs

        days = days or int(current_app.config["LOG_RETENTION_DAYS"])
        counts = cleanup_logs(db.session, utcnow(), days, dry_run=dry_run)
        if dry_run:
            db.session.rollback()
            verb = "Would delete"
        else:
            db.session.commit()
            verb = "Deleted"
        click.echo(
            f"{verb} {counts.batches} batch(es) and {counts.entries} entries "
            f"finished before {counts.cutoff.isoformat(timespec='seconds')} ({days} days)."
        )
