"""The in-process poller: one interval job, started only where it should be."""

from __future__ import annotations

import time

import click

from dashboard import create_app
from dashboard.dispatch import scheduler as scheduler_module
from dashboard.dispatch.models import SchedulerPoll
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus


def test_scheduler_polls_and_sends_due_messages(
    app_env, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 5)
    message = make_message(event)
    live = create_app(env={**app_env, "SCHEDULER_ENABLED": "on", "SCHEDULER_POLL_SECONDS": "0.2"})
    runner = live.extensions["dispatch_scheduler"]
    try:
        job = runner.scheduler.get_job(scheduler_module.POLL_JOB)
        assert job.max_instances == 1 and job.coalesce is True
        assert len(runner.scheduler.get_jobs()) >= 1
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(type(message), message.id).status is MessageStatus.SENT:
                break
            time.sleep(0.05)
    finally:
        runner.shutdown(wait=True)
    db.session.expire_all()
    assert len(smtp_server.received) == 5
    assert db.session.get(type(message), message.id).status is MessageStatus.SENT
    poll = db.session.get(SchedulerPoll, runner.worker)
    assert poll is not None and poll.last_poll_at is not None


def test_wake_runs_the_poll_now(app_env):
    live = create_app(env={**app_env, "SCHEDULER_ENABLED": "on", "SCHEDULER_POLL_SECONDS": "3600"})
    runner = live.extensions["dispatch_scheduler"]
    try:
        time.sleep(0.3)  # the start-up poll
        with live.app_context():
            first = db.session.get(SchedulerPoll, runner.worker).last_poll_at
        time.sleep(1.1)
        scheduler_module.wake(live)
        deadline = time.monotonic() + 5
        latest = first
        while latest == first and time.monotonic() < deadline:
            time.sleep(0.05)
            with live.app_context():
                db.session.expire_all()
                latest = db.session.get(SchedulerPoll, runner.worker).last_poll_at
        assert latest > first
    finally:
        runner.shutdown(wait=True)


def test_no_scheduler_when_disabled(app):
    assert "dispatch_scheduler" not in app.extensions


def test_no_scheduler_for_cli_commands_other_than_run(app_env):
    with click.Context(click.Command("upgrade"), info_name="upgrade"):
        app = create_app(env={**app_env, "SCHEDULER_ENABLED": "on"})
    assert "dispatch_scheduler" not in app.extensions


def test_no_scheduler_in_the_reloader_parent(app_env, monkeypatch):
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    app = create_app(overrides={"DEBUG": True}, env={**app_env, "SCHEDULER_ENABLED": "on"})
    assert "dispatch_scheduler" not in app.extensions
