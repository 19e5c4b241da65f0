"""Never late: what the poller holds back instead of sending, and what can never be sent.

A scheduled message found more than ``stale_after`` past its send time (the server was
down, say) is not sent: it becomes ``overdue`` with the reason in the event's own time
("due Sat 28 Nov 09:00, found 3 days late"), for a host to send now, reschedule or
cancel. A reminder whose event has started becomes overdue too, and can never be sent;
a message of a cancelled or archived event is cancelled. The claim repeats the same rule
in its WHERE (``sendable``), so a message is never claimed late even when the pass that
looked at it took long (a big batch sent in between).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import SCHEDULER, record
from dashboard.dispatch import states
from dashboard.events.models import Event, EventStatus
from dashboard.messages.models import Message, MessageKind, MessageStatus

log = logging.getLogger(__name__)

#: How a reason names a time: as the example in the product brief, in the event's zone.
SHORT = "%a %d %b %H:%M"
REASON_EVENT_CANCELLED = "event cancelled"
REASON_EVENT_ARCHIVED = "event archived"


#: The message's event inside the EXISTS clauses below: an alias, so that they also work in
#: a query that joins the events table itself, and a Core one, because the poller builds
#: these clauses on every pass (ORM-annotated ones cost about a millisecond each).
_EVENT = Event.__table__.alias("message_event")


def _event(*where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return sa.exists().where(_EVENT.c.id == Message.event_id, *where).correlate_except(_EVENT)


def late(now: datetime, stale_after: timedelta) -> sa.ColumnElement[bool]:
    return Message.send_at < now - stale_after


def event_started(now: datetime) -> sa.ColumnElement[bool]:
    """A reminder whose event has begun: it would remind nobody of anything."""
    return sa.and_(Message.kind != MessageKind.CUSTOM, _event(_EVENT.c.starts_at <= now))


_CLOSED = _event(_EVENT.c.status != EventStatus.ACTIVE)


def event_closed() -> sa.ColumnElement[bool]:
    return _CLOSED


def sendable(now: datetime, stale_after: timedelta) -> sa.ColumnElement[bool]:
    """A due scheduled message the poller may still send now."""
    return sa.not_(sa.or_(late(now, stale_after), event_started(now), event_closed()))


def in_zone(value: datetime, zone: str, fmt: str = SHORT) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


def lateness(delay: timedelta) -> str:
    """``3 days``, ``7 hours``, ``45 minutes``: the largest whole unit."""
    seconds = int(delay.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def verdict(row: Any, now: datetime, stale_after: timedelta) -> tuple[MessageStatus, str] | None:
    """Where a due scheduled message goes instead of being sent, and why; None: send it.

    ``row`` has the message's ``kind`` and ``send_at`` and its event's ``starts_at``,
    ``timezone`` and ``event_status``.
    """
    if row.event_status is EventStatus.CANCELLED:
        return MessageStatus.CANCELLED, REASON_EVENT_CANCELLED
    if row.event_status is EventStatus.ARCHIVED:
        return MessageStatus.CANCELLED, REASON_EVENT_ARCHIVED
    found = f"due {in_zone(row.send_at, row.timezone)}, found {lateness(now - row.send_at)} late"
    if row.kind is not MessageKind.CUSTOM and row.starts_at <= now:
        return MessageStatus.OVERDUE, f"{found}, after the event had started"
    if row.send_at < now - stale_after:
        return MessageStatus.OVERDUE, found
    return None


def due(
    session: Session, now: datetime, stale_after: timedelta, limit: int
) -> tuple[list[int], int]:
    """The due scheduled messages the poller may send now (at most ``limit``, oldest first),
    and how many it held back instead: moved to overdue (or cancelled) with the reason and
    an audit entry by the scheduler. Commits.

    One query gives each due message with what its verdict needs, so an idle pass costs no
    more than before; while a whole page is held back (after a long outage) it looks again,
    so the fresh messages behind the stale ones are not kept waiting.
    """
    held = 0
    while True:
        rows = session.execute(
            sa.select(
                Message.id,
                Message.kind,
                Message.send_at,
                Message.event_id,
                Event.starts_at,
                Event.timezone,
                Event.status.label("event_status"),
            )
            .join(Event, Event.id == Message.event_id)
            .where(Message.status == MessageStatus.SCHEDULED, Message.send_at <= now)
            .order_by(Message.send_at, Message.id)
            .limit(limit)
        ).all()
        sendable_now = []
        for row in rows:
            found = verdict(row, now, stale_after)
            if found is None:
                sendable_now.append(row.id)
            elif _hold(session, row, *found, now):
                held += 1
        session.commit()
        if sendable_now or len(rows) < limit:
            return sendable_now, held


def _hold(session: Session, row: Any, target: MessageStatus, reason: str, now: datetime) -> bool:
    moved = states.move_message(
        session, row.id, target, now=now, expected=[MessageStatus.SCHEDULED], status_reason=reason
    )
    if moved:
        action = "message.overdue" if target is MessageStatus.OVERDUE else "message.cancel"
        details = {"reason": reason, "send_at": row.send_at.isoformat()}
        record(
            session,
            SCHEDULER,
            action,
            now=now,
            event_id=row.event_id,
            message_id=row.id,
            details=details,
        )
        log.warning("message %s held back: %s", row.id, reason)
    return moved


def send_refusal(message: Message, event: Event, now: datetime) -> str | None:
    """Why ``message`` can never be sent (a 409 for send-now), or None.

    Custom messages of a cancelled event may still go (its cancellation notice); reminders
    never go once the event has started or is cancelled, and nothing goes for an archived
    event.
    """
    if event.status is EventStatus.ARCHIVED:
        return "This event is archived: nothing more is sent for it."
    if message.kind is MessageKind.CUSTOM:
        return None
    if event.status is EventStatus.CANCELLED:
        return "This event is cancelled: its reminders are never sent."
    if event.starts_at <= now:
        started = in_zone(event.starts_at, event.timezone, "%a %d %b %Y, %H:%M")
        return f"The event started {started}: its reminders can no longer be sent."
    return None
