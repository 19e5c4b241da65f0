"""Retention (invariant 13): old batches and their entries go in bulk; deliveries stay."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.admin.retention import RETENTION_JOB, cleanup_logs
from dashboard.db_types import UTCDateTime
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    Delivery,
    DeliveryStatus,
    Outcome,
)
from dashboard.dispatch.scheduler import POLL_JOB, DispatchScheduler
from dashboard.events.models import Guest
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import bulk_guests


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def copy_entries(batch: Batch, message_id: int, at) -> None:
    """Give ``batch`` one entry per delivery of the message (INSERT ... SELECT)."""
    db.session.execute(
        sa.insert(BatchEntry).from_select(
            ["batch_id", "delivery_id", "outcome", "reason", "processed_at"],
            sa.select(
                sa.literal(batch.id),
                Delivery.id,
                sa.literal(Outcome.SENT.value),
                sa.null(),
                sa.literal(at, UTCDateTime()),
            ).where(Delivery.message_id == message_id),
        )
    )
    db.session.commit()


@pytest.fixture
def aged(sent_with_failures, make_batch, now):
    """Batches finished 181 and 179 days ago, an old interrupted one, and one still running."""
    event, message, current = sent_with_failures
    made = {}
    for name, fields in {
        "181": {"status": BatchStatus.COMPLETED, "finished_at": now - timedelta(days=181)},
        "179": {"status": BatchStatus.COMPLETED, "finished_at": now - timedelta(days=179)},
        "interrupted": {
            "status": BatchStatus.INTERRUPTED,
            "finished_at": now - timedelta(days=400),
        },
        "running": {"status": BatchStatus.RUNNING, "finished_at": None},
    }.items():
        started = (fields["finished_at"] or now - timedelta(days=300)) - timedelta(minutes=5)
        batch = make_batch(message, started_at=started, heartbeat_at=started, **fields)
        copy_entries(batch, message.id, started)
        made[name] = batch.id
    made["current"] = current.id
    return message, made


def test_boundary_179_stays_181_goes(app, aged, now):
    message, ids = aged
    deliveries_before = count(Delivery)
    entries_before = count(BatchEntry)

    counts = cleanup_logs(db.session, now, 180)
    db.session.commit()

    assert (counts.batches, counts.entries) == (2, 12)  # 181 days and the old interrupted one
    assert counts.cutoff == now - timedelta(days=180)
    remaining = set(db.session.scalars(sa.select(Batch.id)))
    assert remaining == {ids["179"], ids["running"], ids["current"]}
    assert count(BatchEntry) == entries_before - 12
    assert not db.session.scalar(
        sa.select(sa.func.count(BatchEntry.id)).where(
            BatchEntry.batch_id.in_([ids["181"], ids["interrupted"]])
        )
    )
    assert count(Delivery) == deliveries_before  # the outcomes stay


def test_a_running_batch_is_never_deleted(app, aged, now):
    _, ids = aged
    cleanup_logs(db.session, now + timedelta(days=3650), 1)
    db.session.commit()
    assert set(db.session.scalars(sa.select(Batch.id))) == {ids["running"]}


def test_re_sends_stay_impossible_after_cleanup(
    app, sent_with_failures, dispatcher, smtp_server, now
):
    event, message, _ = sent_with_failures
    received = len(smtp_server.received)
    cleanup_logs(db.session, now + timedelta(days=400), 180)
    db.session.commit()
    assert count(Batch) == 0 and count(BatchEntry) == 0
    statuses = db.session.scalars(
        sa.select(Delivery.status).where(Delivery.message_id == message.id)
    )
    assert sorted(statuses) == sorted([DeliveryStatus.SENT] * 4 + [DeliveryStatus.FAILED] * 2)
    dispatcher.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT_WITH_FAILURES
    assert len(smtp_server.received) == received


def test_dry_run_only_counts(app, aged, now):
    before = (count(Batch), count(BatchEntry))
    counts = cleanup_logs(db.session, now, 180, dry_run=True)
    db.session.commit()
    assert (counts.batches, counts.entries, counts.dry_run) == (2, 12, True)
    assert (count(Batch), count(BatchEntry)) == before


def test_cli_cleanup(app, runner, aged):
    dry = runner.invoke(args=["logs", "cleanup", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would delete 2 batch(es) and 12 entries" in dry.output and "(180 days)" in dry.output
    assert count(Batch) == 5

    done = runner.invoke(args=["logs", "cleanup", "--days", "180"])
    assert done.exit_code == 0, done.output
    assert "Deleted 2 batch(es) and 12 entries" in done.output
    assert count(Batch) == 3

    app.config["LOG_RETENTION_DAYS"] = 1  # the default comes from the configuration
    assert "(1 days)" in runner.invoke(args=["logs", "cleanup", "--dry-run"]).output


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_cli_refuses_bad_days(runner, days):
    result = runner.invoke(args=["logs", "cleanup", "--days", days])
    assert result.exit_code == 2
    assert "--days" in result.output


def test_the_dispatch_scheduler_runs_the_daily_retention_job(app, aged, now, monkeypatch):
    runner = DispatchScheduler(app)
    monkeypatch.setattr(runner.scheduler, "start", lambda: None)  # only the job definitions
    runner.start()
    job = runner.scheduler.get_job(RETENTION_JOB)
    assert job is not None and str(job.trigger) == "cron[hour='3', minute='17']"
    assert (job.max_instances, job.coalesce) == (1, True)
    assert {j.id for j in runner.scheduler.get_jobs()} == {POLL_JOB, RETENTION_JOB}

    _, ids = aged
    job.func(*job.args)  # what the scheduler runs daily
    assert ids["181"] not in set(db.session.scalars(sa.select(Batch.id)))
    assert count(Batch) == 3


@pytest.mark.slow
def test_cleaning_100000_entries(app, make_event, make_message, make_batch, now):
    """Bulk: 10 old batches x 10,000 entries go; a recent batch's 10,000 entries stay."""
    event = make_event()
    n = 10_000
    bulk_guests(event.id, n)
    message = make_message(event, status=MessageStatus.SENT)
    db.session.execute(
        sa.insert(Delivery).from_select(
            [
                "message_id",
                "guest_id",
                "email",
                "status",
                "attempts",
                "dry_run",
                "created_at",
                "updated_at",
            ],
            sa.select(
                sa.literal(message.id),
                Guest.id,
                Guest.email,
                sa.literal(DeliveryStatus.SENT.value),
                sa.literal(1),
                sa.literal(False),
                sa.literal(now, UTCDateTime()),
                sa.literal(now, UTCDateTime()),
            ).where(Guest.event_id == event.id),
        )
    )
    db.session.commit()
    old = now - timedelta(days=200)
    for _ in range(10):
        batch = make_batch(message, status=BatchStatus.COMPLETED, started_at=old, finished_at=old)
        copy_entries(batch, message.id, old)
    recent = make_batch(message, status=BatchStatus.COMPLETED, finished_at=now)
    copy_entries(recent, message.id, now)
    assert count(BatchEntry) == 110_000

    started = time.perf_counter()
    counts = cleanup_logs(db.session, now, 180)
    db.session.commit()
    elapsed = time.perf_counter() - started

    assert (counts.batches, counts.entries) == (10, 100_000)
    assert count(BatchEntry) == n and count(Batch) == 1 and count(Delivery) == n
    print(f"\ncleanup of 100,000 entries: {elapsed:.2f} s")  # noqa: T201 - a note, not an assertion
