"""`flask dispatch run-due | retry-failed | send-one | pause | resume | stop` through the CLI
runner."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.dispatch.models import Batch, BatchEntry, BatchTrigger, DeliveryStatus
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import batches_of, deliveries_of


def test_run_due_sends_and_reports(runner, make_event, make_guests, make_message, smtp_server):
    event = make_event()
    make_guests(event, 3)
    message = make_message(event)
    result = runner.invoke(args=["dispatch", "run-due"])
    assert result.exit_code == 0, result.output
    assert "ran 1 batch(es)" in result.output
    assert len(smtp_server.received) == 3
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT


def test_retry_failed_cli_resends_only_failed(
    runner, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 3)
    make_guests(event, 1, prefix="bad")
    smtp_server.handler.rules = {"bad": "550 5.7.1 Recipient refused by policy"}
    message = make_message(event)
    runner.invoke(args=["dispatch", "run-due"])
    smtp_server.handler.rules = {}

    result = runner.invoke(
        args=["dispatch", "retry-failed", "--message", str(message.id), "--permanent"]
    )
    assert result.exit_code == 0, result.output
    assert "queued 1 retry batch(es)" in result.output
    assert Counter(smtp_server.recipients()) == Counter(
        {
            "guest0@example.org": 1,
            "guest1@example.org": 1,
            "guest2@example.org": 1,
            "bad3@example.org": 1,
        }
    )
    assert batches_of(message)[-1].trigger is BatchTrigger.RETRY_FAILED

    again = runner.invoke(
        args=["dispatch", "retry-failed", "--message", str(message.id), "--permanent"]
    )
    assert again.exit_code == 1 and "no failed deliveries" in again.output


def test_retry_failed_unknown_message(runner):
    result = runner.invoke(args=["dispatch", "retry-failed", "--message", "999"])
    assert result.exit_code != 0 and "no message with id 999" in result.output


def test_send_one_resends_one_delivery_on_purpose(
    runner, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 3)
    message = make_message(event)
    runner.invoke(args=["dispatch", "run-due"])
    target = deliveries_of(message)[1]

    result = runner.invoke(args=["dispatch", "send-one", str(target.id)])
    assert result.exit_code == 0, result.output
    assert f"delivery {target.id}: sent" in result.output
    assert Counter(smtp_server.recipients())[target.email] == 2
    batch = batches_of(message)[-1]
    assert batch.trigger is BatchTrigger.SEND_ONE and (batch.total, batch.sent) == (1, 1)
    db.session.refresh(target)
    assert target.status is DeliveryStatus.SENT and target.attempts == 2


def test_send_one_unknown_delivery(runner):
    result = runner.invoke(args=["dispatch", "send-one", "424242"])
    assert result.exit_code != 0 and "no delivery with id 424242" in result.output


def test_batch_entries_unique_only_per_batch_and_delivery(app):
    """A global unique index on entries would stop every retry; only (batch, delivery) is unique."""
    inspector = sa.inspect(db.engine)
    uniques = [tuple(c["column_names"]) for c in inspector.get_unique_constraints("batch_entries")]
    uniques += [
        tuple(i["column_names"]) for i in inspector.get_indexes("batch_entries") if i["unique"]
    ]
    assert set(uniques) == {("batch_id", "delivery_id")}  # PostgreSQL lists it twice


def test_batch_counters_equal_the_rows(runner, make_event, make_guests, make_message, smtp_server):
    """Invariant 7: the counters shown are the aggregates of the entry rows."""
    event = make_event()
    make_guests(event, 7)
    make_guests(event, 2, prefix="bad")
    make_guests(event, 1, prefix="gone", unsubscribed=True)
    smtp_server.handler.rules = {"bad": "550 nope"}
    make_message(event)
    runner.invoke(args=["dispatch", "run-due"])
    for batch in db.session.scalars(sa.select(Batch)):
        rows = dict(
            db.session.execute(
                sa.select(BatchEntry.outcome, sa.func.count())
                .where(BatchEntry.batch_id == batch.id)
                .group_by(BatchEntry.outcome)
            ).all()
        )
        assert (batch.sent, batch.failed, batch.skipped) == (
            rows.get("sent", 0),
            rows.get("failed", 0),
            rows.get("skipped", 0),
        )
        assert batch.total == sum(rows.values()) == 10


def test_pause_resume_stop_from_the_cli_with_who_did_it(
    runner, owner, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 6)
    message = make_message(event)
    message.hold_after = 2
    db.session.commit()
    runner.invoke(args=["dispatch", "run-due"])  # two sent, then it holds

    refused = runner.invoke(args=["dispatch", "pause", str(message.id)])
    assert refused.exit_code == 1 and "This message is paused: there is nothing to pause" in (
        refused.output
    )
    resumed = runner.invoke(args=["dispatch", "resume", str(message.id), "--as", owner.email])
    assert resumed.exit_code == 0, resumed.output
    assert f"message {message.id}: resumed in batch" in resumed.output
    paused = runner.invoke(args=["dispatch", "pause", str(message.id), "--as", owner.email])
    assert paused.exit_code == 0 and "paused" in paused.output
    stopped = runner.invoke(args=["dispatch", "stop", str(message.id)])
    assert stopped.exit_code == 0, stopped.output
    assert f"message {message.id}: stopped; 2 sent, 4 cancelled" in stopped.output
    assert runner.invoke(args=["dispatch", "stop", "999999"]).exit_code == 1

    db.session.expire_all()
    actors = db.session.execute(
        sa.select(AuditEntry.action, AuditEntry.actor)
        .where(AuditEntry.message_id == message.id, AuditEntry.action.like("message.%"))
        .order_by(AuditEntry.id)
    ).all()
    assert [(a, b.split(" (")[0]) for a, b in actors] == [
        ("message.pause", "cli:dispatch run-due"),  # its hold: the run that sent it paused it
        ("message.resume", f"cli:dispatch resume as {owner.email}"),
        ("message.pause", f"cli:dispatch pause as {owner.email}"),
        ("message.stop", "cli:dispatch stop"),
    ]
    assert len(smtp_server.received) == 2
