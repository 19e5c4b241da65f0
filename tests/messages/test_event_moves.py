"""Moving an event: reminders keep their days before it and the host's time of day; the ones
the system cancelled because their time had passed come back; a host's cancel stays; a
move into the past needs a confirmation and cancels the unsent reminders."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor
from dashboard.errors import ValidationError
from dashboard.events.services import update_event
from dashboard.extensions import db
from dashboard.messages import services as svc
from dashboard.messages.models import Message, MessageKind, MessageStatus
from dashboard.messages.reminders import REASON_MOVED_PAST

HOST = Actor("owner@example.com")
BERLIN = ZoneInfo("Europe/Berlin")


def evening(now: datetime, days: int) -> datetime:
    day = now.astimezone(BERLIN).date() + timedelta(days=days)
    return datetime.combine(day, time(19, 0), tzinfo=BERLIN).astimezone(UTC)


def reminders(event) -> dict[MessageKind, Message]:
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(Message).where(Message.event_id == event.id, Message.kind != MessageKind.CUSTOM)
    )
    return {m.kind: m for m in rows}


def local(message: Message) -> tuple:
    moment = message.send_at.astimezone(BERLIN)
    return moment.date(), moment.time()


def test_a_hosts_time_of_day_and_day_offset_survive_a_move(make_event, now):
    event = make_event(starts_at=evening(now, 30))
    one_day = reminders(event)[MessageKind.REMINDER_1D]
    six_pm = datetime.combine(one_day.send_at.astimezone(BERLIN).date(), time(18, 0), BERLIN)
    svc.update_message(db.session, one_day, now=now, actor=HOST, send_at=six_pm)
    seven = reminders(event)[MessageKind.REMINDER_7D]  # the host makes it 6 days before
    svc.update_message(
        db.session, seven, now=now, actor=HOST, send_at=seven.send_at + timedelta(days=1)
    )
    db.session.commit()

    update_event(db.session, event, now=now, actor=HOST, starts_at=evening(now, 40))
    db.session.commit()
    start = evening(now, 40).astimezone(BERLIN).date()
    moved = reminders(event)
    assert local(moved[MessageKind.REMINDER_1D]) == (start - timedelta(days=1), time(18, 0))
    assert local(moved[MessageKind.REMINDER_7D]) == (start - timedelta(days=6), time(9, 0))
    assert local(moved[MessageKind.REMINDER_3D]) == (start - timedelta(days=3), time(9, 0))
    assert local(moved[MessageKind.REMINDER_DAY_OF]) == (start, time(9, 0))

    # A second move keeps them again (the offset is read from where they are now).
    update_event(db.session, event, now=now, actor=HOST, starts_at=evening(now, 35))
    db.session.commit()
    start = evening(now, 35).astimezone(BERLIN).date()
    assert local(reminders(event)[MessageKind.REMINDER_1D]) == (
        start - timedelta(days=1),
        time(18, 0),
    )


def test_reminders_the_system_cancelled_come_back_a_hosts_cancel_does_not(make_event, now):
    event = make_event(starts_at=evening(now, 30))
    host_cancelled = reminders(event)[MessageKind.REMINDER_3D]
    svc.cancel_message(db.session, host_cancelled, now=now, actor=HOST)
    db.session.commit()

    update_event(db.session, event, now=now, actor=HOST, starts_at=evening(now, 2))
    db.session.commit()
    closer = reminders(event)
    assert (
        closer[MessageKind.REMINDER_7D].status,
        closer[MessageKind.REMINDER_7D].status_reason,
    ) == (
        MessageStatus.CANCELLED,
        REASON_MOVED_PAST,
    )
    assert closer[MessageKind.REMINDER_1D].status is MessageStatus.SCHEDULED

    update_event(db.session, event, now=now, actor=HOST, starts_at=evening(now, 20))
    db.session.commit()
    back = reminders(event)
    seven = back[MessageKind.REMINDER_7D]
    assert (seven.status, seven.status_reason) == (MessageStatus.SCHEDULED, None)
    start = evening(now, 20).astimezone(BERLIN).date()
    assert local(seven) == (start - timedelta(days=7), time(9, 0))
    assert (back[MessageKind.REMINDER_3D].status, back[MessageKind.REMINDER_3D].status_reason) == (
        MessageStatus.CANCELLED,
        None,
    )
    assert len(back) == 4
    actions = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.message_id == seven.id)
    ).all()
    assert actions == ["message.create", "message.cancel", "message.restore"]


def test_moving_into_the_past_needs_a_confirmation_and_cancels_the_reminders(
    client, auth, make_event, owner, now
):
    event = make_event(starts_at=evening(now, 10))
    with pytest.raises(ValidationError) as caught:
        update_event(db.session, event, now=now, actor=HOST, starts_at=now - timedelta(days=1))
    assert "has already passed" in caught.value.errors["confirm_past"]
    db.session.rollback()

    auth.login(owner)
    past = (now - timedelta(days=1)).astimezone(BERLIN).replace(tzinfo=None, microsecond=0)
    refused = client.patch(f"/api/events/{event.id}", json={"starts_at": past.isoformat()})
    assert refused.status_code == 400
    assert "confirm_past" in refused.get_json()["fields"]
    assert {m.status for m in reminders(event).values()} == {MessageStatus.SCHEDULED}

    done = client.patch(
        f"/api/events/{event.id}", json={"starts_at": past.isoformat(), "confirm_past": True}
    )
    assert done.status_code == 200
    assert {(m.status, m.status_reason) for m in reminders(event).values()} == {
        (MessageStatus.CANCELLED, REASON_MOVED_PAST)
    }


def test_the_edit_page_asks_before_moving_into_the_past(client, auth, make_event, owner, now):
    event = make_event(starts_at=evening(now, 10))
    auth.login(owner)
    past = (now - timedelta(days=1)).astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")
    form = {"name": event.name, "starts_at": past, "timezone": "Europe/Berlin", "venue": "Hall"}
    asked = client.post(f"/events/{event.id}/edit", data=form)
    assert asked.status_code == 400
    html = asked.get_data(as_text=True)
    assert 'name="confirm_past"' in html and "has already passed" in html
    assert db.session.get(type(event), event.id).starts_at == evening(now, 10)

    moved = client.post(f"/events/{event.id}/edit", data={**form, "confirm_past": "y"})
    assert moved.status_code == 302
    assert {m.status for m in reminders(event).values()} == {MessageStatus.CANCELLED}


def test_an_unchanged_form_never_asks(client, auth, make_event, owner, now):
    event = make_event(starts_at=now - timedelta(days=3))  # already past: no move, no question
    auth.login(owner)
    wall = event.starts_at.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")
    form = {"name": "Renamed", "starts_at": wall, "timezone": "Europe/Berlin", "venue": ""}
    assert client.post(f"/events/{event.id}/edit", data=form).status_code == 302
