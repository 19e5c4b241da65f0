"""Never late: the poller holds back what it finds too late, and reminders of an event that
has started, instead of sending them (a real SMTP server would show any send)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor
from dashboard.config import ConfigError, load_config
from dashboard.dispatch import claim, staleness
from dashboard.dispatch.settings import DispatchSettings
from dashboard.events.models import EventStatus, RsvpStatus
from dashboard.events.services import create_event
from dashboard.extensions import db
from dashboard.messages import services as messages
from dashboard.messages.models import Message, MessageKind, MessageStatus

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def messages_of(event) -> list[Message]:
    return list(
        db.session.scalars(
            sa.select(Message).where(Message.event_id == event.id).order_by(Message.send_at)
        )
    )


def test_time_travel_three_days_past_the_event_sends_nothing(
    app, dispatcher, owner, make_guests, smtp_server
):
    """Frozen time: an event on Sat 28 Nov 19:00 with its four reminders and a custom
    message; the server is down until three days after the event; the first poll then
    sends nothing, and every message is overdue with its reason."""
    created = berlin(2026, 11, 10, 12, 0)
    event = create_event(
        db.session,
        Actor.of(owner),
        name="Winter Gala",
        starts_at=berlin(2026, 11, 28, 19, 0),
        timezone="Europe/Berlin",
        venue="Grand Hall",
        now=created,
    )
    db.session.commit()
    make_guests(event, 3, RsvpStatus.ATTENDING)
    make_guests(event, 2, RsvpStatus.PENDING, prefix="pen")
    custom = messages.create_message(
        db.session,
        event,
        Actor.of(owner),
        audience="everyone",
        subject="Parking",
        body="Park behind the hall, {{guest_name}}.",
        mode="schedule",
        send_at="2026-11-27T12:00",
        now=created,
    )
    db.session.commit()
    assert [m.status for m in messages_of(event)] == [MessageStatus.SCHEDULED] * 5

    dispatcher.clock = lambda: berlin(2026, 12, 1, 19, 0)
    report = dispatcher.poll()

    assert smtp_server.received == []
    assert (report.batches, report.held_back) == ([], 5)
    db.session.expire_all()
    reasons = {m.kind: (m.status, m.status_reason) for m in messages_of(event)}
    overdue = MessageStatus.OVERDUE
    started = ", after the event had started"
    assert reasons == {
        MessageKind.REMINDER_7D: (overdue, "due Sat 21 Nov 09:00, found 10 days late" + started),
        MessageKind.REMINDER_3D: (overdue, "due Wed 25 Nov 09:00, found 6 days late" + started),
        MessageKind.REMINDER_1D: (overdue, "due Fri 27 Nov 09:00, found 4 days late" + started),
        MessageKind.REMINDER_DAY_OF: (
            overdue,
            "due Sat 28 Nov 09:00, found 3 days late" + started,
        ),
        MessageKind.CUSTOM: (overdue, "due Fri 27 Nov 12:00, found 4 days late"),
    }
    audit = db.session.execute(
        sa.select(AuditEntry.actor, AuditEntry.action, AuditEntry.message_id).where(
            AuditEntry.actor == "scheduler"
        )
    ).all()
    assert sorted(audit, key=lambda row: row[2]) == sorted(
        [("scheduler", "message.overdue", m.id) for m in messages_of(event)],
        key=lambda row: row[2],
    )
    assert custom.id in {row[2] for row in audit}

    # A later poll finds nothing new; nothing was ever handed to the mail server.
    assert dispatcher.poll().held_back == 0
    assert smtp_server.received == []


def test_late_within_the_limit_is_sent_beyond_it_is_held_back(
    dispatcher, make_event, make_guests, make_message, now, smtp_server
):
    event = make_event()
    make_guests(event, 2)
    five_hours = make_message(event, send_at=now - timedelta(hours=5))
    dispatcher.poll()
    db.session.refresh(five_hours)
    assert five_hours.status is MessageStatus.SENT and len(smtp_server.received) == 2

    dispatcher.settings = dataclasses.replace(dispatcher.settings, stale_after_minutes=60)
    late = make_message(event, send_at=now - timedelta(hours=5))
    dispatcher.poll()
    db.session.refresh(late)
    assert late.status is MessageStatus.OVERDUE
    assert late.status_reason.endswith(", found 5 hours late")
    assert late.status_reason.startswith(f"due {late.send_at.astimezone(event.tz):%a %d %b %H:%M}")
    assert len(smtp_server.received) == 2


def test_a_reminder_is_never_sent_once_its_event_started(
    dispatcher, make_event, make_guests, now, smtp_server
):
    """Even a few minutes late: a day-of reminder found after the start stays unsent."""
    event = make_event(starts_at=now + timedelta(days=2))
    make_guests(event, 2, RsvpStatus.ATTENDING)
    dispatcher.clock = lambda: event.starts_at + timedelta(minutes=1)
    dispatcher.poll()
    assert smtp_server.received == []
    db.session.expire_all()
    statuses = {m.kind: m.status for m in messages_of(event)}
    assert statuses == {
        MessageKind.REMINDER_1D: MessageStatus.OVERDUE,
        MessageKind.REMINDER_DAY_OF: MessageStatus.OVERDUE,
    }


def test_messages_of_a_closed_event_are_cancelled_not_sent(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 2)
    message = make_message(event)
    # Written behind the services' back, as another process might: the poll still holds.
    db.session.execute(
        sa.update(type(event)).where(type(event).id == event.id).values(status=EventStatus.ARCHIVED)
    )
    db.session.commit()
    dispatcher.poll()
    db.session.refresh(message)
    assert (message.status, message.status_reason) == (MessageStatus.CANCELLED, "event archived")
    assert smtp_server.received == []


def test_the_claim_itself_refuses_a_stale_message(app, make_event, make_message, now):
    """Between the look and the claim a pass may take long: the claim repeats the rule."""
    message = make_message(make_event(), send_at=now - timedelta(hours=7))
    fresh = staleness.sendable(now, timedelta(hours=6))
    assert claim.claim_due(db.session, message.id, "w", now, also=fresh) is False
    assert claim.claim_due(db.session, message.id, "w", now) is True  # without the rule it would
    db.session.rollback()


def test_lateness_reads_in_whole_units():
    assert staleness.lateness(timedelta(days=3, hours=10)) == "3 days"
    assert staleness.lateness(timedelta(days=1)) == "1 day"
    assert staleness.lateness(timedelta(hours=7, minutes=59)) == "7 hours"
    assert staleness.lateness(timedelta(minutes=1)) == "1 minute"
    assert staleness.lateness(timedelta(seconds=5)) == "5 seconds"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("0", "DISPATCH_STALE_AFTER_MINUTES=0 must be at least 1"), ("soon", "is not a whole number")],
)
def test_the_limit_is_validated_at_start_up(tmp_path, raw, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config({"APP_ENV": "testing", "DISPATCH_STALE_AFTER_MINUTES": raw}, tmp_path)


def test_the_limit_defaults_to_six_hours(tmp_path):
    config = load_config({"APP_ENV": "testing"}, tmp_path)
    assert DispatchSettings.from_config(config).stale_after == timedelta(hours=6)
    config = load_config({"APP_ENV": "testing", "DISPATCH_STALE_AFTER_MINUTES": "90"}, tmp_path)
    assert DispatchSettings.from_config(config).stale_after == timedelta(minutes=90)


def test_run_due_says_what_it_held_back(runner, make_event, make_guests, make_message, now):
    event = make_event()
    make_guests(event, 1)
    make_message(event, send_at=now - timedelta(hours=7))
    result = runner.invoke(args=["dispatch", "run-due"])
    assert result.exit_code == 0, result.output
    assert "ran 0 batch(es); held back 1 message(s) found too late" in result.output


def test_fresh_messages_behind_a_page_of_stale_ones_still_go(
    dispatcher, make_event, make_guests, make_message, now, smtp_server
):
    """After a long outage the oldest (stale) messages fill the first pages of the look."""
    event = make_event()
    make_guests(event, 1)
    stale = [make_message(event, send_at=now - timedelta(days=2, minutes=i)) for i in range(5)]
    fresh = make_message(event, send_at=now - timedelta(minutes=1))
    report = dispatcher.poll(limit=2)
    assert report.held_back == 5 and len(report.batches) == 1
    db.session.refresh(fresh)
    assert fresh.status is MessageStatus.SENT and len(smtp_server.received) == 1
    assert {db.session.get(Message, m.id).status for m in stale} == {MessageStatus.OVERDUE}
