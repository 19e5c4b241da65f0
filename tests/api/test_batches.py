"""The batch API: paging, filters, retry-failed. Every answer is checked against
/api/openapi.json, whose schemas carry the field names of DESIGN.md section 6."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
from dashboard.extensions import db
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)
from tests.helpers import smtp_env


@pytest.fixture
def app_env(app_env, smtp_server):
    """The batches are the real dispatcher's, sent through a real SMTP server on loopback."""
    return {**app_env, **smtp_env(smtp_server)}


def test_batches_of_a_message(client, owner, bearer, sent_with_failures):
    event, message, batch = sent_with_failures
    response = client.get(
        f"/api/events/{event.id}/messages/{message.id}/batches", headers=bearer(owner)
    )
    assert response.status_code == 200
    body = response.json
    assert (body["page"], body["total"]) == (1, 1) and body["per_page"] > 0
    [item] = body["items"]
    assert item["id"] == batch.id and item["message_id"] == message.id
    assert (item["trigger"], item["initiated_by"], item["status"]) == (
        "schedule",
        "scheduler",
        "completed_with_failures",
    )
    counts = item["counts"]
    assert counts == {"total": 6, "sent": 4, "failed": 2, "skipped": 0, "cancelled": 0}
    assert counts["sent"] + counts["failed"] + counts["skipped"] == counts["total"]
    assert item["started_at"].endswith("+00:00") and item["finished_at"].endswith("+00:00")
    assert item["error"] is None


def test_one_batch_and_its_entries(client, owner, bearer, sent_with_failures):
    event, message, batch = sent_with_failures
    headers = bearer(owner)
    one = client.get(f"/api/batches/{batch.id}", headers=headers).json
    assert one["event_id"] == event.id

    everything = client.get(f"/api/batches/{batch.id}/entries", headers=headers).json
    assert everything["total"] == 6 and len(everything["items"]) == 6

    failed = client.get(
        f"/api/batches/{batch.id}/entries", query_string={"status": "failed"}, headers=headers
    ).json
    assert failed["total"] == 2
    assert {item["email"] for item in failed["items"]} == {"bad4@example.org", "bad5@example.org"}
    assert all(
        item["outcome"] == "failed" and "550 5.7.1" in item["reason"] for item in failed["items"]
    )
    assert all(item["processed_at"].endswith("+00:00") for item in failed["items"])

    paged = client.get(
        f"/api/batches/{batch.id}/entries",
        query_string={"status": "sent", "per_page": 3, "page": 2},
        headers=headers,
    ).json
    assert (paged["page"], paged["per_page"], paged["total"], len(paged["items"])) == (2, 3, 4, 1)

    searched = client.get(
        f"/api/batches/{batch.id}/entries", query_string={"q": "Guest 2"}, headers=headers
    ).json
    assert [item["email"] for item in searched["items"]] == ["guest2@example.org"]


def test_bad_status_filter_is_400_json(client, owner, bearer, sent_with_failures):
    _, _, batch = sent_with_failures
    response = client.get(
        f"/api/batches/{batch.id}/entries", query_string={"status": "nope"}, headers=bearer(owner)
    )
    assert response.status_code == 400
    assert "Unknown status" in response.json["error"]


def test_session_works_too(client, auth, sent_with_failures):
    _, _, batch = sent_with_failures
    auth.login()
    assert client.get(f"/api/batches/{batch.id}").status_code == 200


def test_retry_failed_queues_a_batch_then_409(
    client, owner, bearer, sent_with_failures, dispatcher
):
    event, message, _ = sent_with_failures
    url = f"/api/events/{event.id}/messages/{message.id}/retry-failed?permanent=true"
    headers = bearer(owner)
    response = client.post(url, headers=headers)
    assert response.status_code == 202
    body = response.json
    assert (body["trigger"], body["initiated_by"], body["status"]) == (
        "retry_failed",
        f"{owner.email} (token tests)",  # the user and the token the call came with
        "running",
    )
    assert response.headers["Location"] == f"/api/batches/{body['id']}"

    again = client.post(url, headers=headers)  # its deliveries are pending again, not failed
    assert again.status_code == 409
    assert again.json["error"] == "This message has no failed deliveries to retry."

    dispatcher.poll()  # the 550s fail again
    batch = db.session.get(Batch, body["id"])
    db.session.refresh(batch)
    assert (batch.total, batch.failed, batch.status) == (2, 2, BatchStatus.FAILED)
    assert batch.trigger is BatchTrigger.RETRY_FAILED


def test_retry_failed_with_nothing_failed_is_409(
    client, owner, bearer, make_event, make_guests, make_message, dispatcher
):
    event = make_event()
    make_guests(event, 2)
    message = make_message(event)
    dispatcher.poll()
    response = client.post(
        f"/api/events/{event.id}/messages/{message.id}/retry-failed", headers=bearer(owner)
    )
    assert response.status_code == 409
    assert response.json == {"error": "This message has no failed deliveries to retry."}


def test_session_retry_needs_the_csrf_header(app_env, sent_with_failures):
    """A session cookie alone cannot retry (cross-site); with X-CSRFToken it can."""
    import re

    from dashboard import create_app
    from tests.conftest import PASSWORD

    event, message, _ = sent_with_failures
    app = create_app(env=app_env)  # CSRF on, as in production
    url = f"/api/events/{event.id}/messages/{message.id}/retry-failed?permanent=true"
    with app.test_client() as client:
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
        client.post(
            "/login", data={"email": "owner@example.com", "password": PASSWORD, "csrf_token": token}
        )
        assert client.post(url, json={}).status_code == 400
        assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 1
        assert client.post(url, headers={"X-CSRFToken": token}).status_code == 202
