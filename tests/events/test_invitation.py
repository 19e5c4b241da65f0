"""An event as its e-mails present it: its end, who the mail comes from and where replies
go, the calendar sequence; and the guest's side: an answer pre-selected by an e-mail
button (confirmed only by a POST) and the event as a calendar file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import sqlalchemy as sa

from dashboard.audit.services import SCHEDULER
from dashboard.events.models import Event, RsvpStatus
from dashboard.events.services import update_event
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind

START = datetime(2031, 7, 15, 16, 0, tzinfo=UTC)  # 18:00 in Berlin


def form(**values: str) -> dict[str, str]:
    return {
        "name": "Board dinner",
        "starts_at": "2031-07-15T18:00",
        "timezone": "Europe/Berlin",
        "venue": "Rooftop",
    } | values


def checked(page: str, name: str) -> list[str]:
    """The values of the checked inputs called ``name``."""
    inputs = re.findall(rf'<input[^>]*name="{name}"[^>]*>', page)
    return [re.search(r'value="([^"]*)"', i).group(1) for i in inputs if " checked" in i]


def only_event() -> Event:
    return db.session.scalars(sa.select(Event)).one()


# --- the event form ------------------------------------------------------------------------


def test_a_new_event_ends_two_hours_after_it_starts_unless_told(client, auth, owner):
    auth.login()
    client.post("/events/new", data=form())
    assert only_event().ends_at == START + timedelta(hours=2)
    db.session.delete(only_event())
    db.session.commit()
    client.post(
        "/events/new",
        data=form(ends_at="2031-07-16T01:30", sender_name=" Anna's\n Wedding ", reply_to="a@b.de"),
    )
    event = only_event()
    assert event.ends_at == datetime(2031, 7, 15, 23, 30, tzinfo=UTC)
    assert (event.sender_name, event.reply_to) == ("Anna's Wedding", "a@b.de")
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "Wed 16 Jul 2031, 01:30 CEST" in page
    assert "Anna&#39;s Wedding" in page and "replies to a@b.de" in page


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"ends_at": "2031-07-15T17:00"}, "ends_at", "must end after it starts"),
        ({"ends_at": "2031-09-15T17:00"}, "ends_at", "at most 31 days"),
        ({"reply_to": "not an address"}, "reply_to", "is not a valid e-mail address"),
        ({"reply_to": "a@b.de\r\nBcc: x@y.z"}, "reply_to", "is not a valid e-mail address"),
        ({"sender_name": "x" * 101}, "sender_name", "100 characters"),
    ],
)
def test_bad_end_or_sender_is_a_form_error(client, auth, owner, values, field, text):
    auth.login()
    response = client.post("/events/new", data=form(**values))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and text in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0


def test_edit_keeps_the_length_when_only_the_start_moves(client, auth, make_event):
    event = make_event(starts_at=START, timezone="Europe/Berlin")
    event.ends_at = START + timedelta(hours=5)
    db.session.commit()
    auth.login()
    page = client.get(f"/events/{event.id}/edit").get_data(as_text=True)
    assert 'value="2031-07-15T23:00"' in page  # the end, in the event's zone
    client.post(
        f"/events/{event.id}/edit",
        data=form(starts_at="2031-07-16T18:00", ends_at="2031-07-15T23:00"),
    )
    db.session.expire_all()
    assert event.starts_at == START + timedelta(days=1)
    assert event.ends_at == START + timedelta(days=1, hours=5)
    assert event.calendar_sequence == 1


def test_the_calendar_sequence_counts_moves_of_start_or_end_only(app, make_event, now):
    event = make_event(starts_at=START)
    assert event.calendar_sequence == 0
    update_event(
        db.session,
        event,
        now=now,
        actor=SCHEDULER,
        name="Renamed",
        venue="Elsewhere",
        sender_name="X",
    )
    assert event.calendar_sequence == 0
    update_event(db.session, event, now=now, actor=SCHEDULER, ends_at=START + timedelta(hours=3))
    assert event.calendar_sequence == 1
    update_event(db.session, event, now=now, actor=SCHEDULER, starts_at=START + timedelta(hours=1))
    assert event.calendar_sequence == 2
    assert event.ends_at == START + timedelta(hours=4)  # kept its length
    update_event(
        db.session, event, now=now, actor=SCHEDULER, timezone="America/New_York"
    )  # same wall clock
    assert event.calendar_sequence == 3


# --- the guest's side -------------------------------------------------------------------------


@pytest.fixture
def guest(make_event, make_guests):
    event = make_event("Summer Gala", starts_at=START, timezone="Europe/Berlin", venue="Hall")
    return make_guests(event, 1)[0]


@pytest.mark.parametrize("answer", ["attending", "declined"])
def test_an_email_button_preselects_the_answer_and_only_the_post_saves_it(client, guest, answer):
    page = client.get(f"/r/{guest.token}?answer={answer}").get_data(as_text=True)
    assert checked(page, "rsvp_status") == [answer]
    assert "press <strong>Send my answer</strong> to confirm" in page
    db.session.expire_all()
    assert guest.rsvp_status is RsvpStatus.PENDING  # a GET (or a link scanner) changes nothing
    client.post(f"/r/{guest.token}", data={"rsvp_status": answer})
    db.session.expire_all()
    assert guest.rsvp_status is RsvpStatus(answer)


@pytest.mark.parametrize("answer", ["pending", "<b>", ""])
def test_an_unknown_preselected_answer_is_ignored(client, guest, answer):
    response = client.get(f"/r/{guest.token}", query_string={"answer": answer})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "to confirm" not in page and "&lt;b&gt;" not in page
    assert checked(page, "rsvp_status") == []  # still pending: nothing chosen


def test_the_event_as_the_guests_calendar_file(client, guest):
    response = client.get(f"/r/{guest.token}/event.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"] == 'attachment; filename="summer-gala.ics"'
    assert response.headers["Cache-Control"] == "no-store"
    calendar = icalendar.Calendar.from_ical(response.data)
    [entry] = calendar.walk("VEVENT")
    assert calendar["METHOD"] == "PUBLISH"
    assert str(entry["UID"]) == f"event-{guest.event_id}@dashboard.test"
    assert entry.decoded("DTSTART") == START
    assert entry.decoded("DTEND") == START + timedelta(hours=2)
    assert str(entry["URL"]) == f"http://dashboard.test/r/{guest.token}"
    assert str(entry["LOCATION"]) == "Hall"
    assert client.get("/r/not-a-token/event.ics").status_code == 404


# --- which messages attach the invitation --------------------------------------------------


def test_reminders_attach_the_invitation_and_custom_messages_do_not(client, auth, event, owner):
    reminders = db.session.scalars(
        sa.select(Message).where(Message.event_id == event.id, Message.kind != MessageKind.CUSTOM)
    ).all()
    assert len(reminders) == 4 and all(m.attach_calendar for m in reminders)
    auth.login(owner)
    base = f"/events/{event.id}/communications"
    fields = {"audience": "everyone", "channel": "email", "subject": "Hi", "body": "Hello"}
    client.post(base, data={**fields, "mode": "draft"})
    client.post(base, data={**fields, "mode": "draft", "attach_calendar": "y"})
    custom = db.session.scalars(
        sa.select(Message)
        .where(Message.event_id == event.id, Message.kind == MessageKind.CUSTOM)
        .order_by(Message.id)
    ).all()
    assert [m.attach_calendar for m in custom] == [False, True]
    edit = client.get(f"{base}/{custom[1].id}/edit").get_data(as_text=True)
    assert checked(edit, "attach_calendar") == ["y"]
    client.post(f"{base}/{custom[1].id}/edit", data={**fields, "mode": "draft"})
    db.session.expire_all()
    assert custom[1].attach_calendar is False
