"""The four auto-reminders every event gets, and moving them when the event moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

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


#: Why the system cancelled a reminder: the event moved and the reminder's new time had
#: passed. Only a reminder cancelled for this reason comes back when a later move puts its
#: time ahead again; a host's own cancel (no reason) is never undone.
REASON_MOVED_PAST = "its time had passed when the event moved"


def default_time(starts_at: datetime, zone: ZoneInfo, spec: ReminderSpec) -> datetime:
    """09:00 local N days before a start (day-of: never after start - 2h), in UTC."""
    day = starts_at.astimezone(zone).date() - timedelta(days=spec.days_before)
    send_at = datetime.combine(day, LOCAL_SEND_HOUR, tzinfo=zone).astimezone(UTC)
    if spec.days_before == 0:
        send_at = min(send_at, starts_at - DAY_OF_LEAD)
    return send_at


def reminder_time(event: Event, spec: ReminderSpec) -> datetime:
    """When ``spec`` fires for ``event``: 09:00 local N days before (day-of: never after start - 2h)."""
    return default_time(event.starts_at, event.tz, spec)


def moved_time(
    send_at: datetime, old_start: datetime, old_zone: ZoneInfo, event: Event
) -> datetime:
    """Where a reminder goes when its event moves from ``old_start``: as many days before
    the event as it was, at the local time of day it had (a host's 18:00 stays 18:00),
    and never at or after the start."""
    local = send_at.astimezone(old_zone)
    days = (old_start.astimezone(old_zone).date() - local.date()).days
    day = event.starts_local.date() - timedelta(days=days)
    moved = datetime.combine(day, local.time(), tzinfo=event.tz).astimezone(UTC)
    return moved if moved < event.starts_at else event.starts_at - DAY_OF_LEAD


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


@dataclass
class Moves:
    """What moving an event did to its reminders (message ids)."""

    moved: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)


def reschedule_reminders(
    session: Session,
    event: Event,
    now: datetime,
    created_by: User | None = None,
    *,
    old_start: datetime,
    old_zone: ZoneInfo,
) -> Moves:
    """After the event's date or zone changed: move its reminders that have not gone out.

    Scheduled and overdue ones move (``moved_time``; one still at its default time gets
    the new default); one whose new time has passed is cancelled with
    ``REASON_MOVED_PAST`` rather than fired late, and comes back when a later move puts
    it ahead again. Drafts, sent ones and ones a host cancelled stay as they are. A
    reminder kind the event never had (it was past at creation) is created when its new
    time lies ahead.
    """
    moves = Moves()
    existing = session.scalars(
        sa.select(Message).where(Message.event_id == event.id, Message.kind != MessageKind.CUSTOM)
    ).all()
    kinds = {message.kind for message in existing}
    for message in existing:
        status, send_at = message.status, message.send_at
        by_move = status is MessageStatus.CANCELLED and message.status_reason == REASON_MOVED_PAST
        if send_at is None or not (by_move or status in _MOVABLE):
            continue
        spec = SPEC_BY_KIND[message.kind]
        if send_at == default_time(old_start, old_zone, spec):
            new_time = reminder_time(event, spec)
        else:
            new_time = moved_time(send_at, old_start, old_zone, event)
        if new_time > now:
            target, reason = MessageStatus.SCHEDULED, None
            (moves.restored if by_move else moves.moved).append(message.id)
        else:  # a reminder cancelled by a move keeps following the event, still cancelled
            target, reason = MessageStatus.CANCELLED, REASON_MOVED_PAST
            if not by_move:
                moves.cancelled.append(message.id)
        states.move_message(
            session,
            message.id,
            target,
            now=now,
            expected=[status],
            where=Message.status_reason == REASON_MOVED_PAST if by_move else None,
            send_at=new_time,
            status_reason=reason,
        )
        session.expire(message)
    for spec in REMINDERS:
        if spec.kind not in kinds and reminder_time(event, spec) > now:
            session.add(_scheduled_reminder(event, spec, created_by))
    return moves


_MOVABLE = frozenset({MessageStatus.SCHEDULED, MessageStatus.OVERDUE})
