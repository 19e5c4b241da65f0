"""GET /metrics: the Prometheus text format, Bearer STATS_TOKEN, figures from the database."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from dashboard import create_app
from dashboard.dispatch.models import SchedulerPoll
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.admin.conftest import STATS_TOKEN

AUTH = {"Authorization": f"Bearer {STATS_TOKEN}"}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(figures, name: str, **labels: str) -> float:
    return figures[(name, frozenset(labels.items()))]


@pytest.fixture
def sent(app, dispatcher, make_event, make_guests, make_message, smtp_server, now):
    event = make_event()  # with its four auto-reminders, scheduled and not due
    make_guests(event, 5)
    make_guests(event, 2, prefix="bad")
    smtp_server.handler.rules = {"bad": "550 5.1.1 No such user"}
    make_message(event)
    dispatcher.poll()
    make_message(event)  # due, not yet polled
    make_message(event, status=MessageStatus.PAUSED)
    make_message(event, status=MessageStatus.OVERDUE)
    db.session.execute(sa.update(SchedulerPoll).values(last_poll_at=now - timedelta(seconds=42)))
    db.session.commit()
    return event


def test_figures_come_from_the_database(client, sent):
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"
    figures = samples(response.get_data(as_text=True))
    sends = {"channel": "email", "transport": "smtp"}
    assert value(figures, "dashboard_sends_total", outcome="sent", **sends) == 5
    assert value(figures, "dashboard_sends_total", outcome="failed", **sends) == 2
    assert value(figures, "dashboard_messages", state="due") == 1
    assert value(figures, "dashboard_messages", state="paused") == 1
    assert value(figures, "dashboard_messages", state="overdue") == 1
    assert value(figures, "dashboard_messages", state="sending") == 0
    assert 42 <= value(figures, "dashboard_scheduler_lag_seconds") < 600
    assert value(figures, "dashboard_batch_duration_seconds_count") == 1
    assert value(figures, "dashboard_batch_duration_seconds_bucket", le="+Inf") == 1
    assert value(figures, "dashboard_recovery_takeovers_total") == 0
    # Measured in this process, where the test's dispatcher sent (7 SMTP requests at least).
    assert value(figures, "dashboard_send_latency_seconds_count", transport="smtp") >= 7


def test_any_worker_answers_the_same(client, sent, app_env, make_message, make_batch, now):
    """Two app processes (gunicorn workers) on one database: the same figures, including a
    take-over and a stuck batch that neither of them saw happen."""
    stuck = make_message(sent, status=MessageStatus.SENDING)
    make_batch(stuck, started_at=now - timedelta(hours=1), heartbeat_at=now - timedelta(hours=1))
    from dashboard.dispatch.scheduler import build_dispatcher

    other = create_app(overrides={"WTF_CSRF_ENABLED": False}, env=app_env)
    with other.app_context():
        assert build_dispatcher(other, db.session, worker="w2").recover() == 1
        db.session.commit()
        answer = other.test_client().get("/metrics", headers=AUTH).get_data(as_text=True)
        db.session.remove()
    mine = samples(client.get("/metrics", headers=AUTH).get_data(as_text=True))
    theirs = samples(answer)
    assert value(mine, "dashboard_recovery_takeovers_total") == 1
    for key in mine:
        if key[0].startswith("dashboard_send_latency") or key[0].endswith("_created"):
            continue  # the one figure each process measures itself
        if key[0] == "dashboard_scheduler_lag_seconds":
            assert math.isclose(mine[key], theirs[key], abs_tol=5)
            continue
        assert mine[key] == theirs[key], key


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": f"Bearer {STATS_TOKEN}x"}, 401),
        ({"Authorization": "Basic x"}, 401),
    ],
)
def test_the_token_is_required(client, headers, status):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_disabled_without_a_token(app, client):
    app.config["STATS_TOKEN"] = None
    assert client.get("/metrics", headers=AUTH).status_code == 404
