"""Overdue messages wait for a host: first on the Scheduled tab with their reason, then sent
now, given a new time (scheduled again) or cancelled; a reminder of an event that has
started can only be cancelled."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from dashboard.admin.stats import StatsSettings, collect_stats
from dashboard.dispatch.models import Batch
from dashboard.extensions import db
from dashboard.messages import lists
from dashboard.messages.models import Message, MessageKind, MessageStatus
from tests.helpers import HX

REASON = "due Sat 28 Nov 09:00, found 3 days late"


def _overdue(make_message, event, **fields) -> Message:
    message = make_message(event, status=MessageStatus.OVERDUE, **fields)
    message.status_reason = REASON
    db.session.commit()
    return message


def _reminder_of(event, kind: MessageKind) -> Message:
    return db.session.scalar(
        sa.select(Message).where(Message.event_id == event.id, Message.kind == kind)
    )


def test_overdue_messages_come_first_with_their_reason_and_actions(
    client, auth, event, owner, make_message
):
    overdue = _overdue(make_message, event, subject="Parking tonight")
    make_message(event, status=MessageStatus.DRAFT, subject="Newest draft")
    auth.login(owner)
    html = client.get(f"/events/{event.id}/communications", headers=HX).get_data(as_text=True)
    rows = html.split('<tr id="message-')[1:]
    assert rows[0].startswith(f'{overdue.id}" class="overdue"')
    assert REASON in rows[0] and "Overdue" in rows[0]
    for action in ("send-now", "cancel", "edit"):
        assert f"/communications/{overdue.id}/{action}" in rows[0]


def test_editing_an_overdue_message_to_a_future_time_schedules_it_again(
    client, auth, event, owner, make_message, make_guests, now
):
    make_guests(event, 1)
    overdue = _overdue(make_message, event)
    auth.login(owner)
    text_only = client.patch(
        f"/api/events/{event.id}/messages/{overdue.id}", json={"subject": "Still late"}
    ).get_json()
    assert (text_only["status"], text_only["status_reason"]) == ("overdue", REASON)

    when = (now + timedelta(days=2)).isoformat()
    moved = client.patch(
        f"/api/events/{event.id}/messages/{overdue.id}", json={"send_at": when}
    ).get_json()
    assert (moved["status"], moved["status_reason"]) == ("scheduled", None)

    edit_page = _overdue(make_message, event)
    page = client.get(f"/events/{event.id}/communications/{edit_page.id}/edit")
    assert REASON in page.get_data(as_text=True)
    local = (now + timedelta(days=1)).astimezone(event.tz).strftime("%Y-%m-%dT%H:%M")
    saved = client.post(
        f"/events/{event.id}/communications/{edit_page.id}/edit",
        data={
            "audience": "everyone",
            "channel": "email",
            "subject": "Back on",
            "body": "Hi",
            "mode": "schedule",
            "send_at": local,
        },
    )
    assert saved.status_code == 303
    assert db.session.get(Message, edit_page.id).status is MessageStatus.SCHEDULED


def test_send_now_and_cancel_an_overdue_message(
    client, auth, event, owner, make_message, make_guests
):
    make_guests(event, 2)
    first, second = _overdue(make_message, event), _overdue(make_message, event)
    auth.login(owner)
    sent = client.post(f"/api/events/{event.id}/messages/{first.id}/send-now")
    assert sent.status_code == 202
    assert (sent.get_json()["status"], sent.get_json()["status_reason"]) == ("sending", None)
    cancelled = client.delete(f"/api/events/{event.id}/messages/{second.id}")
    assert cancelled.get_json()["status"] == "cancelled"


def test_a_reminder_of_an_event_that_started_can_only_be_cancelled(
    client, auth, make_event, owner, make_guests, now
):
    event = make_event(starts_at=now + timedelta(days=2))
    make_guests(event, 2, "attending")
    reminder = _reminder_of(event, MessageKind.REMINDER_1D)
    db.session.execute(  # the event started meanwhile (the time travels, the rows stay)
        sa.update(type(event))
        .where(type(event).id == event.id)
        .values(starts_at=now - timedelta(minutes=5))
    )
    db.session.execute(
        sa.update(Message)
        .where(Message.id == reminder.id)
        .values(status_reason=REASON, status=MessageStatus.OVERDUE)
    )
    db.session.commit()
    auth.login(owner)

    refused = client.post(f"/api/events/{event.id}/messages/{reminder.id}/send-now")
    assert refused.status_code == 409
    started = (now - timedelta(minutes=5)).astimezone(event.tz)
    assert refused.get_json()["error"] == (
        f"The event started {started:%a %d %b %Y, %H:%M}: its reminders can no longer be sent."
    )
    later = client.patch(
        f"/api/events/{event.id}/messages/{reminder.id}",
        json={"send_at": (now + timedelta(days=1)).isoformat()},
    )
    assert later.status_code == 409
    row = client.post(f"/events/{event.id}/communications/{reminder.id}/send-now", headers=HX)
    assert row.status_code == 409 and "its reminders can no longer be sent" in row.get_data(
        as_text=True
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0

    html = client.get(f"/events/{event.id}/communications", headers=HX).get_data(as_text=True)
    row_html = html.split(f'<tr id="message-{reminder.id}"')[1].split("</tr>")[0]
    assert f"/{reminder.id}/cancel" in row_html and f"/{reminder.id}/send-now" not in row_html
    assert client.delete(f"/api/events/{event.id}/messages/{reminder.id}").status_code == 200


def test_stats_count_overdue_messages(app, event, make_message, now):
    _overdue(make_message, event)
    stats = collect_stats(db.session, now, StatsSettings.from_config(app.config))
    assert stats["messages"]["overdue"] == 1
    assert lists.tab_counts(db.session, event.id)[lists.Tab.SCHEDULED] == 5  # 4 reminders + 1
