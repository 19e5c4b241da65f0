"""Message detail, batch drill-down, delivery history and live progress ."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    BatchTrigger,
    Delivery,
    DeliveryStatus,
)
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import HX


def urls(event, message=None, batch=None):
    base = f"/events/{event.id}"
    return {
        "message": f"{base}/messages/{message.id}" if message else None,
        "message_progress": f"{base}/messages/{message.id}/progress" if message else None,
        # The 550 failures of these tests are permanent: retried only on purpose.
        "retry": f"{base}/messages/{message.id}/retry-failed?permanent=1" if message else None,
        "batch": f"{base}/batches/{batch.id}" if batch else None,
        "batch_progress": f"{base}/batches/{batch.id}/progress" if batch else None,
    }


# --- message detail -------------------------------------------------------------------


def test_message_detail_shows_rendered_message_audience_and_batches(
    client, auth, owner, sent_with_failures
):
    event, message, batch = sent_with_failures
    auth.login()
    response = client.get(urls(event, message)["message"])
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Rendered for a recipient who got it: placeholders filled in, no raw {{...}} left.
    rendered = html[html.index('id="rendered-heading"') : html.index('id="batches-heading"')]
    assert "Hello Guest 0" in rendered
    assert "see you at Summer Gala" in rendered
    assert "{{guest_name}}" not in rendered
    assert "Everyone" in html  # audience label, never the slug alone
    # The batch row: who, trigger, status, figures and the stacked bar.
    assert f'/events/{event.id}/batches/{batch.id}"' in html
    assert "scheduler" in html
    assert "Scheduled send" in html
    assert "Completed with failures" in html
    assert "4 sent" in html and "2 failed" in html and "0 skipped" in html and "6 total" in html
    assert 'class="stacked-bar"' in html and 'class="bar-sent" x="0" y="0" width="66.67"' in html
    assert "Retry permanent failures too (2)" in html  # the owner may retry
    assert "HX-Request" in response.headers["Vary"]


def test_message_detail_escapes_host_content(client, auth, make_event, make_guests, make_message):
    event = make_event()
    make_guests(event, 1)
    message = make_message(event, subject="<script>alert(1)</script>", body="<b>{{guest_name}}</b>")
    auth.login()
    html = client.get(urls(event, message)["message"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Guest 0&lt;/b&gt;" in html
    assert "No batch yet" in html


def test_batches_are_listed_newest_first_with_who_started_them(
    client, auth, owner, sent_with_failures, dispatcher, smtp_server
):
    event, message, first = sent_with_failures
    auth.login()
    response = client.post(urls(event, message)["retry"])
    assert response.status_code == 303
    retry = db.session.scalar(sa.select(Batch).order_by(Batch.id.desc()).limit(1))
    assert response.headers["Location"].endswith(f"/events/{event.id}/batches/{retry.id}")
    assert (retry.trigger, retry.initiated_label) == (BatchTrigger.RETRY_FAILED, owner.email)

    html = client.get(urls(event, message)["message"]).get_data(as_text=True)
    assert f"Retry failed by {owner.email}" in html
    assert html.index(f"#{retry.id}<") < html.index(f"#{first.id}<")  # newest first
    # The queued batch is live: its row polls for progress.
    assert f'hx-get="/events/{event.id}/batches/{retry.id}/progress?compact=1"' in html
    # While a batch runs there is nothing to retry.
    assert "Retry failed (" not in html


def test_cross_event_message_id_is_404(client, auth, make_event, sent_with_failures):
    event, message, batch = sent_with_failures
    other = make_event(name="Other event")
    auth.login()
    assert client.get(f"/events/{other.id}/messages/{message.id}").status_code == 404
    assert client.get(f"/events/{other.id}/batches/{batch.id}").status_code == 404
    assert client.get(f"/events/{event.id}/messages/999999").status_code == 404


# --- batch drill-down -------------------------------------------------------------------


def test_batch_page_lists_entries_with_reason_and_time(client, auth, sent_with_failures):
    event, message, batch = sent_with_failures
    auth.login()
    response = client.get(urls(event, message, batch)["batch"])
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('<tr class="entry-') == 6
    assert "550 5.7.1 Recipient refused by policy" in html
    assert "(permanent)" in html
    assert "bad4@example.org" in html and "Guest 0" in html
    assert re.search(r"<time datetime=\"[^\"]+\+00:00\">[^<]+CE?S?T</time>", html)  # event's zone
    assert "All (6)" in html and "Failed (2)" in html and "Sent (4)" in html


def test_batch_entries_filter_and_search_answer_a_fragment(client, auth, sent_with_failures):
    event, message, batch = sent_with_failures
    auth.login()
    url = urls(event, message, batch)["batch"]

    failed = client.get(url, query_string={"outcome": "failed"}, headers=HX)
    html = failed.get_data(as_text=True)
    assert failed.status_code == 200 and "HX-Request" in failed.headers["Vary"]
    assert "<html" not in html  # the fragment only
    assert html.count('<tr class="entry-failed"') == 2 and "entry-sent" not in html

    found = client.get(url, query_string={"q": "GUEST 3"}, headers=HX).get_data(as_text=True)
    assert found.count('<tr class="entry-') == 1 and "guest3@example.org" in found

    by_mail = client.get(url, query_string={"q": "bad5@"}, headers=HX).get_data(as_text=True)
    assert by_mail.count('<tr class="entry-') == 1

    none = client.get(url, query_string={"q": "%_"}, headers=HX).get_data(as_text=True)
    assert "No entries match" in none  # LIKE wildcards are escaped

    skipped = client.get(url, query_string={"outcome": "skipped"}, headers=HX)
    assert "No entries match" in skipped.get_data(as_text=True)

    bad = client.get(url, query_string={"outcome": "exploded"})
    assert bad.status_code == 400
    assert "Unknown outcome filter" in bad.get_data(as_text=True)


def test_batch_entries_paginate(client, auth, sent_with_failures):
    event, message, batch = sent_with_failures
    auth.login()
    url = urls(event, message, batch)["batch"]
    first = client.get(url, query_string={"per_page": 4}, headers=HX).get_data(as_text=True)
    second = client.get(url, query_string={"per_page": 4, "page": 2}, headers=HX).get_data(
        as_text=True
    )
    assert first.count('<tr class="entry-') == 4 and second.count('<tr class="entry-') == 2
    assert "Page 1 of 2" in first and 'rel="next"' in first
    assert 'hx-target="#entries"' in first


def test_failed_delivery_shows_attempt_history_across_batches(
    client, auth, owner, sent_with_failures, dispatcher, now
):
    event, message, first = sent_with_failures
    auth.login()
    client.post(urls(event, message)["retry"])
    dispatcher.poll()  # the retry batch runs: the 550 again
    bad = db.session.scalar(sa.select(Delivery).where(Delivery.email == "bad4@example.org"))
    assert bad.status is DeliveryStatus.FAILED and bad.attempts == 2
    entries = db.session.scalars(sa.select(BatchEntry).where(BatchEntry.delivery_id == bad.id))
    assert len(list(entries)) == 2

    response = client.get(f"/events/{event.id}/deliveries/{bad.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count("550 5.7.1 Recipient refused by policy") >= 2
    assert "Retry failed" in html and "Scheduled send" in html
    fragment = client.get(f"/events/{event.id}/deliveries/{bad.id}", headers=HX)
    assert "<html" not in fragment.get_data(as_text=True)

    # The entries table offers that history inline.
    table = client.get(
        f"/events/{event.id}/batches/{first.id}", query_string={"outcome": "failed"}, headers=HX
    ).get_data(as_text=True)
    assert f'hx-get="/events/{event.id}/deliveries/{bad.id}?compact=1"' in table
    assert 'hx-trigger="toggle once"' in table


# --- retry failed -----------------------------------------------------------------------


def test_retry_with_htmx_redirects_to_the_new_batch(client, auth, sent_with_failures):
    event, message, _ = sent_with_failures
    auth.login()
    response = client.post(urls(event, message)["retry"], headers=HX)
    assert response.status_code == 200
    batch = db.session.scalar(sa.select(Batch).order_by(Batch.id.desc()).limit(1))
    assert response.headers["HX-Redirect"] == f"/events/{event.id}/batches/{batch.id}"
    assert batch.trigger is BatchTrigger.RETRY_FAILED and batch.status is BatchStatus.RUNNING


def test_retry_conflict_is_a_clear_409_never_500(
    client, auth, make_event, make_guests, make_message, dispatcher
):
    event = make_event()
    make_guests(event, 2)
    message = make_message(event)
    dispatcher.poll()  # everything sent: nothing to retry
    auth.login()
    response = client.post(urls(event, message)["retry"], headers=HX)
    assert response.status_code == 409
    assert "no failed deliveries to retry" in response.get_data(as_text=True)
    page = client.post(urls(event, message)["retry"])
    assert page.status_code == 409
    assert "no failed deliveries to retry" in page.get_data(as_text=True)
    assert "<html" in page.get_data(as_text=True)


def test_retry_needs_a_csrf_token(app_env, sent_with_failures):
    from dashboard import create_app
    from tests.conftest import PASSWORD

    event, message, _ = sent_with_failures
    app = create_app(env=app_env)  # CSRF on, as in production

    def token(html: str) -> str:
        return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)

    with app.test_client() as client:
        login_page = client.get("/login").get_data(as_text=True)
        signed_in = client.post(
            "/login",
            data={
                "email": "owner@example.com",
                "password": PASSWORD,
                "csrf_token": token(login_page),
            },
        )
        assert signed_in.status_code == 302
        assert client.post(urls(event, message)["retry"]).status_code == 400
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 1
        page = client.get(urls(event, message)["message"]).get_data(as_text=True)
        assert 'hx-confirm="Send' in page
        answer = client.post(urls(event, message)["retry"], data={"csrf_token": token(page)})
        assert answer.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 2


# --- live progress ------------------------------------------------------------------------


def test_running_batch_polls_its_progress_with_aria_and_eta(
    client, auth, make_event, make_guests, make_message, make_batch, now
):
    event = make_event()
    message = make_message(event, status=MessageStatus.SENDING)
    batch = make_batch(
        message, total=100, sent=40, failed=5, skipped=5, started_at=now - timedelta(seconds=50)
    )
    auth.login()
    u = urls(event, message, batch)
    response = client.get(u["batch_progress"], headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'hx-get="{u["batch_progress"]}"' in html and 'hx-trigger="every 1s"' in html
    assert 'role="progressbar"' in html
    assert 'aria-valuemin="0"' in html and 'aria-valuemax="100"' in html
    assert 'aria-valuenow="50"' in html and "aria-label=" in html
    assert "50 of 100 processed (50%)" in html
    assert re.search(r"about (4\d|50|5\d) s left", html)
    assert "HX-Trigger" not in response.headers

    page = client.get(u["batch"]).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in page  # the page includes the same fragment

    # The batch finishes: the next poll answers the final figures without a trigger.
    batch.status, batch.finished_at = BatchStatus.COMPLETED, now
    batch.sent, batch.failed, batch.skipped = 90, 5, 5
    db.session.commit()
    done = client.get(u["batch_progress"], headers=HX)
    html = done.get_data(as_text=True)
    assert "hx-trigger" not in html and "hx-get" not in html
    assert 'role="progressbar"' not in html
    assert "90 sent" in html and "Completed" in html
    assert done.headers["HX-Trigger"] == "batch-finished"


def test_queued_batch_shows_an_indeterminate_bar(
    client, auth, make_event, make_message, make_batch
):
    event = make_event()
    message = make_message(event, status=MessageStatus.SENDING)
    batch = make_batch(message, heartbeat_at=None, trigger=BatchTrigger.SEND_NOW)
    auth.login()
    html = client.get(urls(event, message, batch)["batch_progress"], headers=HX).get_data(
        as_text=True
    )
    assert 'role="progressbar"' in html and "aria-valuenow" not in html
    assert "waiting for the dispatcher" in html.lower()
    assert 'hx-trigger="every 1s"' in html


def test_message_progress_fragment_for_the_sent_tab(
    client, auth, make_event, make_message, make_batch, sent_with_failures, now
):
    event = make_event(name="Live")
    message = make_message(event, status=MessageStatus.SENDING)
    batch = make_batch(message, total=10, sent=3, started_at=now - timedelta(seconds=3))
    auth.login()
    url = urls(event, message)["message_progress"]
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert f'id="message-progress-{message.id}"' in html
    assert 'hx-trigger="every 1s"' in html and 'aria-valuenow="3"' in html
    assert f"/batches/{batch.id}" in html

    # Between batches (waiting for a retry) it keeps checking, slowly.
    batch.status, batch.finished_at = BatchStatus.COMPLETED, now
    db.session.commit()
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 10s"' in html

    # A finished message: final figures, polling stops.
    done_event, done_message, _ = sent_with_failures
    response = client.get(urls(done_event, done_message)["message_progress"], headers=HX)
    html = response.get_data(as_text=True)
    assert "hx-trigger" not in html and "4 sent" in html and "2 failed" in html
    assert response.headers["HX-Trigger"] == "message-finished"
