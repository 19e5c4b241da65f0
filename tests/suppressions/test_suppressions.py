"""The suppression list: filled by hard bounces (SMTP and Resend's webhook) and complaints,
honoured by the live count and by every later send, searched and lifted by an admin."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from svix.webhooks import Webhook

from dashboard.audit.models import AuditEntry
from dashboard.dispatch.models import DeliveryStatus, Outcome
from dashboard.events.models import RsvpStatus
from dashboard.extensions import db
from dashboard.messages.audience import count_recipients
from dashboard.messages.models import Audience, MessageStatus
from dashboard.suppressions.models import Suppression, SuppressionKind, WebhookReceipt
from dashboard.suppressions.services import Refusal, suppress
from tests.helpers import HX, batches_of, deliveries_of, entries_of, smtp_env

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
DECEMBER_2 = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def app_env(app_env, smtp_server):
    return {**app_env, **smtp_env(smtp_server), "RESEND_WEBHOOK_SECRET": SECRET}


@pytest.fixture
def admin(make_user, auth):
    user = make_user("admin@example.com", admin=True)
    auth.login(user)
    return user


def suppressed() -> dict[str, str]:
    db.session.expire_all()
    return dict(db.session.execute(sa.select(Suppression.email, Suppression.reason)).all())


# --- filled by refusals, honoured by counts and sends ----------------------------------------


def test_a_hard_bounce_suppresses_the_address_for_every_later_send(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    first_event = make_event()
    make_guests(first_event, 3)
    make_guests(first_event, 1, prefix="gone")
    smtp_server.handler.rules = {"gone": "550 5.1.1 mailbox unavailable"}
    make_message(first_event)
    dispatcher.poll()
    assert list(suppressed()) == ["gone3@example.org"]
    assert "hard bounce on" in suppressed()["gone3@example.org"]
    assert suppressed()["gone3@example.org"].endswith("550 5.1.1 mailbox unavailable")
    assert db.session.scalar(sa.select(Suppression.source)) == "smtp"

    # Another event with the same (differently written) address: left out of the count and
    # skipped with the reason, without asking the server.
    smtp_server.handler.rules = {}
    other = make_event(name="Winter Ball")
    make_guests(other, 2, RsvpStatus.ATTENDING)
    [again] = make_guests(other, 1, RsvpStatus.ATTENDING, prefix="gone")
    again.email, again.email_key = "Gone3@Example.org", "gone3@example.org"
    db.session.commit()
    count = count_recipients(db.session, other.id, Audience.ATTENDING)
    assert (count.in_audience, count.will_receive, count.suppressed) == (3, 2, 1)
    message = make_message(other)
    received_before = len(smtp_server.received)
    dispatcher.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    assert len(smtp_server.received) == received_before + 2
    [batch] = batches_of(message)
    [skip] = [e for e in entries_of(batch) if e.outcome is Outcome.SKIPPED]
    assert skip.reason.startswith("suppressed: hard bounce on ")
    assert skip.reason.endswith(", 550 5.1.1 mailbox unavailable")


def test_an_address_suppressed_after_the_rows_were_made_is_skipped_at_send_time(
    dispatcher, make_event, make_guests, make_message, smtp_server, now
):
    event = make_event()
    make_guests(event, 3)
    message = make_message(event)
    from dashboard.dispatch import recipients

    recipients.materialize(db.session, message, now)  # rows made earlier, e.g. a resumed batch
    suppress(
        db.session,
        [Refusal("guest1@example.org", SuppressionKind.COMPLAINT, "reported as spam", "test")],
        DECEMBER_2,
    )
    db.session.commit()
    dispatcher.poll()

    assert sorted(smtp_server.recipients()) == ["guest0@example.org", "guest2@example.org"]
    skipped = [d for d in deliveries_of(message) if d.status is DeliveryStatus.SKIPPED]
    assert [d.last_error for d in skipped] == [
        "suppressed: spam complaint on 2 Dec, reported as spam"
    ]


def test_the_live_count_says_how_many_are_suppressed(client, auth, owner, make_event, make_guests):
    event = make_event()
    make_guests(event, 2)
    make_guests(event, 1, prefix="gone")
    suppress(
        db.session,
        [Refusal("gone2@example.org", SuppressionKind.HARD_BOUNCE, "550 5.1.1", "smtp")],
        DECEMBER_2,
    )
    db.session.commit()
    auth.login(owner)
    html = client.get(
        f"/events/{event.id}/communications/recipient-count",
        query_string={"audience": "everyone"},
    ).get_data(as_text=True)
    assert "1 left out" in html and "1 suppressed (bounced or complained)" in html
    api = client.get(
        f"/api/events/{event.id}/messages/recipient-count", query_string={"audience": "everyone"}
    ).json
    assert (api["count"], api["left_out"], api["suppressed"]) == (2, 1, 1)


# --- Resend's webhook ------------------------------------------------------------------------


def signed(body: dict, *, msg_id: str = "msg_1", at: float | None = None, secret: str = SECRET):
    raw = json.dumps(body)
    stamp = datetime.fromtimestamp(at if at is not None else time.time(), tz=UTC)
    signature = Webhook(secret).sign(msg_id, stamp, raw)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(stamp.timestamp())),
        "svix-signature": signature,
        "Content-Type": "application/json",
    }
    return raw, headers


BOUNCE = {
    "type": "email.bounced",
    "created_at": "2026-12-02T09:30:00.000Z",
    "data": {
        "email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
        "from": "Events <events@example.org>",
        "to": ["Lost@Example.org"],
        "subject": "See you soon",
        "bounce": {
            "type": "Permanent",
            "subType": "General",
            "message": "The recipient's mail server permanently rejected the email.",
            "diagnosticCode": "smtp; 550 5.1.1 mailbox unavailable",
        },
    },
}


def test_a_hard_bounce_webhook_suppresses_and_a_replay_changes_nothing(client):
    raw, headers = signed(BOUNCE)
    first = client.post("/webhooks/resend", data=raw, headers=headers)
    assert first.status_code == 200 and first.json == {"outcome": "suppressed 1"}
    [(email, reason)] = suppressed().items()
    assert email == "Lost@Example.org" and reason.endswith(", 550 5.1.1 mailbox unavailable")
    row = db.session.scalar(sa.select(Suppression))
    assert (row.email_key, row.kind, row.source) == (
        "lost@example.org",
        SuppressionKind.HARD_BOUNCE,
        "resend webhook",
    )

    db.session.delete(row)  # lifted meanwhile: a replay of the same delivery must not re-add it
    db.session.commit()
    again = client.post("/webhooks/resend", data=raw, headers=headers)
    assert again.status_code == 200 and again.json == {"outcome": "already handled"}
    assert suppressed() == {}


def test_complaints_suppress_soft_bounces_and_unknown_types_are_ignored(client):
    complaint = {"type": "email.complained", "data": {"to": ["angry@example.org"]}}
    soft = {**BOUNCE, "data": {**BOUNCE["data"], "bounce": {"type": "Transient"}}}
    opened = {"type": "email.opened", "data": {"to": ["reader@example.org"]}}
    answers = [
        client.post("/webhooks/resend", data=raw, headers=headers)
        for raw, headers in (
            signed(complaint, msg_id="msg_c"),
            signed(soft, msg_id="msg_s"),
            signed(opened, msg_id="msg_o"),
        )
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json["outcome"] for a in answers] == [
        "suppressed 1",
        "ignored: not a hard bounce",
        "ignored",
    ]
    assert list(suppressed()) == ["angry@example.org"]
    assert "spam complaint on " in suppressed()["angry@example.org"]


@pytest.mark.parametrize(
    "tamper",
    ["body", "secret", "old", "no-signature", "garbage-signature"],
)
def test_a_bad_or_old_signature_is_401_and_changes_nothing(client, tamper):
    raw, headers = signed(BOUNCE)
    if tamper == "body":
        raw = raw.replace("Lost@", "Other@")
    elif tamper == "secret":
        other = "whsec_" + base64.b64encode(b"another secret, 32 bytes long!!!").decode()
        raw, headers = signed(BOUNCE, secret=other)
    elif tamper == "old":
        raw, headers = signed(BOUNCE, at=time.time() - 600)
    elif tamper == "no-signature":
        del headers["svix-signature"]
    else:
        headers["svix-signature"] = "not-a-signature"
    response = client.post("/webhooks/resend", data=raw, headers=headers)
    assert response.status_code == 401
    assert "signature" in response.json["error"]
    assert suppressed() == {}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookReceipt)) == 0


def test_without_a_secret_the_webhook_is_not_there(app, client):
    app.config["RESEND_WEBHOOK_SECRET"] = None
    raw, headers = signed(BOUNCE)
    assert client.post("/webhooks/resend", data=raw, headers=headers).status_code == 404
    assert suppressed() == {}


# --- the admin page ---------------------------------------------------------------------------


def test_admins_list_search_and_lift_suppressions(client, admin):
    suppress(
        db.session,
        [
            Refusal(f"user{i}@example.org", SuppressionKind.HARD_BOUNCE, "550 5.1.1", "smtp")
            for i in range(3)
        ]
        + [Refusal("angry@else.net", SuppressionKind.COMPLAINT, "reported as spam", "resend")],
        DECEMBER_2,
    )
    db.session.commit()

    page = client.get("/admin/suppressions").get_data(as_text=True)
    assert all(f"user{i}@example.org" in page for i in range(3)) and "angry@else.net" in page
    assert 'hx-confirm="Lift the suppression of angry@else.net?' in page
    found = client.get("/admin/suppressions", query_string={"q": "complaint"}, headers=HX)
    html = found.get_data(as_text=True)
    assert "angry@else.net" in html and "user0@" not in html and "<h1>" not in html
    none = client.get("/admin/suppressions", query_string={"q": "100%_"}).get_data(as_text=True)
    assert "No suppressed address matches" in none

    row = db.session.scalar(sa.select(Suppression).where(Suppression.email == "angry@else.net"))
    lifted = client.post(
        f"/admin/suppressions/{row.id}/lift", data={"back": "/admin/suppressions?q=angry"}
    )
    assert lifted.status_code == 303 and lifted.location == "/admin/suppressions?q=angry"
    assert "angry@else.net" not in suppressed()
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "suppression.lift"))
    assert entry.actor == "admin@example.com"
    assert entry.details["email"] == "angry@else.net" and entry.details["kind"] == "complaint"
    page = client.get("/admin/suppressions").get_data(as_text=True)
    assert "angry@else.net is no longer suppressed" in page
    assert client.post(f"/admin/suppressions/{row.id}/lift").status_code == 404  # lifted already


def test_the_suppression_page_is_for_admins_only(client, auth, owner):
    auth.login(owner)
    assert client.get("/admin/suppressions").status_code == 404
    assert client.post("/admin/suppressions/1/lift").status_code == 404


def test_an_empty_list_says_so(client, admin):
    page = client.get("/admin/suppressions").get_data(as_text=True)
    assert "No address is suppressed" in page
