"""The four auto-reminders every event gets, and moving them when the event moves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.auth.models import User
from dashboard.dispatch import states
from dashboard.events.models import Event
from dashboard.messages.models import Audience, Message, MessageKind, MessageStatus

FOOTER = (
    "\n\nChange your answer: {{rsvp_link}}\nStop receiving these e-mails: {{unsubscribe_link}}\n"
)


@dataclass(frozen=True)
class ReminderSpec:
    kind: MessageKind
    days_before: int
    audience: Audience
    subject: str
    body: str


REMINDERS: tuple[ReminderSpec, ...] = (
    ReminderSpec(
        MessageKind.REMINDER_7D,
        7,
        Audience.ATTENDING,
        "{{event_name}} is one week away",
        "Hi {{guest_name}},\n\n{{event_name}} is one week away: {{event_date}} at {{venue}}.\n"
        "We look forward to seeing you." + FOOTER,
    ),
    ReminderSpec(
        MessageKind.REMINDER_3D,
        3,
        Audience.PENDING,
        "Last call: will you come to {{event_name}}?",
        "Hi {{guest_name}},\n\nWe have not heard from you yet. {{event_name}} takes place on "
        "{{event_date}} at {{venue}}.\nPlease let us know whether you can make it." + FOOTER,
    ),
    ReminderSpec(
        MessageKind.REMINDER_1D,
        1,
        Audience.ATTENDING,
        "See you tomorrow at {{event_name}}",
        "Hi {{guest_name}},\n\nA reminder that {{event_name}} is tomorrow, {{event_date}}, "
        "at {{venue}}." + FOOTER,
    ),
    ReminderSpec(
        MessageKind.REMINDER_DAY_OF,
        0,
        Audience.ATTENDING,
        "Today: {{event_name}}",
        "Hi {{guest_name}},\n\n{{event_name}} is today, {{event_date}}, at {{venue}}. "
        "See you there!" + FOOTER,
    ),
)
SPEC_BY_KIND = {spec.kind: spec for spec in REMINDERS}

#: Reminders go out at this local hour; the day-of one at least this long before the start.
LOCAL_SEND_HOUR = time(9, 0)
DAY_OF_LEAD = timedelta(hours=2)


def reminder_time(event: Event, spec: ReminderSpec) -> datetime:
    """When ``spec`` fires for ``event``: 09:00 local N days before (day-of: never after start - 2h)."""
    local_start = event.starts_at.astimezone(event.tz)
    day = local_start.date() - timedelta(days=spec.days_before)
    local = datetime.combine(day, LOCAL_SEND_HOUR, tzinfo=event.tz)
    send_at = local.astimezone(event.starts_at.tzinfo)
    if spec.days_before == 0:
        send_at = min(send_at, event.starts_at - DAY_OF_LEAD)
    return send_at


def seed_reminders(
    session: Session, event: Event, now: datetime, created_by: User | None = None
) -> list[Message]:
    """Create the reminders whose time is still ahead, in the caller's transaction."""
    created = [
        _scheduled_reminder(event, spec, created_by)
        for spec in REMINDERS
        if reminder_time(event, spec) > now
    ]
    session.add_all(created)
    return created


def _scheduled_reminder(event: Event, spec: ReminderSpec, created_by: User | None) -> Message:
    return Message(
        event=event,
        kind=spec.kind,
        audience=spec.audience,
        subject=spec.subject,
        body=spec.body,
        attach_calendar=True,  # a reminder puts the event in the guest's calendar
        status=MessageStatus.SCHEDULED,
        send_at=reminder_time(event, spec),
        created_by=created_by,
    )


def reschedule_reminders(
    session: Session, event: Event, now: datetime, created_by: User | None = None
) -> None:
    """After the event's date or zone changed: move still-scheduled reminders.

    Sent, sending and cancelled ones stay as they are. A reminder whose new time is
    already past is cancelled rather than fired late; a reminder kind the event never
    had (it was past at creation) is created when its new time lies ahead.
    """
    existing = session.scalars(
        sa.select(Message).where(Message.event_id == event.id, Message.kind != MessageKind.CUSTOM)
    ).all()
    kinds = {message.kind for message in existing}
    for message in existing:
        if message.status is not MessageStatus.SCHEDULED:
            continue
        send_at = reminder_time(event, SPEC_BY_KIND[message.kind])
        if send_at <= now:
            states.move_message(
                session, message.id, MessageStatus.CANCELLED, now=now, expected=[message.status]
            )
            session.expire(message)
        else:
            message.send_at = send_at
    for spec in REMINDERS:
        if spec.kind not in kinds and reminder_time(event, spec) > now:
            session.add(_scheduled_reminder(event, spec, created_by))
