"""Hostile text and odd shapes: a clear 400 (or 404) naming the problem, never a 500.

Control characters, bidi overrides and lone surrogates are refused in one place for every
form field, query argument and JSON string; odd numbers, ids and dates are bounded."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from dashboard.events.models import Event, Guest
from dashboard.extensions import db
from dashboard.messages.models import Message

NUL = "\x00"
HOSTILE = {
    "nul": "Ada\x00Lovelace",
    "escape": "Ada\x1b[31mLovelace",
    "c1": "Ada\x85Lovelace",
    "delete": "Ada\x7fLovelace",
    "bidi-override": "Ada\u202eecalevoL",
    "bidi-isolate": "Ada\u2066Lovelace",
}


def _guest_count(event: Event) -> int:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Guest).where(Guest.event_id == event.id)
    )


def test_nul_in_the_login_form_is_a_400_naming_the_field(client, owner):
    response = client.post("/login", data={"email": f"owner{NUL}@example.com", "password": "x"})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "The field “email” is not valid: Contains a control character (U+0000)" in text
    assert "Event communications dashboard" in text  # our page, not Werkzeug's bare one


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_form_fields_refuse_hostile_text(client, auth, event, owner, value):
    auth.login(owner)
    response = client.post(
        f"/events/{event.id}/guests",
        data={"name": value, "email": "ada@example.org", "rsvp_status": "pending"},
    )
    assert response.status_code == 400
    assert "The field “name” is not valid" in response.get_data(as_text=True)
    assert _guest_count(event) == 0


def test_htmx_gets_the_refusal_as_a_fragment(client, auth, event, owner):
    auth.login(owner)
    response = client.get(
        f"/events/{event.id}/guests", query_string={"q": NUL}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert text.startswith('<p class="flash flash-error" role="alert">')
    assert "The field “q” is not valid" in text


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_json_strings_refuse_hostile_text_with_the_field_named(
    client, auth, event, owner, bearer, value
):
    response = client.post(
        f"/api/events/{event.id}/guests",
        json={
            "guests": [
                {"name": "Ada", "email": "ada@example.org"},
                {"name": value, "email": "b@example.org"},
            ]
        },
        headers=bearer(owner),
    )
    assert response.status_code == 400
    body = response.get_json()
    assert list(body["fields"]) == ["guests.1.name"]
    assert "not valid" in body["error"]
    assert _guest_count(event) == 0


def test_query_arguments_refuse_hostile_text(client, auth, event, owner, bearer):
    response = client.get(
        f"/api/events/{event.id}/messages",
        query_string={"status": "draft\u202e"},
        headers=bearer(owner),
    )
    assert response.status_code == 400
    assert response.get_json()["fields"] == {
        "status": "Contains a bidirectional override (U+202E), which is not allowed."
    }


def test_line_breaks_and_tabs_stay_allowed_in_a_message_body(client, event, owner, bearer):
    body = "Dear {{guest_name}},\r\n\tsee you soon.\n"
    response = client.post(
        f"/api/events/{event.id}/messages",
        json={"audience": "everyone", "subject": "Hello", "body": body},
        headers=bearer(owner),
    )
    assert response.status_code == 201
    assert response.get_json()["body"] == body.replace("\r\n", "\n")


def test_a_line_break_in_an_event_name_is_a_field_error(client, auth, owner):
    auth.login(owner)
    response = client.post(
        "/events/new",
        data={"name": "Gala\nBcc: x", "starts_at": "2031-05-01T18:00", "timezone": "UTC"},
    )
    assert response.status_code == 400
    assert "Must be a single line" in response.get_data(as_text=True)


def test_a_lone_surrogate_in_json_is_a_400(client, event, owner, bearer):
    response = client.patch(
        f"/api/events/{event.id}",
        data='{"venue": "Hall \\ud800"}',
        content_type="application/json",
        headers=bearer(owner),
    )
    assert response.status_code == 400
    assert response.get_json()["fields"] == {
        "venue": "Contains a lone surrogate (U+D800), which is not allowed."
    }


def test_json_nested_100000_levels_is_a_400(client, event, owner, bearer):
    deep = "[" * 100_000 + "]" * 100_000
    response = client.patch(
        f"/api/events/{event.id}",
        data=deep,
        content_type="application/json",
        headers=bearer(owner),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "The JSON body is nested too deeply."


# --- numbers, ids and dates ------------------------------------------------------------------

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        "/events/{event}/guests?page=" + HUGE,
        "/events/{event}/communications?page=" + HUGE,
        "/events/{event}/communications/sent?page=-" + HUGE,
        "/admin/batches?page=" + HUGE,
    ],
)
def test_huge_page_numbers_clamp(client, auth, make_user, event, path):
    auth.login(make_user("root@example.com", admin=True))
    response = client.get(path.format(event=event.id))
    assert response.status_code == 200


@pytest.mark.parametrize("number", [HUGE, str(2**31), str(2**63)])
@pytest.mark.parametrize(
    "path",
    ["/events/{n}", "/events/{event}/guests/{n}/edit", "/api/events/{n}", "/api/batches/{n}"],
)
def test_ids_beyond_the_integer_range_are_404(client, event, owner, bearer, path, number):
    response = client.get(path.format(n=number, event=event.id), headers=bearer(owner))
    assert response.status_code == 404


def test_a_huge_page_in_a_row_action_clamps(client, auth, event, owner, make_message):
    auth.login(owner)
    message = make_message(event, due=False)
    response = client.post(
        f"/events/{event.id}/communications/{message.id}/cancel",
        data={"tab": "scheduled", "page": HUGE},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("when", ["0001-01-01T00:00", "9999-12-31T23:59", "0001-01-01T00:00+14:00"])
def test_dates_at_the_ends_of_the_calendar_are_400(client, auth, event, owner, bearer, when):
    api = client.patch(
        f"/api/events/{event.id}",
        json={"starts_at": when, "timezone": "America/Los_Angeles"},
        headers=bearer(owner),
    )
    assert api.status_code == 400
    assert api.get_json()["fields"] == {
        "starts_at": "Choose a date between the years 1900 and 2999."
    }
    auth.login(owner)
    form = client.post(
        f"/events/{event.id}/communications",
        data={
            "audience": "everyone",
            "channel": "email",
            "subject": "Hi",
            "body": "Body",
            "mode": "schedule",
            "send_at": when[:16],
        },
    )
    assert form.status_code == 400
    assert "Choose a date between the years 1900 and 2999." in form.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 4  # reminders


# --- the error page after a failed statement -------------------------------------------------


def test_the_error_page_rolls_the_session_back_first(app: Flask, client, auth, owner):
    """A statement that fails leaves PostgreSQL's transaction aborted; the error page loads
    the signed-in user again, so it must roll back first or fail a second time."""

    def broken() -> str:
        db.session.execute(sa.text("SELECT * FROM no_such_table"))
        return "unreachable"

    app.add_url_rule("/broken-for-test", view_func=broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    auth.login(owner)
    db.session.remove()
    response = client.get("/broken-for-test")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "Internal Server Error" in text and "owner@example.com" in text  # ours, signed in
