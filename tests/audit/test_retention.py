"""Audit entries are kept AUDIT_RETENTION_DAYS (default 730) and cleaned with the logs."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.admin.retention import RETENTION_JOB, cleanup_logs
from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor, record
from dashboard.config import ConfigError, load_config
from dashboard.dispatch.scheduler import DispatchScheduler
from dashboard.extensions import db


def ages() -> set[str]:
    rows = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.action != "logs.cleanup")
    )
    return set(rows)


@pytest.fixture
def aged(app, now):
    """Entries exactly 730 days old (kept), a second older (deleted), and recent."""
    for name, age in {
        "audit.730d": timedelta(days=730),
        "audit.730d+1s": timedelta(days=730, seconds=1),
        "audit.2000d": timedelta(days=2000),
        "audit.1d": timedelta(days=1),
    }.items():
        record(db.session, Actor("tests"), name, now=now - age, event_id=1)
    db.session.commit()


def test_the_boundary_730_days_stays_a_second_more_goes(aged, now):
    counts = cleanup_logs(db.session, now, 180)
    db.session.commit()
    assert (counts.audit, counts.audit_cutoff) == (2, now - timedelta(days=730))
    assert ages() == {"audit.730d", "audit.1d"}
    [cleanup] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "logs.cleanup"))
    assert cleanup.actor == "scheduler"
    assert cleanup.details == {"batches": 0, "entries": 0, "audit": 2, "days": 180}


def test_a_dry_run_only_counts(aged, now):
    counts = cleanup_logs(db.session, now, 180, dry_run=True, audit_days=1)
    db.session.rollback()
    assert counts.audit == 3 and len(ages()) == 4


def test_the_cli_takes_the_period_from_the_configuration_or_audit_days(app, runner, aged, owner):
    dry = runner.invoke(args=["logs", "cleanup", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    # The command's clock runs past the fixture's: the entry of exactly 730 days goes too.
    assert "and 3 audit entries from before" in dry.output and "(730 days)" in dry.output
    app.config["AUDIT_RETENTION_DAYS"] = 3000
    assert "and 0 audit entries" in runner.invoke(args=["logs", "cleanup", "--dry-run"]).output

    done = runner.invoke(args=["logs", "cleanup", "--audit-days", "2", "--as", owner.email])
    assert done.exit_code == 0, done.output
    assert (
        "Deleted 0 batch(es) and 0 entries" in done.output and "and 3 audit entries" in done.output
    )
    assert ages() == {"audit.1d"}
    cleanup = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "logs.cleanup"))
    assert cleanup.actor == "cli:logs cleanup as owner@example.com"
    refused = runner.invoke(args=["logs", "cleanup", "--audit-days", "0"])
    assert refused.exit_code == 2 and "--audit-days" in refused.output


def test_the_daily_job_cleans_audit_entries(app, aged, monkeypatch):
    scheduler = DispatchScheduler(app)
    monkeypatch.setattr(scheduler.scheduler, "start", lambda: None)
    scheduler.start()
    job = scheduler.scheduler.get_job(RETENTION_JOB)
    app.config["AUDIT_RETENTION_DAYS"] = 1000
    job.func(*job.args)
    assert ages() == {"audit.730d", "audit.730d+1s", "audit.1d"}


@pytest.mark.parametrize("raw", ["0", "-1", "two years"])
def test_audit_retention_days_is_validated(tmp_path, raw):
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_DAYS"):
        load_config({"APP_ENV": "testing", "AUDIT_RETENTION_DAYS": raw}, tmp_path)


def test_audit_retention_days_defaults_to_730(tmp_path):
    assert load_config({"APP_ENV": "testing"}, tmp_path)["AUDIT_RETENTION_DAYS"] == 730
    config = load_config({"APP_ENV": "testing", "AUDIT_RETENTION_DAYS": "90"}, tmp_path)
    assert config["AUDIT_RETENTION_DAYS"] == 90
