"""JSON shapes of DESIGN.md section 6. Field names are a stable interface: add, never rename."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from dashboard.dispatch.models import Batch, BatchStatus
from dashboard.dispatch.progress import batch_progress
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


def batch_json(batch: Batch, now: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": batch.id,
        "message_id": batch.message_id,
        "trigger": batch.trigger.value,
        "trigger_label": batch.trigger.label,
        "initiated_by": batch.initiated_label or "scheduler",
        "status": batch.status.value,
        "dry_run": batch.dry_run,
        "counts": {
            "total": batch.total,
            "sent": batch.sent,
            "failed": batch.failed,
            "skipped": batch.skipped,
        },
        "started_at": iso(batch.started_at),
        "finished_at": iso(batch.finished_at),
        "heartbeat_at": iso(batch.heartbeat_at),
        "error": batch.error,
    }
    if now is not None and batch.status is BatchStatus.RUNNING:
        progress = batch_progress(batch, now)
        data["progress"] = {
            "done": progress.done,
            "percent": progress.percent,
            "eta_seconds": round(progress.eta_seconds, 1)
            if progress.eta_seconds is not None
            else None,
        }
    return data


def entry_json(row: Any) -> dict[str, Any]:
    """One row of ``queries.batch_entries``."""
    return {
        "id": row.id,
        "delivery_id": row.delivery_id,
        "guest_id": row.guest_id,
        "guest_name": row.guest_name,
        "email": row.email,
        "outcome": row.outcome.value,
        "reason": row.reason,
        "error_kind": row.error_kind.value if row.error_kind is not None else None,
        "processed_at": iso(row.processed_at),
    }
