"""The guest list over JSON: list (paginated, removed guests on request), remove, and bulk
add bringing removed guests back with their id. Every answer is checked against
/api/openapi.json."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.events.models import Guest
from dashboard.extensions import db
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)


def url(event, tail: str = "") -> str:
    return f"/api/events/{event.id}/guests{tail}"


def test_list_remove_and_list_with_the_removed(client, owner, bearer, event, make_guests):
    guests = make_guests(event, 5)
    headers = bearer(owner)
    page = client.get(url(event, "?per_page=2&page=2"), headers=headers).get_json()
    assert (page["page"], page["per_page"], page["total"]) == (2, 2, 5)
    assert [g["id"] for g in page["items"]] == [guests[2].id, guests[3].id]
    assert all(g["removed"] is False and g["removed_at"] is None for g in page["items"])

    gone = client.delete(url(event, f"/{guests[1].id}"), headers=headers)
    assert gone.status_code == 200
    assert gone.get_json()["removed"] is True and gone.get_json()["removed_at"]
    again = client.delete(url(event, f"/{guests[1].id}"), headers=headers)
    assert (
        again.status_code == 200 and again.get_json()["removed_at"] == gone.get_json()["removed_at"]
    )  # removing twice changes nothing

    listed = client.get(url(event), headers=headers).get_json()
    assert listed["total"] == 4 and guests[1].id not in [g["id"] for g in listed["items"]]
    everyone = client.get(url(event, "?include_removed=1"), headers=headers).get_json()
    assert everyone["total"] == 5
    assert [g["id"] for g in everyone["items"] if g["removed"]] == [guests[1].id]
    found = client.get(url(event, "?include_removed=true&q=GUEST1@"), headers=headers).get_json()
    assert [g["id"] for g in found["items"]] == [guests[1].id]

    [entry] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "guest.remove"))
    assert (entry.actor, entry.guest_id) == ("owner@example.com (token tests)", guests[1].id)


def test_bulk_add_brings_a_removed_guest_back_with_the_same_id(
    client, owner, bearer, event, make_guests
):
    gone, kept = make_guests(event, 2)
    headers = bearer(owner)
    removed = client.delete(url(event, f"/{gone.id}"), headers=headers).get_json()
    resent = {**removed, "name": "Back Again"}  # a row read from the API, sent back as it is
    response = client.post(
        url(event),
        json={"guests": [resent, {"name": "New", "email": "new@example.org"}]},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["restored"], body["updated"], body["rejected"]) == (1, 1, 0, 0)
    assert [g["id"] for g in body["guests"]][1] == gone.id
    assert body["guests"][1]["removed"] is False and body["guests"][1]["name"] == "Back Again"
    db.session.expire_all()
    assert db.session.get(Guest, gone.id).removed_at is None
    [entry] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "guest.import"))
    assert entry.details == {
        "source": "api",
        "created": 1,
        "restored": 1,
        "updated": 0,
        "rejected": 0,
    }


def test_another_events_guest_is_404_and_a_bad_flag_400(
    client, bearer, owner, event, make_event, make_guests
):
    other = make_guests(make_event("Other"), 1)[0]
    make_guests(event, 1)
    headers = bearer(owner)
    assert client.delete(url(event, f"/{other.id}"), headers=headers).status_code == 404
    bad = client.get(url(event, "?include_removed=perhaps"), headers=headers)
    assert bad.status_code == 400 and "include_removed" in bad.get_json()["fields"]
    db.session.expire_all()
    assert db.session.get(Guest, other.id).removed_at is None


def test_a_viewer_reads_the_list_but_removes_nobody(client, bearer, viewer, event, make_guests):
    guest = make_guests(event, 1)[0]
    headers = bearer(viewer)
    assert client.get(url(event), headers=headers).get_json()["total"] == 1
    assert client.delete(url(event, f"/{guest.id}"), headers=headers).status_code == 403
    db.session.expire_all()
    assert db.session.get(Guest, guest.id).removed_at is None


def test_a_stranger_sees_no_guest(client, bearer, stranger, event, make_guests):
    guest = make_guests(event, 1)[0]
    headers = bearer(stranger)
    assert client.get(url(event), headers=headers).status_code == 404
    assert client.delete(url(event, f"/{guest.id}"), headers=headers).status_code == 404
