"""JSON shapes of DESIGN.md section 6. Field names are a stable interface: add, never rename."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from dashboard.dispatch.queries import Counts
from dashboard.events.models import Event, Guest
from dashboard.messages.audience import RecipientCount
from dashboard.messages.models import FINISHED, Message, MessageStatus

#: Messages in these states carry delivery ``counts``.
WITH_COUNTS = frozenset({MessageStatus.SENDING, *FINISHED})


def iso(value: datetime | None, tz: tzinfo | None = None) -> str | None:
    """ISO 8601 with offset; in ``tz`` (the event's zone) when given, else UTC."""
    if value is None:
        return None
    return (value.astimezone(tz) if tz is not None else value).isoformat()


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "name": event.name,
        "starts_at": iso(event.starts_at, event.tz),
        "timezone": event.timezone,
        "venue": event.venue,
        "created_at": iso(event.created_at),
        "updated_at": iso(event.updated_at),
    }


def guest_json(guest: Guest) -> dict[str, Any]:
    return {
        "id": guest.id,
        "name": guest.name,
        "email": guest.email,
        "rsvp_status": guest.rsvp_status.value,
        "unsubscribed": guest.unsubscribed,
    }


def message_json(
    message: Message, tz: tzinfo | None = None, counts: Counts | None = None
) -> dict[str, Any]:
    """``tz``: the event's zone for ``send_at`` (looked up when not given)."""
    zone = tz if tz is not None else message.event.tz
    data: dict[str, Any] = {
        "id": message.id,
        "event_id": message.event_id,
        "kind": message.kind.value,
        "label": message.kind.label,
        "audience": message.audience.value,
        "channel": message.channel.value,
        "subject": message.subject,
        "body": message.body,
        "status": message.status.value,
        "send_at": iso(message.send_at, zone),
        "editable": message.editable,
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
    }
    if message.status in WITH_COUNTS:
        figures = counts or Counts()
        data["counts"] = {
            "total": figures.total,
            "sent": figures.sent,
            "failed": figures.failed,
            "skipped": figures.skipped,
            "pending": figures.pending,
        }
    return data


def recipient_count_json(count: RecipientCount) -> dict[str, Any]:
    return {
        "audience": count.audience.value,
        "count": count.will_receive,
        "in_audience": count.in_audience,
        "left_out": count.left_out,
        "unsubscribed": count.unsubscribed,
        "no_address": count.no_address,
    }
