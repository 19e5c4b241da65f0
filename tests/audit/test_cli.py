"""CLI commands act as someone: ``--as EMAIL`` names a dashboard user, else the OS user; a
batch started from the command line says so (never "scheduler"). Sends go through a real
SMTP server on loopback."""

from __future__ import annotations

import getpass

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.dispatch.progress import started_by
from dashboard.extensions import db
from tests.helpers import batches_of, deliveries_of, smtp_env


@pytest.fixture
def app_env(app_env, smtp_server):
    return {**app_env, **smtp_env(smtp_server)}


def actions(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def test_retry_failed_and_send_one_from_the_command_line_name_who_ran_them(
    runner, owner, sent_with_failures
):
    event, message, _ = sent_with_failures
    as_owner = runner.invoke(
        args=[
            "dispatch",
            "retry-failed",
            "--message",
            str(message.id),
            "--permanent",
            "--as",
            owner.email,
        ]
    )
    assert as_owner.exit_code == 0, as_owner.output  # queued and sent (the two fail again)
    retry = batches_of(message)[-1]
    label = "cli:dispatch retry-failed as owner@example.com"
    assert (retry.initiated_label, retry.initiated_by_id) == (label, owner.id)
    assert started_by(retry) == f"Retry failed by {label}"
    [entry] = actions("batch.retry_failed")
    assert (entry.actor, entry.actor_user_id, entry.batch_id) == (label, owner.id, retry.id)
    assert (entry.event_id, entry.message_id, entry.details) == (
        event.id,
        message.id,
        {"failed": 2, "permanent": True},
    )

    delivery = deliveries_of(message)[0]
    result = runner.invoke(args=["dispatch", "send-one", str(delivery.id)])
    assert result.exit_code == 0, result.output
    one = batches_of(message)[-1]
    os_label = f"cli:dispatch send-one ({getpass.getuser()})"
    assert (one.initiated_label, one.initiated_by_id) == (os_label, None)
    assert started_by(one) == f"Single re-send by {os_label}"
    [entry] = actions("batch.send_one")
    assert entry.actor == os_label and entry.details["delivery_id"] == delivery.id


def test_run_due_starts_batches_as_its_user_and_the_scheduler_as_itself(
    runner, owner, dispatcher, make_event, make_guests, make_message
):
    event = make_event()
    make_guests(event, 2)
    polled = make_message(event)
    dispatcher.poll()
    command = make_message(event)
    result = runner.invoke(args=["dispatch", "run-due", "--as", owner.email])
    assert result.exit_code == 0, result.output

    [by_scheduler] = batches_of(polled)
    [by_command] = batches_of(command)
    assert (by_scheduler.initiated_label, by_scheduler.initiated_by_id) == ("scheduler", None)
    assert by_command.initiated_label == "cli:dispatch run-due as owner@example.com"
    starts = {e.batch_id: (e.actor, e.details) for e in actions("batch.start")}
    assert starts[by_scheduler.id] == (
        "scheduler",
        {"trigger": "schedule", "worker": "test-dispatcher"},
    )
    assert starts[by_command.id][0] == "cli:dispatch run-due as owner@example.com"


@pytest.mark.parametrize(
    "args",
    [
        ["dispatch", "run-due"],
        ["dispatch", "retry-failed"],
        ["dispatch", "send-one", "1"],
        ["import-guests", "1", "guests.csv"],
        ["seed-demo"],
        ["logs", "cleanup"],
        ["create-user", "new@example.com"],
        ["create-token", "owner@example.com"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_every_acting_command_takes_as_and_refuses_an_unknown_user(runner, owner, args):
    result = runner.invoke(args=[*args, "--as", "nobody@example.com"], input="password123\n")
    assert result.exit_code == 1
    assert "--as nobody@example.com: no user with this e-mail" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_seed_demo_and_tokens_are_recorded_as_the_given_user(runner, owner):
    assert runner.invoke(args=["seed-demo", "--as", owner.email]).exit_code == 0
    created = runner.invoke(args=["create-token", owner.email, "--name", "ci", "--as", owner.email])
    assert created.exit_code == 0, created.output
    actors = {e.action: e.actor for e in db.session.scalars(sa.select(AuditEntry))}
    assert actors["event.create"] == actors["guest.add"] == "cli:seed-demo as owner@example.com"
    assert actors["user.create"] == "cli:seed-demo as owner@example.com"  # the demo admin
    assert actors["token.create"] == "cli:create-token as owner@example.com"
    [token] = actions("token.create")
    assert token.details == {"email": owner.email, "name": "ci"}
