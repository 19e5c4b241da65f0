"""messages.services: validation, the status rules, and refusing edits the scheduler beat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.dispatch.models import Batch, BatchTrigger
from dashboard.errors import ValidationError
from dashboard.extensions import db
from dashboard.messages import lists
from dashboard.messages import services as svc
from dashboard.messages.models import IllegalTransition, Message, MessageKind, MessageStatus
from tests.helpers import set_status

ACTOR = Actor("tests")


@pytest.fixture
def event(event, make_guests):
    """The shared event with one guest: scheduling or sending for nobody is refused."""
    make_guests(event, 1)
    return event


def _create(event, owner, now, **overrides):
    fields = {
        "audience": "everyone",
        "channel": "email",
        "subject": "Hello {{guest_name}}",
        "body": "Body",
        "mode": "draft",
        "send_at": None,
    }
    fields.update(overrides)
    message = svc.create_message(db.session, event, Actor.of(owner), now=now, **fields)
    db.session.commit()
    return message


def test_create_draft_schedule_and_send_now(event, owner, now):
    draft = _create(event, owner, now)
    assert draft.status is MessageStatus.DRAFT and draft.kind is MessageKind.CUSTOM
    assert draft.created_by_id == owner.id

    later = now + timedelta(days=2)
    scheduled = _create(event, owner, now, mode="schedule", send_at=later)
    assert scheduled.status is MessageStatus.SCHEDULED and scheduled.send_at == later

    sent = _create(event, owner, now, mode="send_now")
    assert sent.status is MessageStatus.SENDING
    assert sent.send_at == now
    batch = db.session.scalar(sa.select(Batch).where(Batch.message_id == sent.id))
    assert batch is not None and batch.trigger is BatchTrigger.SEND_NOW
    assert batch.initiated_label == owner.email


def test_naive_send_at_is_read_in_the_event_zone(event, owner, now):
    local = (now + timedelta(days=3)).astimezone(event.tz).replace(tzinfo=None, second=0)
    message = _create(event, owner, now, mode="schedule", send_at=local.isoformat())
    assert message.send_at == local.replace(tzinfo=event.tz).astimezone(UTC)


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"audience": "vips"}, "audience", "everyone, attending"),
        ({"channel": "pigeon"}, "channel", "email"),
        ({"subject": "   "}, "subject", "required"),
        ({"subject": "x" * 301}, "subject", "at most 300"),
        ({"subject": "Hi\r\nBcc: all@example.com"}, "subject", "single line"),
        ({"subject": "Hi\nthere"}, "subject", "single line"),
        ({"subject": 42}, "subject", "text"),
        ({"body": ""}, "body", "required"),
        ({"body": "x" * (100 * 1024 + 1)}, "body", "at most 102,400"),
        ({"body": "Hi {{guest_nmae}}"}, "body", "{{guest_name}}, {{event_name}}"),
        ({"subject": "{{ first_name }}"}, "subject", "Unknown placeholder {{first_name}}"),
        ({"mode": "later"}, "mode", "draft, schedule, send_now"),
        ({"mode": "schedule"}, "send_at", "Choose the date"),
        ({"mode": "schedule", "send_at": "tomorrow"}, "send_at", "not a date"),
    ],
)
def test_create_refuses_bad_input(event, owner, now, overrides, field, text):
    with pytest.raises(ValidationError) as caught:
        _create(event, owner, now, **overrides)
    assert field in caught.value.errors
    assert text in caught.value.errors[field]


def test_scheduling_in_the_past_or_now_is_refused(event, owner, now):
    for when in (now - timedelta(minutes=1), now):
        with pytest.raises(ValidationError) as caught:
            _create(event, owner, now, mode="schedule", send_at=when)
        assert "already passed" in caught.value.errors["send_at"]
    db.session.rollback()
    assert _create(event, owner, now, mode="schedule", send_at=now + timedelta(seconds=1))


def test_every_bad_field_is_reported_at_once(event, owner, now):
    with pytest.raises(ValidationError) as caught:
        _create(event, owner, now, audience="x", subject="", body="", mode="schedule")
    assert set(caught.value.errors) == {"audience", "subject", "body", "send_at"}


def test_a_100_kb_body_and_non_ascii_are_kept(event, owner, now):
    body = "é" * (100 * 1024)
    message = _create(event, owner, now, subject="Grüße 🎉 «{{event_name}}» 日本", body=body)
    db.session.expire_all()
    stored = db.session.get(Message, message.id)
    assert stored.body == body
    assert stored.subject == "Grüße 🎉 «{{event_name}}» 日本"


def test_update_switches_between_draft_and_schedule(event, owner, now):
    message = _create(event, owner, now)
    later = now + timedelta(days=1)
    svc.update_message(
        db.session,
        message,
        now=now,
        actor=ACTOR,
        subject="New subject",
        mode="schedule",
        send_at=later,
    )
    db.session.commit()
    assert (message.status, message.subject, message.send_at) == (
        MessageStatus.SCHEDULED,
        "New subject",
        later,
    )

    # Changing only the text keeps the schedule, even without repeating the time.
    svc.update_message(db.session, message, now=now, actor=ACTOR, body="Changed")
    db.session.commit()
    assert message.status is MessageStatus.SCHEDULED and message.body == "Changed"

    svc.update_message(db.session, message, now=now, actor=ACTOR, mode="draft")
    db.session.commit()
    assert message.status is MessageStatus.DRAFT

    with pytest.raises(ValidationError):
        svc.schedule_message(
            db.session, message, send_at=now - timedelta(hours=1), now=now, actor=ACTOR
        )
    db.session.rollback()
    svc.schedule_message(db.session, message, send_at=later, now=now, actor=ACTOR)
    db.session.commit()
    assert message.status is MessageStatus.SCHEDULED


def test_update_validates_like_create(event, owner, now):
    message = _create(event, owner, now)
    with pytest.raises(ValidationError) as caught:
        svc.update_message(
            db.session, message, now=now, actor=ACTOR, subject="a\rb", body="{{nope}}"
        )
    assert set(caught.value.errors) == {"subject", "body"}
    db.session.rollback()
    assert db.session.get(Message, message.id).subject == "Hello {{guest_name}}"


@pytest.mark.parametrize(
    "status",
    [
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.SENT_WITH_FAILURES,
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
    ],
)
def test_only_draft_and_scheduled_can_change(event, owner, now, status, make_message):
    message = make_message(event, status=status)
    with pytest.raises(IllegalTransition, match="can no longer be edited"):
        svc.update_message(db.session, message, now=now, actor=ACTOR, subject="Changed")
    with pytest.raises(IllegalTransition, match="can no longer be cancelled"):
        svc.cancel_message(db.session, message, now=now, actor=ACTOR)
    with pytest.raises(IllegalTransition, match="can no longer be sent"):
        svc.send_now(db.session, message, ACTOR, now=now)
    db.session.rollback()
    assert db.session.get(Message, message.id).status is status


def test_edit_refused_when_the_scheduler_claimed_it_meanwhile(event, owner, now, make_message):
    """The page was loaded while scheduled; the claim commits before the edit is written."""
    message = make_message(event, send_at=now + timedelta(hours=1))
    assert message.status is MessageStatus.SCHEDULED  # what the stale page/session saw
    set_status(message, MessageStatus.SENDING)  # another process, committed
    with pytest.raises(IllegalTransition) as caught:
        svc.update_message(db.session, message, now=now, actor=ACTOR, subject="Too late")
    assert caught.value.current is MessageStatus.SENDING
    db.session.rollback()
    stored = db.session.get(Message, message.id)
    assert (stored.status, stored.subject) == (MessageStatus.SENDING, "Hello {{guest_name}}")


def test_cancel_refused_when_the_scheduler_claimed_it_meanwhile(event, owner, now, make_message):
    message = make_message(event, send_at=now + timedelta(hours=1))
    set_status(message, MessageStatus.SENDING)
    with pytest.raises(IllegalTransition, match="can no longer be cancelled"):
        svc.cancel_message(db.session, message, now=now, actor=ACTOR)
    db.session.rollback()
    assert db.session.get(Message, message.id).status is MessageStatus.SENDING


def test_cancel_and_tab_counts(event, owner, now, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    svc.cancel_message(db.session, message, now=now, actor=ACTOR)
    db.session.commit()
    assert message.status is MessageStatus.CANCELLED
    counts = lists.tab_counts(db.session, event.id)
    assert counts == {
        lists.Tab.SCHEDULED: 4,
        lists.Tab.SENT: 0,
        lists.Tab.CANCELLED: 1,
    }  # 4 reminders


def test_message_of_another_event_is_not_found(event, make_event, make_message):
    other = make_event("Other")
    message = make_message(other, status=MessageStatus.DRAFT)
    assert lists.get_message_of(db.session, event, message.id) is None
    assert lists.get_message_of(db.session, other, message.id) is message


def test_parse_send_at_accepts_offsets():
    assert svc.parse_send_at("2031-01-01T10:00:00+02:00", "UTC") == datetime(
        2031, 1, 1, 8, tzinfo=UTC
    )
    assert svc.parse_send_at("2031-01-01T10:00", "Europe/Berlin") == datetime(
        2031, 1, 1, 9, tzinfo=UTC
    )
    assert svc.parse_send_at("", "UTC") is None
