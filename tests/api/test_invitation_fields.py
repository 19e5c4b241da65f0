"""The API side of mail that looks like an invitation: an event's end, sender name and
Reply-To; a message's ``attach_calendar``. Every answer is checked against the document."""

from __future__ import annotations

import pytest

from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)


def test_an_event_carries_its_end_and_sender_identity(client, auth, owner):
    auth.login(owner)
    created = client.post(
        "/api/events",
        json={
            "name": "Gala",
            "starts_at": "2031-03-30T01:30",  # the clocks go forward at 02:00
            "timezone": "Europe/Berlin",
            "sender_name": "Anna's Wedding",
            "reply_to": "anna@example.org",
        },
    )
    assert created.status_code == 201
    event = created.get_json()
    assert event["starts_at"] == "2031-03-30T01:30:00+01:00"
    assert event["ends_at"] == "2031-03-30T04:30:00+02:00"  # two hours later, in summer time
    assert (event["sender_name"], event["reply_to"]) == ("Anna's Wedding", "anna@example.org")

    moved = client.patch(
        f"/api/events/{event['id']}", json={"starts_at": "2031-04-01T19:00", "reply_to": ""}
    )
    assert moved.status_code == 200
    body = moved.get_json()
    assert body["ends_at"] == "2031-04-01T21:00:00+02:00" and body["reply_to"] == ""
    assert body["sender_name"] == "Anna's Wedding"  # absent: kept

    longer = client.patch(f"/api/events/{event['id']}", json={"ends_at": "2031-04-02T02:00"})
    assert longer.get_json()["ends_at"] == "2031-04-02T02:00:00+02:00"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"ends_at": "2030-06-01T17:00"}, "ends_at"),
        ({"ends_at": "soon"}, "ends_at"),
        ({"reply_to": "nobody"}, "reply_to"),
        ({"reply_to": "a@b.de>, evil@x.y"}, "reply_to"),
        ({"sender_name": "Bad\x00name"}, "sender_name"),
    ],
)
def test_bad_event_fields_are_400_with_the_field(client, auth, owner, payload, field):
    auth.login(owner)
    response = client.post(
        "/api/events", json={"name": "Gala", "starts_at": "2030-06-01T18:00", **payload}
    )
    assert response.status_code == 400
    assert field in response.get_json()["fields"]


def test_attach_calendar_defaults_by_kind_and_can_be_changed(client, auth, event, owner):
    auth.login(owner)
    url = f"/api/events/{event.id}/messages"
    listed = client.get(url, query_string={"per_page": 50}).get_json()["items"]
    assert {m["kind"]: m["attach_calendar"] for m in listed} == {
        "reminder_7d": True,
        "reminder_3d": True,
        "reminder_1d": True,
        "reminder_day_of": True,
    }
    fields = {"audience": "everyone", "subject": "Hi", "body": "**Hello**"}
    plain = client.post(url, json=fields).get_json()
    assert plain["attach_calendar"] is False
    invited = client.post(url, json={**fields, "attach_calendar": True}).get_json()
    assert invited["attach_calendar"] is True
    changed = client.patch(f"{url}/{invited['id']}", json={"attach_calendar": False})
    assert changed.status_code == 200 and changed.get_json()["attach_calendar"] is False
    refused = client.patch(f"{url}/{invited['id']}", json={"attach_calendar": "maybe"})
    assert refused.status_code == 400 and "attach_calendar" in refused.get_json()["fields"]
