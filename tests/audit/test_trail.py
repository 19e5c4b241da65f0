"""Who did it: every change of a message, batch, event, guest list and collaborator list is
written to the audit log with its actor, in the change's own transaction; the message page
shows its timeline and GET /api/events/{id}/audit lists the entries."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.audit import present
from dashboard.audit.models import AuditEntry
from dashboard.events.models import Event
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind, MessageStatus
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)
from tests.events.conftest import hidden_value, upload_csv

TOKEN = "owner@example.com (token tests)"


def entries(**where) -> list[AuditEntry]:
    stmt = sa.select(AuditEntry).filter_by(**where).order_by(AuditEntry.id)
    return list(db.session.scalars(stmt))


def test_each_change_of_a_message_names_its_actor_and_what_changed(
    client, owner, bearer, event, make_guests, now
):
    make_guests(event, 2)
    headers = bearer(owner)
    base = f"/api/events/{event.id}/messages"
    created = client.post(
        base, json={"audience": "everyone", "subject": "First", "body": "Hi"}, headers=headers
    ).get_json()
    one = f"{base}/{created['id']}"
    assert client.patch(one, json={"subject": "Second"}, headers=headers).status_code == 200
    when = (now + timedelta(days=3)).replace(microsecond=0)
    later = when + timedelta(hours=2)
    client.patch(one, json={"mode": "schedule", "send_at": when.isoformat()}, headers=headers)
    client.patch(one, json={"send_at": later.isoformat()}, headers=headers)
    sent = client.post(f"{one}/send-now", headers=headers).get_json()
    other = client.post(
        base, json={"audience": "attending", "subject": "Other", "body": "Hi"}, headers=headers
    ).get_json()
    client.delete(f"{base}/{other['id']}", headers=headers)

    trail = entries(message_id=created["id"])
    assert [e.action for e in trail] == [
        "message.create",
        "message.edit",
        "message.schedule",
        "message.schedule",
        "message.send_now",
    ]
    assert {e.actor for e in trail} == {TOKEN} and {e.actor_user_id for e in trail} == {owner.id}
    assert {e.event_id for e in trail} == {event.id}
    create, edit, schedule, reschedule, send_now = (e.details for e in trail)
    assert (create["status"], create["subject"], create["send_at"]) == ("draft", "First", None)
    assert edit == {"changes": {"subject": {"old": "First", "new": "Second"}}}
    assert schedule["changes"] == {
        "status": {"old": "draft", "new": "scheduled"},
        "send_at": {"old": None, "new": when.isoformat()},
    }
    assert reschedule["changes"] == {"send_at": {"old": when.isoformat(), "new": later.isoformat()}}
    assert send_now == {"from": "scheduled", "planned_send_at": later.isoformat()}
    assert trail[-1].batch_id == sent["batch_id"]
    [cancel] = entries(message_id=other["id"], action="message.cancel")
    assert cancel.details == {"changes": {"status": {"old": "draft", "new": "cancelled"}}}


def test_a_refused_change_leaves_no_entry(client, owner, bearer, event, make_message):
    message = make_message(event, status=MessageStatus.SENT)
    headers = bearer(owner)
    one = f"/api/events/{event.id}/messages/{message.id}"
    assert client.patch(one, json={"subject": "Late"}, headers=headers).status_code == 409
    assert client.post(f"{one}/send-now", headers=headers).status_code == 409
    draft = make_message(event, status=MessageStatus.DRAFT)
    draft_url = f"/api/events/{event.id}/messages/{draft.id}"
    bad = client.patch(draft_url, json={"body": "{{x}}"}, headers=headers)
    assert bad.status_code == 400
    assert entries(message_id=message.id) == entries(message_id=draft.id) == []


def test_the_message_page_shows_its_timeline(client, auth, owner, event, make_guests, now):
    make_guests(event, 1)
    auth.login(owner)
    base = f"/events/{event.id}/communications"
    form = {"audience": "everyone", "channel": "email", "subject": "Hello", "body": "Hi"}
    assert client.post(base, data={**form, "mode": "draft"}).status_code == 303
    message = db.session.scalar(sa.select(Message).where(Message.subject == "Hello"))
    when = (now + timedelta(days=2)).astimezone(event.tz).strftime("%Y-%m-%dT%H:%M")
    edited = {**form, "subject": "Hello again", "mode": "schedule", "send_at": when}
    assert client.post(f"{base}/{message.id}/edit", data=edited).status_code == 303
    assert client.post(f"{base}/{message.id}/send-now").status_code == 303

    page = client.get(f"/events/{event.id}/messages/{message.id}").get_data(as_text=True)
    timeline = page[page.index('id="timeline"') :]
    labels = re.findall(r"<strong>([^<]+)</strong> by owner@example\.com", timeline)
    assert labels == ["Sent now", "Scheduled", "Created"]  # newest first
    assert "subject: Hello → Hello again" in timeline
    assert "was planned for" in timeline
    assert re.search(r"send time: none → \w{3} \d\d \w{3} \d{4}, \d\d:\d\d CET", timeline)
    assert "batch #" in timeline

    more = client.get(
        f"/events/{event.id}/messages/{message.id}/timeline?page=2", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "No recorded change yet." in more and "<html" not in more


def test_event_guest_list_and_collaborator_changes_are_in_the_event_log(
    client, auth, owner, make_user, make_guests, now
):
    auth.login(owner)
    starts = (now + timedelta(days=30)).strftime("%Y-%m-%dT19:00")
    form = {"name": "Gala", "starts_at": starts, "timezone": "Europe/Berlin", "venue": "Hall"}
    assert client.post("/events/new", data=form).status_code == 302
    event_id = db.session.scalar(sa.select(sa.func.max(AuditEntry.event_id)))
    client.post(f"/events/{event_id}/edit", data={**form, "venue": "Cellar"})
    moved = (now + timedelta(days=40)).strftime("%Y-%m-%dT19:00")
    client.post(f"/events/{event_id}/edit", data={**form, "venue": "Cellar", "starts_at": moved})

    guests = f"/events/{event_id}/guests"
    client.post(guests, data={"name": "Ada", "email": "ada@example.org", "rsvp_status": "pending"})
    ada = entries(action="guest.add")[0].guest_id
    client.post(
        f"{guests}/{ada}/edit",
        data={"name": "Ada L", "email": "ada@example.org", "rsvp_status": "attending"},
    )
    client.post(f"{guests}/{ada}/remove")
    client.post(f"{guests}/{ada}/restore")
    preview = upload_csv(client, db.session.get(Event, event_id), "name,email\nBo,bo@x.org\n")
    token = hidden_value(preview.get_data(as_text=True), "token")
    client.post(f"{guests}/import/confirm", data={"token": token})

    colleague = make_user("colleague@example.com")
    collaborators = f"/events/{event_id}/collaborators"
    client.post(collaborators, data={"email": colleague.email, "role": "viewer"})
    collaborator_id = db.session.scalar(
        sa.text("SELECT id FROM collaborators WHERE user_id = :u"), {"u": colleague.id}
    )
    client.post(f"{collaborators}/{collaborator_id}/role", data={"role": "editor"})
    client.post(f"{collaborators}/{collaborator_id}/remove")

    log = client.get(f"/api/events/{event_id}/audit?per_page=200").get_json()
    actions = [item["action"] for item in reversed(log["items"])]
    assert actions[:5] == ["event.create"] + ["message.create"] * 4  # with its reminders
    assert [a for a in actions if not a.startswith("message.")] == [
        "event.create",
        "event.edit",
        "event.move",
        "guest.add",
        "guest.edit",
        "guest.remove",
        "guest.restore",
        "guest.import",
        "collaborator.add",
        "collaborator.role",
        "collaborator.remove",
    ]
    assert {item["actor"] for item in log["items"]} == {owner.email}
    by_action = {item["action"]: item for item in log["items"]}
    assert by_action["event.edit"]["details"]["changes"] == {
        "venue": {"old": "Hall", "new": "Cellar"}
    }
    assert set(by_action["event.move"]["details"]["changes"]) == {"starts_at", "ends_at"}
    retimed = [i for i in log["items"] if i["action"] == "message.schedule"]
    assert len(retimed) == 4 and all(i["details"]["reason"] == "the event moved" for i in retimed)
    assert by_action["guest.edit"]["details"]["changes"] == {
        "name": {"old": "Ada", "new": "Ada L"},
        "rsvp_status": {"old": "pending", "new": "attending"},
    }
    assert by_action["guest.import"]["details"] == {
        "source": "csv",
        "created": 1,
        "restored": 0,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    assert by_action["collaborator.role"]["details"] == {
        "email": "colleague@example.com",
        "changes": {"role": {"old": "viewer", "new": "editor"}},
    }


def test_the_audit_api_pages_and_keeps_one_message(client, owner, bearer, event, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    owner_headers = bearer(owner)
    for subject in ("a", "b", "c"):
        client.patch(
            f"/api/events/{event.id}/messages/{message.id}",
            json={"subject": subject},
            headers=owner_headers,
        )
    page = client.get(
        f"/api/events/{event.id}/audit?message_id={message.id}&per_page=2", headers=owner_headers
    ).get_json()
    assert (page["total"], page["per_page"], len(page["items"])) == (3, 2, 2)
    assert [i["details"]["changes"]["subject"]["new"] for i in page["items"]] == ["c", "b"]
    everything = client.get(f"/api/events/{event.id}/audit", headers=owner_headers).get_json()
    assert everything["total"] == 3 + 5  # and the event's creation with its four reminders
    bad = client.get(f"/api/events/{event.id}/audit?message_id=x", headers=owner_headers)
    assert bad.status_code == 400 and "message_id" in bad.get_json()["fields"]


def test_a_viewer_reads_the_log(client, viewer, bearer, event):
    assert client.get(f"/api/events/{event.id}/audit", headers=bearer(viewer)).status_code == 200


def test_a_stranger_does_not_read_the_log(client, stranger, bearer, event):
    assert client.get(f"/api/events/{event.id}/audit", headers=bearer(stranger)).status_code == 404


def test_reminders_seeded_with_an_event_are_created_by_its_creator(owner, event):
    created = entries(event_id=event.id, action="message.create")
    kinds = {db.session.get(Message, e.message_id).kind for e in created}
    assert kinds == {
        MessageKind.REMINDER_7D,
        MessageKind.REMINDER_3D,
        MessageKind.REMINDER_1D,
        MessageKind.REMINDER_DAY_OF,
    }
    assert {e.actor for e in created} == {owner.email}


def test_entries_read_as_words():
    zone = ZoneInfo("Europe/Berlin")

    def words(action: str, **details) -> tuple[str, list[str]]:
        item = present.item(AuditEntry(action=action, details=details, actor="x", at=None), zone)
        return item.label, item.lines

    assert words("batch.start", trigger="retry") == ("Batch started", ["Automatic retry"])
    assert words("batch.retry_failed", failed=3) == (
        "Retry of the failed recipients queued",
        ["3 failed recipient(s)"],
    )
    assert words("message.edit", changes={"body": {"old": "a", "new": "b"}}) == (
        "Edited",
        ["text changed"],
    )
    assert words(
        "message.cancel",
        changes={"status": {"old": "scheduled", "new": "cancelled"}},
        reason="the event moved",
    ) == ("Cancelled", ["status: scheduled → cancelled", "because the event moved"])
    assert words("event.frobnicate") == ("Event frobnicate", [])  # an action without a label
    assert words("event.archive") == ("Event archived", [])
    assert present.value("2030-06-01T07:00:00+00:00", "send_at", zone) == (
        "Sat 01 Jun 2030, 09:00 CEST"
    )
