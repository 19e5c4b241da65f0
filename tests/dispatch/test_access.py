"""Invariant 11 for the logs: every page and API call resolves the batch through an event the
user may see. Another host's ids answer 404; viewers read but cannot retry (admins only for
/admin: tests/admin/test_access.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, Delivery
from dashboard.events.models import Role
from dashboard.extensions import db
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)

PAGES = [
    "/events/{event}/messages/{message}",
    "/events/{event}/messages/{message}/progress",
    "/events/{event}/batches/{batch}",
    "/events/{event}/batches/{batch}?outcome=failed&q=bad",
    "/events/{event}/batches/{batch}/progress",
    "/events/{event}/deliveries/{delivery}",
]
API_GETS = [
    "/api/events/{event}/messages/{message}/batches",
    "/api/batches/{batch}",
    "/api/batches/{batch}/entries",
    "/api/batches/{batch}/entries?status=failed",
]
RETRIES = [
    "/events/{event}/messages/{message}/retry-failed?permanent=1",
    "/api/events/{event}/messages/{message}/retry-failed?permanent=1",
]


@pytest.fixture
def ids(sent_with_failures):
    event, message, batch = sent_with_failures
    delivery = db.session.scalar(sa.select(Delivery.id).where(Delivery.message_id == message.id))
    return {"event": event.id, "message": message.id, "batch": batch.id, "delivery": delivery}


@pytest.fixture
def strangers_event(stranger, make_event):
    """Another host's own event."""
    return make_event(name="Stranger's party", user=stranger)


@pytest.mark.parametrize("path", PAGES + API_GETS)
def test_another_hosts_batch_is_404(client, auth, ids, stranger, strangers_event, path):
    auth.login(stranger)
    response = client.get(path.format(**ids))
    assert response.status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_ids_under_another_event_are_404(client, auth, ids, stranger, strangers_event, path):
    """The stranger's own event id with the owner's message/batch/delivery ids."""
    auth.login(stranger)
    response = client.get(path.format(**{**ids, "event": strangers_event.id}))
    assert response.status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_owner_sees_every_log_page(client, auth, ids, path):
    auth.login()
    assert client.get(path.format(**ids)).status_code == 200


@pytest.mark.parametrize("path", API_GETS)
def test_api_with_another_hosts_token_is_404(client, bearer, ids, stranger, strangers_event, path):
    response = client.get(path.format(**ids), headers=bearer(stranger))
    assert response.status_code == 404
    assert response.is_json and response.json["error"]


@pytest.mark.parametrize("path", RETRIES)
def test_another_host_cannot_retry(client, auth, ids, stranger, strangers_event, path):
    auth.login(stranger)
    response = client.post(path.format(**ids), json={})
    assert response.status_code == 404
    cross = client.post(path.format(**{**ids, "event": strangers_event.id}), json={})
    assert cross.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 1


@pytest.mark.parametrize("path", PAGES + API_GETS)
def test_viewer_reads(client, auth, ids, make_user, add_collaborator, sent_with_failures, path):
    viewer = make_user("viewer@example.com")
    add_collaborator(sent_with_failures[0], viewer, Role.VIEWER)
    auth.login(viewer)
    assert client.get(path.format(**ids)).status_code == 200


@pytest.mark.parametrize("path", RETRIES)
def test_viewer_cannot_retry(
    client, auth, ids, make_user, add_collaborator, sent_with_failures, path
):
    viewer = make_user("viewer@example.com")
    add_collaborator(sent_with_failures[0], viewer, Role.VIEWER)
    auth.login(viewer)
    assert client.post(path.format(**ids), json={}).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count(Batch.id))) == 1
    page = client.get("/events/{event}/messages/{message}".format(**ids)).get_data(as_text=True)
    assert "Retry failed (" not in page


@pytest.mark.parametrize("path", RETRIES)
def test_editor_can_retry(client, auth, ids, make_user, add_collaborator, sent_with_failures, path):
    editor = make_user("editor@example.com")
    add_collaborator(sent_with_failures[0], editor, Role.EDITOR)
    auth.login(editor)
    assert client.post(path.format(**ids), json={}).status_code in (202, 303)
    batch = db.session.scalar(sa.select(Batch).order_by(Batch.id.desc()).limit(1))
    assert batch.initiated_label == "editor@example.com"


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_pages_redirect_to_login(client, ids, path):
    response = client.get(path.format(**ids))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", API_GETS)
def test_anonymous_api_is_401_json(client, ids, path):
    response = client.get(path.format(**ids))
    assert response.status_code == 401
    assert response.is_json and "Bearer" in response.json["error"]
    bad_token = client.get(path.format(**ids), headers={"Authorization": "Bearer edt_nope"})
    assert bad_token.status_code == 401


def test_anonymous_api_retry_is_401(client, ids):
    response = client.post("/api/events/{event}/messages/{message}/retry-failed".format(**ids))
    assert response.status_code == 401 and response.is_json
