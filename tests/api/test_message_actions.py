"""A host in control of a send over JSON: pause, resume, stop, duplicate; roles and refusals.

Every answer is checked against /api/openapi.json (tests/api/openapi_check.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.dispatch.models import BatchStatus, BatchTrigger
from dashboard.events.models import EventStatus
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind, MessageStatus
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)
from tests.helpers import batches_of


def api(event, tail: str = "") -> str:
    return f"/api/events/{event.id}/messages{tail}"


def adds_up(counts: dict[str, int]) -> bool:
    parts = ("sent", "failed", "skipped", "cancelled") + (
        ("pending",) if "pending" in counts else ()
    )
    return sum(counts[part] for part in parts) == counts["total"]


def test_hold_pause_resume_stop_over_the_api(client, event, owner, bearer, make_guests, dispatcher):
    make_guests(event, 8)
    headers = bearer(owner)
    me = "owner@example.com (token tests)"
    created = client.post(
        api(event),
        json={
            "audience": "everyone",
            "subject": "Hi {{guest_name}}",
            "body": "Doors at 7.",
            "mode": "send_now",
            "hold_after": 3,
        },
        headers=headers,
    )
    assert created.status_code == 201 and created.json["hold_after"] == 3
    one = api(event, f"/{created.json['id']}")
    dispatcher.poll()  # sends three, then holds

    held = client.get(one, headers=headers).json
    assert held["status"] == "paused" and held["paused_by"] == "scheduler"
    assert held["status_reason"] == "3 of 8 sent. Check how it arrived, then resume."
    assert held["counts"] == {
        "total": 8,
        "sent": 3,
        "failed": 0,
        "skipped": 0,
        "pending": 5,
        "cancelled": 0,
    }

    again = client.post(f"{one}/pause", headers=headers)
    assert again.status_code == 409 and again.json["current_status"] == "paused"
    assert again.json["error"] == (
        "This message is paused: there is nothing to pause. "
        "Only a message that is being sent can be paused."
    )

    resumed = client.post(f"{one}/resume", headers=headers)
    assert resumed.status_code == 202 and resumed.json["status"] == "sending"
    assert "paused_by" not in resumed.json and resumed.json["status_reason"] is None

    paused = client.post(f"{one}/pause", headers=headers)
    assert paused.status_code == 200
    assert (paused.json["status"], paused.json["paused_by"]) == ("paused", me)
    assert paused.json["paused_at"].endswith("+01:00") or paused.json["paused_at"].endswith(
        "+02:00"
    )  # the event's zone (Berlin)

    stopped = client.post(f"{one}/stop", headers=headers)
    assert stopped.status_code == 200 and stopped.json["status"] == "stopped"
    assert stopped.json["status_reason"] == f"Stopped by {me}"
    counts = stopped.json["counts"]
    assert (counts["sent"], counts["cancelled"], counts["pending"]) == (3, 5, 0)
    assert adds_up(counts)

    batches = client.get(f"{one}/batches", headers=headers).json["items"]
    assert [(b["trigger"], b["status"]) for b in batches] == [
        ("stop", "stopped"),
        ("resume", "paused"),  # queued when the host paused again: ended before it started
        ("send_now", "paused"),
    ]
    assert all(adds_up(b["counts"]) for b in batches)
    entries = client.get(
        f"/api/batches/{batches[0]['id']}/entries?status=cancelled", headers=headers
    ).json
    assert entries["total"] == 5
    assert {e["reason"] for e in entries["items"]} == {f"stopped by {me}"}

    final = client.post(f"{one}/resume", headers=headers)
    assert final.status_code == 409 and final.json["current_status"] == "stopped"
    audit = client.get(f"/api/events/{event.id}/audit", headers=headers).json["items"]
    actions = [(a["action"], a["actor"]) for a in audit if a["message_id"] == created.json["id"]]
    assert [pair for pair in actions if pair[0].startswith("message.")][:4] == [
        ("message.stop", me),
        ("message.pause", me),
        ("message.resume", me),
        ("message.pause", "scheduler"),
    ]


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("stranger", 404)])
def test_controls_need_an_editor_and_an_event_you_can_see(
    who, status, request, client, event, bearer, make_message
):
    message = make_message(event, status=MessageStatus.SENDING)
    headers = bearer(request.getfixturevalue(who))
    for action in ("pause", "resume", "stop", "duplicate", "test-send"):
        answer = client.post(api(event, f"/{message.id}/{action}"), json={}, headers=headers)
        assert answer.status_code == status, action
    db.session.refresh(message)
    assert message.status is MessageStatus.SENDING


def test_resume_is_refused_while_the_pause_is_being_recorded(
    client, event, owner, bearer, make_message, make_batch
):
    message = make_message(event, status=MessageStatus.SENDING)
    batch = make_batch(message, worker="elsewhere")  # its owner is still sending a chunk
    headers = bearer(owner)
    assert client.post(api(event, f"/{message.id}/pause"), headers=headers).status_code == 200
    db.session.refresh(batch)
    assert batch.status is BatchStatus.RUNNING and batch.sealed_at is not None
    refused = client.post(api(event, f"/{message.id}/resume"), headers=headers)
    assert refused.status_code == 409
    assert refused.json["error"].startswith("The send is still pausing")


def test_duplicate_makes_a_new_draft_of_any_message(
    client, event, owner, bearer, make_message, now
):
    headers = bearer(owner)
    reminder = db.session.scalar(
        sa.select(Message).where(
            Message.event_id == event.id, Message.kind == MessageKind.REMINDER_1D
        )
    )
    reminder.hold_after = 25
    reminder.status = MessageStatus.STOPPED
    db.session.commit()

    answer = client.post(api(event, f"/{reminder.id}/duplicate"), headers=headers)

    assert answer.status_code == 201
    copy = answer.json
    assert answer.headers["Location"].endswith(api(event, f"/{copy['id']}"))
    assert (copy["status"], copy["kind"], copy["send_at"], copy["hold_after"]) == (
        "draft",
        "custom",
        None,
        25,
    )
    assert (copy["subject"], copy["body"], copy["audience"]) == (
        reminder.subject,
        reminder.body,
        reminder.audience.value,
    )
    entry = db.session.scalar(
        sa.select(AuditEntry).where(
            AuditEntry.message_id == copy["id"], AuditEntry.action == "message.duplicate"
        )
    )
    assert entry.details["from_message_id"] == reminder.id
    db.session.refresh(reminder)
    assert reminder.status is MessageStatus.STOPPED  # the original is untouched

    event.status = EventStatus.ARCHIVED
    db.session.commit()
    refused = client.post(api(event, f"/{reminder.id}/duplicate"), headers=headers)
    assert refused.status_code == 409


def test_a_stopped_message_is_final_and_says_so(client, event, owner, bearer, make_message):
    message = make_message(event, status=MessageStatus.SENT)
    answer = client.post(api(event, f"/{message.id}/stop"), headers=bearer(owner))
    assert answer.status_code == 409
    assert answer.json["error"] == (
        "This message is sent: there is nothing to stop. "
        "Only a message that is being sent or is paused can be stopped."
    )
    assert batches_of(message) == []
    assert BatchTrigger.STOP.label == "Stop"
