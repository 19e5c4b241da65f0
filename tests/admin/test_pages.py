"""Admin views: batches across events, failed deliveries by reason with bulk retry, the Outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
from dashboard.dispatch.transports import OUTBOX
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import HX


@pytest.fixture
def admin(make_user, auth):
    user = make_user("admin@example.com", admin=True)
    auth.login(user)
    return user


def test_batches_running_and_interrupted_first(
    client, admin, make_event, make_message, make_batch, now
):
    event = make_event()
    message = make_message(event, status=MessageStatus.SENDING)
    done = make_batch(message, status=BatchStatus.COMPLETED, started_at=now, finished_at=now)
    broken = make_batch(
        message,
        status=BatchStatus.INTERRUPTED,
        started_at=now - timedelta(days=1),
        finished_at=now - timedelta(days=1),
        error="The dispatcher stopped responding",
    )
    running = make_batch(message, started_at=now - timedelta(days=2), total=10, sent=2)
    other = make_event(name="Other host's event", user=admin)
    other_done = make_batch(
        make_message(other, status=MessageStatus.SENT),
        status=BatchStatus.COMPLETED,
        started_at=now - timedelta(hours=1),
        finished_at=now,
    )

    html = client.get("/admin/batches").get_data(as_text=True)
    order = [html.index(f">#{b.id}<") for b in (running, broken, done, other_done)]
    assert order == sorted(order)
    assert "Other host&#39;s event" in html or "Other host's event" in html
    assert f'hx-get="/events/{event.id}/batches/{running.id}/progress?compact=1"' in html
    assert "The dispatcher stopped responding" in html

    only = client.get("/admin/batches", query_string={"status": "interrupted"}, headers=HX)
    fragment = only.get_data(as_text=True)
    assert "<html" not in fragment and f">#{broken.id}<" in fragment
    assert f">#{done.id}<" not in fragment and f">#{running.id}<" not in fragment

    bad = client.get("/admin/batches", query_string={"status": "exploded"})
    assert bad.status_code == 400


@pytest.fixture
def two_failing_events(
    sent_with_failures, dispatcher, make_event, make_guests, make_message, smtp_server, admin
):
    """Event A: 2 x 550 (from sent_with_failures). Event B: 3 x 550 and 1 x 552."""
    event_a, message_a, _ = sent_with_failures
    event_b = make_event(name="Winter Ball")
    make_guests(event_b, 3, prefix="bad")
    make_guests(event_b, 1, prefix="full")
    make_guests(event_b, 2)
    smtp_server.handler.rules = {
        "bad": "550 5.7.1 Recipient refused by policy",
        "full": "552 Mailbox full",
    }
    message_b = make_message(event_b, subject="Winter news")
    dispatcher.poll()
    return (event_a, message_a), (event_b, message_b)


def test_failures_grouped_by_reason(client, two_failing_events):
    (event_a, message_a), (event_b, message_b) = two_failing_events
    html = client.get("/admin/failures").get_data(as_text=True)
    first = html.index("550 5.7.1 Recipient refused by policy")
    second = html.index("552 Mailbox full")
    assert first < second  # most frequent first
    assert "5 deliveries in 2 messages" in html
    assert "1 delivery in 1 message" in html
    assert "Summer Gala" in html and "Winter Ball" in html
    assert "Retry anyway (2 messages)" in html and 'hx-confirm="Retry' in html

    only_b = client.get("/admin/failures", query_string={"event": event_b.id}).get_data(
        as_text=True
    )
    assert "3 deliveries in 1 message" in only_b and "Summer Gala</td>" not in only_b

    tomorrow = (message_a.send_at + timedelta(days=2)).date().isoformat()
    none = client.get("/admin/failures", query_string={"since": tomorrow}).get_data(as_text=True)
    assert "No failed deliveries match these filters" in none

    today = message_a.send_at.date().isoformat()
    some = client.get("/admin/failures", query_string={"since": today, "until": today})
    assert "5 deliveries in 2 messages" in some.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        {"event": "abc"},
        {"event": "999999"},
        {"since": "yesterday"},
        {"since": "2030-01-02", "until": "2030-01-01"},
    ],
)
def test_bad_failure_filters_are_400(client, admin, query):
    response = client.get("/admin/failures", query_string=query)
    assert response.status_code == 400
    assert "Correct the filters" in response.get_data(as_text=True)


def test_bulk_retry_per_group(client, admin, two_failing_events, dispatcher, smtp_server):
    (_, message_a), (_, message_b) = two_failing_events
    response = client.post(
        "/admin/failures/retry",
        data={
            "message_id": [message_a.id, message_b.id, 999999],
            "reason": "550 5.7.1 Recipient refused by policy",
            "back": "/admin/failures?event=",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/failures?event="
    retries = db.session.scalars(
        sa.select(Batch).where(Batch.trigger == BatchTrigger.RETRY_FAILED)
    ).all()
    assert {b.message_id for b in retries} == {message_a.id, message_b.id}
    assert {b.initiated_label for b in retries} == {admin.email}

    page = client.get("/admin/failures").get_data(as_text=True)
    assert "Queued 2 retry batch(es)" in page
    assert "Not retried: message 999999: no such message" in page

    # Again at once: the retries are queued, so nothing is failed any more -> a clear refusal.
    again = client.post("/admin/failures/retry", data={"message_id": message_a.id}, headers=HX)
    assert again.status_code == 200 and again.headers["HX-Redirect"] == "/admin/failures"
    assert "no failed deliveries to retry" in client.get("/admin/failures").get_data(as_text=True)


@pytest.mark.parametrize(
    "back", ["https://evil.example/", "//evil.example/", "/\\evil.example", "/\r\n/evil.example"]
)
def test_bulk_retry_rejects_foreign_back_urls_and_empty_choices(client, admin, back):
    response = client.post("/admin/failures/retry", data={"back": back})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/failures"
    assert "Choose at least one message" in client.get("/admin/failures").get_data(as_text=True)
    told = client.post("/admin/failures/retry", data={"back": back}, headers=HX)
    assert told.status_code == 200 and told.headers["HX-Redirect"] == "/admin/failures"


def test_outbox_when_the_log_transport_is_on(
    app_env, make_user, make_event, make_guests, make_message
):
    from dashboard import create_app
    from dashboard.dispatch.scheduler import build_dispatcher
    from tests.conftest import PASSWORD

    log_app = create_app(
        overrides={"WTF_CSRF_ENABLED": False}, env={**app_env, "MAIL_TRANSPORT": "log"}
    )
    make_user("root@example.com", admin=True)
    event = make_event()
    make_guests(event, 2)
    make_message(event, subject="<i>Hi</i> {{guest_name}}", body="Line one\n" + "x" * 500)
    saved = list(OUTBOX)
    OUTBOX.clear()
    try:
        with log_app.app_context():
            build_dispatcher(log_app, db.session, worker="log").poll()
        with log_app.test_client() as client:
            client.post("/login", data={"email": "root@example.com", "password": PASSWORD})
            html = client.get("/admin/outbox").get_data(as_text=True)
    finally:
        OUTBOX.clear()
        OUTBOX.extend(saved)
    assert "guest0@example.org" in html and "guest1@example.org" in html
    assert "&lt;i&gt;Hi&lt;/i&gt; Guest 0" in html and "<i>Hi</i>" not in html
    assert "Line one" in html and "..." in html  # an excerpt, the rest behind <details>
    assert "(UTC)" in html


def test_outbox_is_off_with_smtp(client, admin):
    html = client.get("/admin/outbox").get_data(as_text=True)
    assert "The Outbox is off" in html
