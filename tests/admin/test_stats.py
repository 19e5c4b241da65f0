"""Monitoring: GET /api/stats (Bearer STATS_TOKEN), flask stats, GET /healthz."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import BatchStatus, Delivery, SchedulerPoll
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.admin.conftest import STATS_TOKEN
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)

AUTH = {"Authorization": f"Bearer {STATS_TOKEN}"}


@pytest.fixture
def seeded(app, dispatcher, make_event, make_guests, make_message, make_batch, smtp_server, now):
    """Real failures through the real dispatcher, plus one stuck and one healthy running batch."""
    event = make_event()  # also schedules its four auto-reminders (not due)
    make_guests(event, 4)
    make_guests(event, 2, prefix="bad")
    make_guests(event, 2, prefix="busy")
    smtp_server.handler.rules = {"bad": "550 5.1.1 No such user", "busy": "452 4.2.2 Mailbox full"}
    dispatcher.settings = dataclasses.replace(dispatcher.settings, retry_base_seconds=600)
    sending = make_message(event)
    dispatcher.poll()
    db.session.refresh(sending)
    assert sending.status is MessageStatus.SENDING  # the 451s wait for their retry

    # One transient failure has used up its attempts: it is not awaiting a retry any more.
    exhausted = db.session.scalar(sa.select(Delivery).where(Delivery.email == "busy6@example.org"))
    exhausted.attempts = dispatcher.settings.max_attempts
    # One sent delivery is older than a day.
    old = db.session.scalar(sa.select(Delivery).where(Delivery.email == "guest0@example.org"))
    old.updated_at = now - timedelta(days=2)
    db.session.commit()

    make_message(event, status=MessageStatus.DRAFT)
    stuck = make_message(event, status=MessageStatus.SENDING)
    make_batch(stuck, started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(minutes=10))
    alive = make_message(event, status=MessageStatus.SENDING)
    make_batch(alive, heartbeat_at=now)
    return event


def test_stats_figures(client, seeded):
    response = client.get("/api/stats", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    stats = response.json
    assert stats["messages"] == {
        "draft": 1,
        "scheduled": 4,  # the event's auto-reminders
        "sending": 3,
        "sent": 0,
        "sent_with_failures": 0,
        "failed": 0,
        "cancelled": 0,
        "overdue": 0,
        "dry_run": 0,
        "paused": 0,
        "stopped": 0,
    }
    assert stats["deliveries"]["all"] == {
        "pending": 0,
        "sent": 4,
        "failed": 4,
        "skipped": 0,
        "cancelled": 0,
    }
    assert stats["deliveries"]["last_24h"] == {
        "pending": 0,
        "sent": 3,
        "failed": 4,
        "skipped": 0,
        "cancelled": 0,
    }
    assert stats["failed_awaiting_retry"] == 1  # busy7: transient, attempts left, next attempt set
    assert stats["failed_permanently"] == 3  # two 550s and the exhausted 451
    assert stats["failed_awaiting_retry"] + stats["failed_permanently"] == 4
    assert stats["batches"]["running"] == 2
    assert stats["batches"]["stuck"] == 1
    assert stats["last_poll_at"] is not None
    polled = db.session.scalar(sa.select(sa.func.max(SchedulerPoll.last_poll_at)))
    assert stats["last_poll_at"] == polled.isoformat()


def test_flask_stats_prints_the_same_json(client, runner, seeded):
    api = client.get("/api/stats", headers=AUTH).json
    result = runner.invoke(args=["stats"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    for document in (api, printed):
        document.pop("generated_at")
        document["scheduler"].pop("seconds_since_poll")
    assert printed == api


def test_stats_is_disabled_without_a_token(app, client):
    app.config["STATS_TOKEN"] = None
    response = client.get("/api/stats", headers=AUTH)
    assert response.status_code == 404
    assert "disabled" in response.json["error"]


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, {}),
        ({"Authorization": "Bearer wrong-token"}, {}),
        ({"Authorization": f"Bearer {STATS_TOKEN}x"}, {}),
        ({"Authorization": f"Basic {STATS_TOKEN}"}, {}),
        ({"Authorization": STATS_TOKEN}, {}),
        ({}, {"token": STATS_TOKEN}),
        ({}, {"stats_token": STATS_TOKEN}),
        ({}, {"access_token": STATS_TOKEN}),
    ],
)
def test_stats_needs_the_bearer_token(client, headers, query):
    response = client.get("/api/stats", headers=headers, query_string=query)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "STATS_TOKEN" in response.json["error"]


def test_a_user_api_token_is_not_the_stats_token(client, owner, bearer):
    assert client.get("/api/stats", headers=bearer(owner)).status_code == 401


def test_stats_token_is_compared_in_constant_time(client, monkeypatch):
    import hmac

    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert client.get("/api/stats", headers=AUTH).status_code == 200
    assert calls == [(STATS_TOKEN.encode(), STATS_TOKEN.encode())]


# --- /healthz ----------------------------------------------------------------------------


def test_healthz_ok_without_scheduler(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert body["scheduler"]["enabled"] is False and body["scheduler"]["status"] == "disabled"


def test_healthz_watches_the_scheduler(app, client, now):
    app.config.update(SCHEDULER_ENABLED=True, SCHEDULER_POLL_SECONDS=15.0)
    never = client.get("/healthz")
    assert never.status_code == 503 and never.json["scheduler"]["status"] == "never polled"

    db.session.add(SchedulerPoll(name="web-1", last_poll_at=now - timedelta(seconds=20)))
    db.session.commit()
    ok = client.get("/healthz")
    assert ok.status_code == 200
    assert ok.json["scheduler"]["status"] == "ok"
    assert ok.json["scheduler"]["last_poll_at"] == (now - timedelta(seconds=20)).isoformat()

    db.session.execute(
        sa.update(SchedulerPoll).values(last_poll_at=now - timedelta(seconds=3 * 15 + 5))
    )
    db.session.commit()
    late = client.get("/healthz")
    assert late.status_code == 503
    assert (late.json["status"], late.json["scheduler"]["status"]) == ("unavailable", "late")

    # A second process that polls keeps the service healthy.
    db.session.add(SchedulerPoll(name="web-2", last_poll_at=now))
    db.session.commit()
    assert client.get("/healthz").status_code == 200


def test_healthz_and_stats_when_the_database_is_unreachable(app_env, tmp_path):
    from dashboard import create_app

    broken = create_app(
        env={**app_env, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"}
    )
    with broken.test_client() as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json["database"] == "unreachable"
        stats = client.get("/api/stats", headers=AUTH)
        assert stats.status_code == 503 and stats.json["error"]


def test_running_batches_are_not_stuck_while_they_beat(
    client, make_event, make_message, make_batch, now
):
    message = make_message(make_event(), status=MessageStatus.SENDING)
    make_batch(message, heartbeat_at=now - timedelta(seconds=30))
    make_batch(
        message, heartbeat_at=None, started_at=now - timedelta(minutes=5)
    )  # queued, unclaimed
    make_batch(message, status=BatchStatus.INTERRUPTED, finished_at=now, heartbeat_at=now)
    batches = client.get("/api/stats", headers=AUTH).json["batches"]
    assert batches == {"running": 2, "stuck": 1, "interrupted_last_24h": 1}
