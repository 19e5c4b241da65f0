"""Auto-reminders around the boundaries, and moving them with the event."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.events.services import update_event
from dashboard.extensions import db
from dashboard.messages import services as svc
from dashboard.messages.models import Message, MessageKind, MessageStatus
from tests.messages.conftest import reminder_kinds

ACTOR = Actor("tests")

ALL_FOUR = [
    MessageKind.REMINDER_7D,
    MessageKind.REMINDER_3D,
    MessageKind.REMINDER_1D,
    MessageKind.REMINDER_DAY_OF,
]


def _local_evening(now: datetime, days: int, zone) -> datetime:
    day = now.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(day, time(18, 0), tzinfo=zone).astimezone(UTC)


def _reminders(event) -> list[Message]:
    return list(
        db.session.scalars(
            sa.select(Message)
            .where(Message.event_id == event.id, Message.kind != MessageKind.CUSTOM)
            .order_by(Message.send_at)
        )
    )


def test_event_in_two_days_gets_the_one_day_and_day_of_reminders(make_event, now):
    event = make_event(starts_at=now + timedelta(days=2))
    assert reminder_kinds(event) == [MessageKind.REMINDER_1D, MessageKind.REMINDER_DAY_OF]
    assert all(m.status is MessageStatus.SCHEDULED and m.send_at > now for m in _reminders(event))


def test_event_in_two_days_in_the_evening_also_gets_two(make_event, now):
    from zoneinfo import ZoneInfo

    event = make_event(starts_at=_local_evening(now, 2, ZoneInfo("Europe/Berlin")))
    assert reminder_kinds(event) == [MessageKind.REMINDER_1D, MessageKind.REMINDER_DAY_OF]


def test_event_in_the_past_gets_none(make_event, now):
    assert reminder_kinds(make_event(starts_at=now - timedelta(days=1))) == []
    assert reminder_kinds(make_event("Just started", starts_at=now - timedelta(minutes=5))) == []


def test_event_in_thirty_days_gets_four_at_nine_local(make_event, now):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    event = make_event(starts_at=_local_evening(now, 30, zone), timezone="America/New_York")
    reminders = _reminders(event)
    assert [m.kind for m in reminders] == ALL_FOUR
    start_day = event.starts_at.astimezone(zone).date()
    for message, days in zip(reminders, (7, 3, 1, 0), strict=True):
        local = message.send_at.astimezone(zone)
        assert (local.date(), local.time()) == (start_day - timedelta(days=days), time(9, 0))
        assert message.status is MessageStatus.SCHEDULED
        assert message.audience.value in ("attending", "pending")
    assert [m.label for m in reminders] == [
        "7-day reminder",
        "3-day last call",
        "1-day reminder",
        "Day-of reminder",
    ]


def test_early_morning_event_gets_the_day_of_reminder_two_hours_before(make_event, now):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Berlin")
    day = now.astimezone(zone).date() + timedelta(days=10)
    start = datetime.combine(day, time(8, 0), tzinfo=zone).astimezone(UTC)
    event = make_event(starts_at=start)
    day_of = next(m for m in _reminders(event) if m.kind is MessageKind.REMINDER_DAY_OF)
    assert day_of.send_at == start - timedelta(hours=2)


def test_moving_the_event_moves_scheduled_reminders_and_leaves_cancelled_ones(make_event, now):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Berlin")
    event = make_event(starts_at=_local_evening(now, 30, zone))
    by_kind = {m.kind: m for m in _reminders(event)}
    cancelled = by_kind[MessageKind.REMINDER_3D]
    svc.cancel_message(db.session, cancelled, now=now, actor=ACTOR)
    db.session.commit()
    cancelled_at = cancelled.send_at

    update_event(db.session, event, now=now, actor=ACTOR, starts_at=_local_evening(now, 40, zone))
    db.session.commit()

    new_day = event.starts_at.astimezone(zone).date()
    for kind, days in (
        (MessageKind.REMINDER_7D, 7),
        (MessageKind.REMINDER_1D, 1),
        (MessageKind.REMINDER_DAY_OF, 0),
    ):
        message = db.session.get(Message, by_kind[kind].id)
        local = message.send_at.astimezone(zone)
        assert message.status is MessageStatus.SCHEDULED
        assert (local.date(), local.time()) == (new_day - timedelta(days=days), time(9, 0))
    still = db.session.get(Message, cancelled.id)
    assert (still.status, still.send_at) == (MessageStatus.CANCELLED, cancelled_at)
    assert len(_reminders(event)) == 4  # no duplicate 3-day reminder appears


def test_moving_the_event_closer_cancels_reminders_that_would_be_past(make_event, now):
    event = make_event(starts_at=now + timedelta(days=30))
    update_event(db.session, event, now=now, actor=ACTOR, starts_at=now + timedelta(days=2))
    db.session.commit()
    statuses = {m.kind: m.status for m in _reminders(event)}
    assert statuses[MessageKind.REMINDER_7D] is MessageStatus.CANCELLED
    assert statuses[MessageKind.REMINDER_3D] is MessageStatus.CANCELLED
    assert statuses[MessageKind.REMINDER_1D] is MessageStatus.SCHEDULED
    assert statuses[MessageKind.REMINDER_DAY_OF] is MessageStatus.SCHEDULED


def test_reminder_texts_are_editable_like_any_message(event, now):
    reminder = next(m for m in _reminders(event) if m.kind is MessageKind.REMINDER_1D)
    svc.update_message(
        db.session,
        reminder,
        now=now,
        actor=ACTOR,
        subject="Tomorrow! {{event_name}}",
        body="Bring an umbrella.",
    )
    db.session.commit()
    stored = db.session.get(Message, reminder.id)
    assert (stored.kind, stored.subject, stored.status) == (
        MessageKind.REMINDER_1D,
        "Tomorrow! {{event_name}}",
        MessageStatus.SCHEDULED,
    )
