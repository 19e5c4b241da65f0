"""Test sends over JSON, through a real SMTP server: the production path (renderer, MIME,
headers, transport), "[Test] " subjects, inert links, never a delivery; limits and errors.

Every answer is checked against /api/openapi.json (tests/api/openapi_check.py)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor, record
from dashboard.dispatch.models import Delivery
from dashboard.events.models import Role
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from dashboard.messages.testsend import ACTION, PER_HOUR
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)
from tests.helpers import smtp_env

SUBJECT = "Doors open, {{guest_name}}"
BODY = "Dear {{guest_name}}, grüße!\nRSVP: {{rsvp_link}}\nLeave: {{unsubscribe_link}}"
#: The headers every e-mail of a send carries, in the same form for a test.
SAME = ("From", "MIME-Version", "Content-Type", "Content-Transfer-Encoding")
MESSAGE_ID = re.compile(r"<[a-z]+-[0-9a-f]+\.message-\d+@dashboard\.test>")


@pytest.fixture
def app_env(app_env, smtp_server):
    return {**app_env, **smtp_env(smtp_server)}


def url(event, tail: str = "") -> str:
    return f"/api/events/{event.id}/messages{tail}"


def test_a_test_carries_the_headers_of_a_real_send_and_is_no_delivery(
    client, event, owner, bearer, make_guests, make_message, dispatcher, smtp_server
):
    [first, second] = make_guests(event, 2)
    real = make_message(event, subject=SUBJECT, body=BODY)
    dispatcher.poll()
    [sent] = smtp_server.messages_to(first.email)
    smtp_server.handler.received.clear()
    deliveries = db.session.scalar(sa.select(sa.func.count()).select_from(Delivery))

    answer = client.post(
        url(event, "/test-send"),
        json={
            "subject": SUBJECT,
            "body": BODY,
            "to": ["me@example.net", "co-host@example.net"],
            "guest_id": second.id,
        },
        headers=bearer(owner),
    )

    assert answer.status_code == 200
    assert answer.json["results"] == [
        {"to": "me@example.net", "accepted": True, "error": None},
        {"to": "co-host@example.net", "accepted": True, "error": None},
    ]
    assert answer.json["rendered_as"] == f"{second.name} <{second.email}>"
    [test] = smtp_server.messages_to("me@example.net")
    assert test["Subject"] == f"[Test] Doors open, {second.name}"
    assert sent["Subject"] == f"Doors open, {first.name}"
    for header in SAME:
        assert test[header] == sent[header] or header == "Content-Type", header
    # The same structure; only the MIME boundary differs (each batch draws its own).
    assert test.get_content_type() == sent.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in test.iter_parts()] == [
        p.get_content_type() for p in sent.iter_parts()
    ]
    assert "Doors open" in test.get_body(("html",)).get_content()
    assert test["To"] == "me@example.net"
    assert MESSAGE_ID.fullmatch(sent["Message-ID"]) and MESSAGE_ID.fullmatch(test["Message-ID"])
    assert sent["Message-ID"].startswith("<delivery-") and test["Message-ID"].startswith("<test-")
    [other] = smtp_server.messages_to("co-host@example.net")
    assert other["Message-ID"] != test["Message-ID"]  # a client must not merge two tests
    assert test["List-Unsubscribe-Post"] == sent["List-Unsubscribe-Post"]
    assert test["List-Unsubscribe"] == "<http://dashboard.test/u/preview>"
    assert sent["List-Unsubscribe"] == f"<http://dashboard.test/u/{first.token}>"
    text = test.get_body(("plain",)).get_content()
    assert f"Dear {second.name}, grüße!" in text
    assert "/r/preview" in text and second.token not in text  # links inert, like the preview's
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == deliveries
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == ACTION))
    assert entry.actor == "owner@example.com (token tests)" and entry.message_id is None
    assert entry.details["to"] == ["me@example.net", "co-host@example.net"]
    assert [r["accepted"] for r in entry.details["results"]] == [True, True]
    assert real.id  # the real send stays what it was


def test_a_saved_draft_goes_to_me_by_default_and_shows_a_refusal_in_the_servers_words(
    client, event, owner, bearer, make_guests, make_message, smtp_server
):
    make_guests(event, 1)
    draft = make_message(event, status=MessageStatus.DRAFT, subject="Agenda")
    smtp_server.handler.rules = {"nobody@": "550 5.1.1 No such user here"}
    headers = bearer(owner)

    mine = client.post(url(event, f"/{draft.id}/test-send"), json={}, headers=headers)
    assert mine.json["results"] == [{"to": "owner@example.com", "accepted": True, "error": None}]
    [test] = smtp_server.messages_to("owner@example.com")
    assert test["Subject"] == "[Test] Agenda"
    assert re.fullmatch(
        rf"<test-[0-9a-f]+\.message-{draft.id}@dashboard\.test>", test["Message-ID"]
    )

    refused = client.post(
        url(event, f"/{draft.id}/test-send"), json={"to": ["nobody@example.net"]}, headers=headers
    )
    assert refused.status_code == 200
    assert refused.json["results"] == [
        {"to": "nobody@example.net", "accepted": False, "error": "550 5.1.1 No such user here"}
    ]


def test_bad_input_is_a_400_with_the_field(client, event, owner, bearer, make_event, make_guests):
    [stranger_guest] = make_guests(make_event(name="Other"), 1)
    headers = bearer(owner)
    base = {"subject": "Hi", "body": "There"}
    cases = [
        ({"to": [f"p{i}@example.net" for i in range(6)]}, "to"),
        ({"to": ["not an address"]}, "to"),
        ({"to": []}, "to"),
        ({"guest_id": stranger_guest.id}, "guest_id"),
        ({"subject": "Hi {{nope}}"}, "subject"),
    ]
    for extra, field in cases:
        answer = client.post(url(event, "/test-send"), json={**base, **extra}, headers=headers)
        assert answer.status_code == 400, extra
        assert field in answer.json["fields"], answer.json
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == ACTION)) == 0


def test_only_messages_that_have_not_gone_out_can_be_tested(
    client, event, owner, bearer, make_message, make_guests
):
    make_guests(event, 1)
    sent = make_message(event, status=MessageStatus.SENT)
    answer = client.post(url(event, f"/{sent.id}/test-send"), json={}, headers=bearer(owner))
    assert answer.status_code == 409
    assert "Duplicate it to try a change" in answer.json["error"]


def test_twenty_an_hour_then_a_clear_429(client, event, owner, bearer, make_guests, now):
    make_guests(event, 1)
    for minutes in range(PER_HOUR):  # the last hour's tests, the oldest 59 minutes ago
        record(db.session, Actor("x", owner.id), ACTION, now=now - timedelta(minutes=59 - minutes))
    record(db.session, Actor("x", owner.id), ACTION, now=now - timedelta(minutes=61))
    db.session.commit()
    body = {"subject": "Hi", "body": "There", "to": ["me@example.net"]}

    refused = client.post(url(event, "/test-send"), json=body, headers=bearer(owner))

    assert refused.status_code == 429
    assert refused.json["error"] == (
        "You have sent 20 test e-mails in the last hour; the limit is 20 an hour. "
        "Try again in a minute."
    )
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEntry.action == ACTION)) == 21


def test_the_limit_is_per_user(
    client, event, owner, make_user, add_collaborator, bearer, make_guests, now
):
    make_guests(event, 1)
    editor = make_user("second@example.com")
    add_collaborator(event, editor, Role.EDITOR)
    for _ in range(PER_HOUR):
        record(db.session, Actor("x", owner.id), ACTION, now=now)
    db.session.commit()
    answer = client.post(
        url(event, "/test-send"), json={"subject": "Hi", "body": "There"}, headers=bearer(editor)
    )
    assert answer.status_code == 200
    assert answer.json["results"][0]["to"] == "second@example.com"
