"""``flask stats`` and ``flask logs cleanup``."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from dashboard.admin.retention import cleanup_logs
from dashboard.admin.stats import StatsSettings, collect_stats
from dashboard.audit.cli import as_option, cli_actor
from dashboard.db_types import utcnow
from dashboard.extensions import db


@click.command("stats")
@with_appcontext
def stats_command() -> None:
    """Print the monitoring figures of GET /api/stats as JSON."""
    figures = collect_stats(db.session, utcnow(), StatsSettings.from_config(current_app.config))
    click.echo(json.dumps(figures, indent=2))


@click.group("logs", cls=AppGroup)
def logs_cli() -> None:
    """Batch logs: retention."""


@logs_cli.command("cleanup")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete logs of batches finished more than N days ago (default: LOG_RETENTION_DAYS, 180).",
)
@click.option(
    "--audit-days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete audit entries older than N days (default: AUDIT_RETENTION_DAYS, 730).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@as_option
def cleanup_command(
    days: int | None, audit_days: int | None, dry_run: bool, as_email: str | None
) -> None:
    """Delete old batches and their entries (deliveries stay), and old audit entries."""
    days = days or int(current_app.config["LOG_RETENTION_DAYS"])
    audit_days = audit_days or int(current_app.config["AUDIT_RETENTION_DAYS"])
    actor = cli_actor("logs cleanup", as_email)
    counts = cleanup_logs(
        db.session, utcnow(), days, dry_run=dry_run, audit_days=audit_days, actor=actor
    )
    if dry_run:
        db.session.rollback()
        verb = "Would delete"
    else:
        db.session.commit()
        verb = "Deleted"
    click.echo(
        f"{verb} {counts.batches} batch(es) and {counts.entries} entries "
        f"finished before {counts.cutoff.isoformat(timespec='seconds')} ({days} days), "
        f"and {counts.audit} audit entries from before "
        f"{counts.audit_cutoff.isoformat(timespec='seconds')} ({audit_days} days)."
    )
