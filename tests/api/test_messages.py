"""The JSON API for events, guests and messages: shapes, rules, roles, auth and CSRF.

Every answer is checked against /api/openapi.json (tests/api/openapi_check.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, Delivery, DeliveryStatus
from dashboard.events.models import Guest
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind, MessageStatus
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)
from tests.helpers import login_session, set_status


def api(event, tail: str = "") -> str:
    return f"/api/events/{event.id}/messages{tail}"


def new_message(**overrides):
    data = {
        "audience": "everyone",
        "subject": "Hello {{guest_name}}",
        "body": "See you at {{venue}}.",
    }
    data.update(overrides)
    return data


# --- messages ------------------------------------------------------------------------


def test_walk_draft_edit_schedule_send_now_then_cancel_refused(
    client, auth, event, owner, now, make_guests
):
    make_guests(event, 1)  # scheduling or sending for nobody is refused
    auth.login(owner)
    created = client.post(api(event), json=new_message())
    assert created.status_code == 201
    message = created.get_json()
    assert (message["kind"], message["label"], message["status"], message["send_at"]) == (
        "custom",
        "Custom message",
        "draft",
        None,
    )
    assert created.headers["Location"].endswith(api(event, f"/{message['id']}"))
    one = api(event, f"/{message['id']}")

    edited = client.patch(one, json={"subject": "Hello again {{guest_name}}"})
    assert edited.status_code == 200
    assert edited.get_json()["subject"] == "Hello again {{guest_name}}"
    assert edited.get_json()["status"] == "draft"

    when = (now + timedelta(days=3)).replace(microsecond=0)
    scheduled = client.patch(one, json={"mode": "schedule", "send_at": when.isoformat()})
    assert scheduled.status_code == 200
    body = scheduled.get_json()
    assert body["status"] == "scheduled"
    assert datetime.fromisoformat(body["send_at"]) == when
    assert (
        datetime.fromisoformat(body["send_at"]).utcoffset() == when.astimezone(event.tz).utcoffset()
    )

    sent = client.post(one + "/send-now")
    assert sent.status_code == 202
    assert sent.get_json()["status"] == "sending"
    assert sent.get_json()["counts"] == {
        "total": 0,
        "sent": 0,
        "failed": 0,
        "skipped": 0,
        "pending": 0,
        "cancelled": 0,
    }
    assert db.session.get(Batch, sent.get_json()["batch_id"]).message_id == message["id"]

    refused = client.delete(one)
    assert refused.status_code == 409
    assert refused.get_json()["error"] == (
        "This message is sending and can no longer be cancelled. Only drafts, scheduled and overdue messages can be changed."
    )
    assert client.patch(one, json={"subject": "Too late"}).status_code == 409
    assert client.post(one + "/send-now").status_code == 409
    assert client.get(one).get_json()["subject"] == "Hello again {{guest_name}}"


def test_create_scheduled_and_send_now_directly(client, auth, event, owner, now, make_guests):
    make_guests(event, 1)
    auth.login(owner)
    naive_local = (now + timedelta(days=2)).astimezone(event.tz).replace(tzinfo=None, microsecond=0)
    scheduled = client.post(
        api(event), json=new_message(mode="schedule", send_at=naive_local.isoformat())
    )
    assert scheduled.status_code == 201
    got = datetime.fromisoformat(scheduled.get_json()["send_at"])
    assert got.replace(tzinfo=None) == naive_local and got.utcoffset() is not None

    sending = client.post(api(event), json=new_message(mode="send_now"))
    assert sending.status_code == 201 and sending.get_json()["status"] == "sending"


def test_delete_cancels_a_draft(client, auth, event, owner, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(owner)
    response = client.delete(api(event, f"/{message.id}"))
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert client.delete(api(event, f"/{message.id}")).status_code == 409


def test_edit_after_the_scheduler_claimed_it_is_409(client, auth, event, owner, make_message, now):
    message = make_message(event, send_at=now + timedelta(minutes=5))
    auth.login(owner)
    set_status(message, MessageStatus.SENDING)
    response = client.patch(api(event, f"/{message.id}"), json={"subject": "changed"})
    assert response.status_code == 409
    assert "sending" in response.get_json()["error"]


def test_list_is_paginated_newest_first_with_a_status_filter(
    client, auth, event, owner, make_message, make_guests
):
    auth.login(owner)
    for i in range(3):
        make_message(event, subject=f"Draft {i}", status=MessageStatus.DRAFT)
    done = make_message(event, subject="Done", status=MessageStatus.SENT)
    guest = make_guests(event, 1)[0]
    db.session.add(
        Delivery(
            message_id=done.id, guest_id=guest.id, email=guest.email, status=DeliveryStatus.SENT
        )
    )
    db.session.commit()

    page = client.get(api(event, "?per_page=2")).get_json()
    assert (page["page"], page["per_page"], page["total"]) == (1, 2, 8)  # 4 + 4 reminders
    assert [m["subject"] for m in page["items"]] == ["Done", "Draft 2"]
    assert page["items"][0]["counts"] == {
        "total": 1,
        "sent": 1,
        "failed": 0,
        "skipped": 0,
        "pending": 0,
        "cancelled": 0,
    }
    assert "counts" not in page["items"][1]

    drafts = client.get(api(event, "?status=draft")).get_json()
    assert drafts["total"] == 3 and {m["status"] for m in drafts["items"]} == {"draft"}
    reminders = client.get(api(event, "?status=scheduled,cancelled")).get_json()
    assert {m["label"] for m in reminders["items"]} == {
        "7-day reminder",
        "3-day last call",
        "1-day reminder",
        "Day-of reminder",
    }
    bad = client.get(api(event, "?status=bogus"))
    assert bad.status_code == 400 and "fields" in bad.get_json()


@pytest.mark.parametrize(
    ("audience", "count", "unsubscribed"),
    [
        ("everyone", 10, 1),
        ("attending", 3, 1),
        ("pending", 2, 0),
        ("declined", 1, 0),
        ("maybe", 4, 0),
    ],
)
def test_recipient_count_for_every_audience(
    client, auth, event, owner, guest_mix, audience, count, unsubscribed
):
    auth.login(owner)
    response = client.get(api(event, f"/recipient-count?audience={audience}"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["audience"] == audience and body["count"] == count
    assert body["unsubscribed"] == unsubscribed and body["no_address"] == 0
    assert body["left_out"] == unsubscribed


@pytest.mark.parametrize("query", ["", "?audience=", "?audience=vips"])
def test_recipient_count_needs_a_valid_audience(client, auth, event, owner, query):
    auth.login(owner)
    response = client.get(api(event, f"/recipient-count{query}"))
    assert response.status_code == 400
    assert "audience" in response.get_json()["fields"]


# --- hostile and bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (new_message(subject="Hi\r\nBcc: all@example.com"), "subject"),
        (new_message(subject="Hi\nthere"), "subject"),
        (new_message(subject="x" * 301), "subject"),
        (new_message(subject=""), "subject"),
        (new_message(subject=None), "subject"),
        (new_message(subject=["list"]), "subject"),
        (new_message(body="x" * (100 * 1024 + 1)), "body"),
        (new_message(body=12), "body"),
        (new_message(audience="vips"), "audience"),
        (new_message(audience=["everyone"]), "audience"),
        (new_message(channel="sms"), "channel"),
        (new_message(mode="later"), "mode"),
        (new_message(mode="schedule"), "send_at"),
        (new_message(mode="schedule", send_at="2001-01-01T10:00:00+00:00"), "send_at"),
        (new_message(mode="schedule", send_at={"when": "soon"}), "send_at"),
        (new_message(status="sent"), "status"),
        (new_message(kind="reminder_1d"), "kind"),
    ],
)
def test_bad_message_input_is_400_with_fields(client, auth, event, owner, payload, field):
    auth.login(owner)
    response = client.post(api(event), json=payload)
    assert response.status_code == 400
    body = response.get_json()
    assert field in body["fields"] and body["error"]
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Message)
            .where(Message.kind == MessageKind.CUSTOM)
        )
        == 0
    )


def test_unknown_placeholder_lists_the_valid_ones(client, auth, event, owner):
    auth.login(owner)
    response = client.post(api(event), json=new_message(body="Hi {{ guest_nmae }}"))
    assert response.status_code == 400
    text = response.get_json()["fields"]["body"]
    assert "Unknown placeholder {{guest_nmae}}" in text
    for name in (
        "guest_name",
        "event_name",
        "event_date",
        "venue",
        "rsvp_link",
        "unsubscribe_link",
    ):
        assert "{{" + name + "}}" in text


def test_scheduling_in_the_past_is_refused(client, auth, event, owner, now):
    auth.login(owner)
    past = (now - timedelta(minutes=1)).isoformat()
    response = client.post(api(event), json=new_message(mode="schedule", send_at=past))
    assert response.status_code == 400
    assert "already passed" in response.get_json()["fields"]["send_at"]
    draft = client.post(api(event), json=new_message()).get_json()
    assert (
        client.patch(
            api(event, f"/{draft['id']}"), json={"mode": "schedule", "send_at": past}
        ).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("{not json", "application/json"),
        ('{"subject": "x",}', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"just a string"', "application/json"),
        ("", "application/json"),
        ("subject=x", "application/x-www-form-urlencoded"),
        ("\xff\xfe", "application/json"),
    ],
)
def test_malformed_json_is_400_not_500(
    client, auth, event, owner, make_message, data, content_type
):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(owner)
    for method, path in (
        ("post", api(event)),
        ("patch", api(event, f"/{message.id}")),
        ("post", "/api/events"),
        ("patch", f"/api/events/{event.id}"),
        ("post", f"/api/events/{event.id}/guests"),
    ):
        response = getattr(client, method)(path, data=data, content_type=content_type)
        assert response.status_code == 400, (method, path)
        assert "JSON" in response.get_json()["error"]


def test_a_100_kb_body_and_non_ascii_round_trip(client, auth, event, owner):
    auth.login(owner)
    body = "Grüße 🎉 日本語 «{{guest_name}}» " * 4000
    body = body[: 100 * 1024]
    subject = "Ça va? Ünïcödé 🎉 {{event_name}}"
    created = client.post(api(event), json=new_message(subject=subject, body=body))
    assert created.status_code == 201
    fetched = client.get(api(event, f"/{created.get_json()['id']}")).get_json()
    assert (fetched["subject"], fetched["body"]) == (subject, body)


def test_hostile_text_is_stored_verbatim_and_served_as_json(client, auth, event, owner):
    auth.login(owner)
    subject = "<script>alert(1)</script>"
    response = client.post(
        api(event), json=new_message(subject=subject, body="<img src=x onerror=alert(1)>")
    )
    assert response.status_code == 201
    assert response.content_type == "application/json"
    assert response.get_json()["subject"] == subject
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- events and guests ---------------------------------------------------------------


def test_create_get_and_patch_an_event(client, auth, owner, now):
    auth.login(owner)
    starts = (now + timedelta(days=30)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    created = client.post(
        "/api/events",
        json={
            "name": "Launch",
            "starts_at": starts.isoformat(),
            "timezone": "Asia/Tokyo",
            "venue": "Roof",
        },
    )
    assert created.status_code == 201
    event = created.get_json()
    assert {"id", "name", "starts_at", "timezone", "venue"} <= set(event)
    assert event["timezone"] == "Asia/Tokyo"
    assert (
        event["starts_at"] == starts.isoformat() + "+09:00"
    )  # naive input read in the event's zone
    messages = client.get(f"/api/events/{event['id']}/messages").get_json()
    assert messages["total"] == 4  # the auto-reminders

    moved = client.patch(
        f"/api/events/{event['id']}",
        json={"starts_at": "2031-03-01T19:00:00+01:00", "venue": "Cellar"},
    )
    assert moved.status_code == 200
    assert moved.get_json()["starts_at"] == "2031-03-02T03:00:00+09:00"
    assert moved.get_json()["venue"] == "Cellar" and moved.get_json()["name"] == "Launch"
    assert client.get(f"/api/events/{event['id']}").get_json() == moved.get_json()
    assert client.get("/api/events").get_json()["total"] == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"starts_at": "2031-01-01T10:00"}, "name"),
        ({"name": "x"}, "starts_at"),
        ({"name": 5, "starts_at": "2031-01-01T10:00"}, "name"),
        ({"name": "x", "starts_at": "next friday"}, "starts_at"),
        ({"name": "x", "starts_at": "2031-01-01T10:00", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "x" * 201, "starts_at": "2031-01-01T10:00"}, "name"),
        ({"name": "x", "starts_at": "2031-01-01T10:00", "owner": 1}, "owner"),
    ],
)
def test_bad_event_input_is_400(client, auth, owner, payload, field):
    auth.login(owner)
    response = client.post("/api/events", json=payload)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]


def test_bulk_guests_create_update_and_reject_in_one_go(client, auth, event, owner, make_guests):
    existing = make_guests(event, 1, "attending", prefix="known")[0]
    auth.login(owner)
    response = client.post(
        f"/api/events/{event.id}/guests",
        json={
            "guests": [
                {"name": "Ada", "email": "ada@example.org", "rsvp_status": "maybe"},
                {"name": "Known Again", "email": existing.email.upper()},
                {"name": "<b>Évariste</b> {{venue}}", "email": "evariste@example.org"},
                {"name": "No mail"},
                {"name": "Bad", "email": "not-an-email"},
                {"name": "Ada twice", "email": "ADA@example.org"},
                {"name": "Odd", "email": "odd@example.org", "rsvp_status": "sometimes"},
                "just a string",
                {"name": ["x"], "email": "list@example.org"},
            ]
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["created"], body["updated"], body["rejected"]) == (2, 1, 6)
    rejected = {row["index"]: row["errors"] for row in body["rejected_rows"]}
    assert set(rejected) == {3, 4, 5, 6, 7, 8}
    assert (
        "email" in rejected[3]
        and "email" in rejected[4]
        and "more than once" in rejected[5]["email"]
    )
    assert "rsvp_status" in rejected[6] and "name" in rejected[8]
    db.session.expire_all()
    known = db.session.get(Guest, existing.id)
    assert (known.name, known.rsvp_status.value) == ("Known Again", "attending")  # answer kept
    names = {g["name"] for g in body["guests"]}
    assert "<b>Évariste</b> {{venue}}" in names
    for guest in body["guests"]:
        assert set(guest) >= {"id", "name", "email", "rsvp_status", "unsubscribed"}
        assert guest["unsubscribed"] is False


@pytest.mark.parametrize(
    "payload", [{}, {"guests": "x"}, {"guests": {"name": "x"}}, {"people": []}]
)
def test_bulk_guests_needs_a_list(client, auth, event, owner, payload):
    auth.login(owner)
    response = client.post(f"/api/events/{event.id}/guests", json=payload)
    assert response.status_code == 400


# --- roles and visibility ------------------------------------------------------------


def test_viewer_reads_but_cannot_change(client, auth, event, viewer, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(viewer)
    assert client.get(f"/api/events/{event.id}").status_code == 200
    assert client.get(api(event)).status_code == 200
    assert client.get(api(event, f"/{message.id}")).status_code == 200
    assert client.get(api(event, "/recipient-count?audience=everyone")).status_code == 200
    for method, path, payload in (
        ("post", api(event), new_message()),
        ("patch", api(event, f"/{message.id}"), {"subject": "x"}),
        ("delete", api(event, f"/{message.id}"), None),
        ("post", api(event, f"/{message.id}/send-now"), None),
        ("patch", f"/api/events/{event.id}", {"name": "Mine now"}),
        ("post", f"/api/events/{event.id}/guests", {"guests": []}),
    ):
        response = getattr(client, method)(path, json=payload)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"]
    db.session.expire_all()
    assert db.session.get(Message, message.id).status is MessageStatus.DRAFT


def test_editor_can_change(client, auth, event, editor, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(editor)
    assert (
        client.patch(api(event, f"/{message.id}"), json={"subject": "By the editor"}).status_code
        == 200
    )
    assert client.patch(f"/api/events/{event.id}", json={"venue": "Elsewhere"}).status_code == 200


def test_other_hosts_get_404_everywhere(client, auth, event, stranger, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(stranger)
    for method, path in (
        ("get", f"/api/events/{event.id}"),
        ("patch", f"/api/events/{event.id}"),
        ("post", f"/api/events/{event.id}/guests"),
        ("get", api(event)),
        ("post", api(event)),
        ("get", api(event, "/recipient-count?audience=everyone")),
        ("get", api(event, f"/{message.id}")),
        ("patch", api(event, f"/{message.id}")),
        ("delete", api(event, f"/{message.id}")),
        ("post", api(event, f"/{message.id}/send-now")),
    ):
        response = getattr(client, method)(path, json={})
        assert response.status_code == 404, (method, path)
        assert "error" in response.get_json()
    assert client.get("/api/events").get_json()["total"] == 0


def test_a_message_id_of_another_event_is_404(client, auth, event, owner, make_event, make_message):
    other = make_event("Other")
    message = make_message(other, status=MessageStatus.DRAFT)
    auth.login(owner)
    for method in ("get", "patch", "delete"):
        assert getattr(client, method)(api(event, f"/{message.id}"), json={}).status_code == 404
    assert client.post(api(event, f"/{message.id}/send-now")).status_code == 404
    assert client.get(f"/api/events/{other.id}/messages/{message.id}").status_code == 200


def test_unknown_ids_are_404_json(client, auth, owner):
    auth.login(owner)
    response = client.get("/api/events/999999")
    assert response.status_code == 404 and response.get_json()["error"]


# --- authentication and CSRF -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/events"),
        ("post", "/api/events"),
        ("get", "/api/events/{id}"),
        ("patch", "/api/events/{id}"),
        ("post", "/api/events/{id}/guests"),
        ("get", "/api/events/{id}/messages"),
        ("post", "/api/events/{id}/messages"),
        ("get", "/api/events/{id}/messages/recipient-count?audience=everyone"),
        ("get", "/api/events/{id}/messages/1"),
        ("patch", "/api/events/{id}/messages/1"),
        ("delete", "/api/events/{id}/messages/1"),
        ("post", "/api/events/{id}/messages/1/send-now"),
    ],
)
def test_401_without_a_session_or_token(client, event, method, path):
    response = getattr(client, method)(path.format(id=event.id), json={})
    assert response.status_code == 401
    assert response.content_type == "application/json"
    assert response.get_json()["error"]
    bad = getattr(client, method)(
        path.format(id=event.id), json={}, headers={"Authorization": "Bearer edt_nope"}
    )
    assert bad.status_code == 401


def test_openapi_needs_no_login(client):
    assert client.get("/api/openapi.json").status_code == 200


def test_bearer_token_works_for_reads_and_writes(client, event, owner, bearer, now):
    headers = bearer(owner)
    assert client.get(api(event), headers=headers).status_code == 200
    created = client.post(api(event), json=new_message(), headers=headers)
    assert created.status_code == 201
    assert created.get_json()["status"] == "draft"
    assert db.session.get(Message, created.get_json()["id"]).created_by_id == owner.id


def test_bearer_token_of_a_viewer_is_still_a_viewer(client, event, viewer, bearer):
    headers = bearer(viewer)
    assert client.get(api(event), headers=headers).status_code == 200
    assert client.post(api(event), json=new_message(), headers=headers).status_code == 403


class TestWithCsrf:
    @pytest.fixture
    def app_overrides(self):
        return {"WTF_CSRF_ENABLED": True}

    def test_session_writes_need_the_csrf_token(self, client, event, owner):
        login_session(client, owner)
        assert client.get(api(event)).status_code == 200  # reads need none
        refused = client.post(api(event), json=new_message())
        assert refused.status_code == 400
        assert "CSRF" in refused.get_json()["error"]

        page = client.get(f"/events/{event.id}/communications").get_data(as_text=True)
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
        accepted = client.post(api(event), json=new_message(), headers={"X-CSRFToken": token})
        assert accepted.status_code == 201

    def test_bearer_writes_need_no_csrf_token(self, client, event, owner, bearer):
        assert client.post(api(event), json=new_message(), headers=bearer(owner)).status_code == 201

    def test_page_forms_need_the_csrf_token_too(self, client, event, owner):
        login_session(client, owner)
        response = client.post(
            f"/events/{event.id}/communications", data={"subject": "x", "body": "y"}
        )
        assert response.status_code == 400
