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


def _last_poll_at(live, worker):
    with live.app_context():
        db.session.expire_all()
        poll = db.session.get(SchedulerPoll, worker)
        return None if poll is None else poll.last_poll_at


def _wait_for_poll_after(live, worker, after, seconds):
    """The poll's time once it is later than `after` (or None: any poll), else the last seen."""
    deadline = time.monotonic() + seconds
    latest = _last_poll_at(live, worker)
    while time.monotonic() < deadline and (
        latest is None or (after is not None and latest <= after)
    ):
        time.sleep(0.05)
        latest = _last_poll_at(live, worker)
    return latest


def test_wake_runs_the_poll_now(app_env):
    live = create_app(env={**app_env, "SCHEDULER_ENABLED": "on", "SCHEDULER_POLL_SECONDS": "3600"})
    runner = live.extensions["dispatch_scheduler"]
    try:
        # The start-up poll runs on the scheduler's thread; on a busy machine it can take
        # well over the 0.3 s this test once slept, so wait for its row rather than guess.
        first = _wait_for_poll_after(live, runner.worker, None, 15)
        assert first is not None, "the start-up poll never ran"
        time.sleep(1.1)  # a later poll must be able to show a later time
        scheduler_module.wake(live)
        latest = _wait_for_poll_after(live, runner.worker, first, 5)
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
