"""Audit entries in words, for the pages: what happened, who did it, and what changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.audit.models import AuditEntry
from dashboard.dispatch.models import BatchTrigger

ACTIONS = {
    "message.create": "Created",
    "message.edit": "Edited",
    "message.schedule": "Scheduled",
    "message.send_now": "Sent now",
    "message.cancel": "Cancelled",
    "message.restore": "Scheduled again",
    "message.restore_draft": "Restored as a draft",
    "message.overdue": "Held back: found too late",
    "message.pause": "Paused",
    "message.resume": "Resumed",
    "message.stop": "Stopped",
    "message.test_send": "Test sent",
    "message.duplicate": "Created as a copy",
    "batch.start": "Batch started",
    "batch.retry_failed": "Retry of the failed recipients queued",
    "batch.send_one": "Single re-send queued",
    "suppression.lift": "Suppression lifted",
    "event.create": "Event created",
    "event.edit": "Event edited",
    "event.move": "Event moved",
    "event.cancel": "Event cancelled",
    "event.archive": "Event archived",
    "event.unarchive": "Event brought back from the archive",
    "event.delete": "Event deleted",
    "guest.add": "Guest added",
    "guest.edit": "Guest edited",
    "guest.remove": "Guest removed",
    "guest.restore": "Guest restored",
    "guest.import": "Guests imported",
    "collaborator.add": "Collaborator added",
    "collaborator.role": "Collaborator's role changed",
    "collaborator.remove": "Collaborator removed",
}
FIELDS = {
    "send_at": "send time",
    "starts_at": "start",
    "rsvp_status": "RSVP",
    "body": "text",
    "email": "e-mail",
}
#: Fields holding a time (ISO 8601 in the details), shown in the event's zone.
TIMES = frozenset({"send_at", "starts_at", "planned_send_at"})
#: Long texts: the log says they changed, the page does not print both versions.
LONG = frozenset({"body"})
#: Counts of an import, in the order they are told.
IMPORT_COUNTS = ("created", "restored", "updated", "unchanged", "rejected")


@dataclass(frozen=True)
class Item:
    at: datetime
    actor: str
    label: str
    lines: list[str]
    batch_id: int | None


def action_label(action: str) -> str:
    """An action in words ("Scheduled"); one without a label reads as its parts."""
    known = ACTIONS.get(action)
    if known:
        return known
    subject, _, verb = action.partition(".")
    return f"{subject.capitalize()} {verb.replace('_', ' ')}".strip()


def item(entry: AuditEntry, tz: ZoneInfo) -> Item:
    return Item(entry.at, entry.actor, action_label(entry.action), lines(entry, tz), entry.batch_id)


def lines(entry: AuditEntry, tz: ZoneInfo) -> list[str]:
    """The details worth reading: each changed field, a reason, an import's counts."""
    details: Mapping[str, Any] = entry.details or {}
    found = [
        _change(name, change, tz)
        for name, change in (details.get("changes") or {}).items()
        if isinstance(change, Mapping)
    ]
    if entry.action == "message.create" and details.get("send_at"):
        found.append(f"send time {value(details['send_at'], 'send_at', tz)}")
    if entry.action == "message.send_now" and details.get("planned_send_at"):
        found.append(f"was planned for {value(details['planned_send_at'], 'send_at', tz)}")
    if entry.action == "batch.start" and details.get("trigger") in BatchTrigger._value2member_map_:
        found.append(BatchTrigger(details["trigger"]).label)
    found.extend(_sending_lines(entry.action, details))
    if entry.action == "batch.retry_failed" and "failed" in details:
        kinds = " (permanent failures included)" if details.get("permanent") else ""
        found.append(f"{details['failed']} failed recipient(s){kinds}")
    if entry.action == "batch.send_one" and details.get("email"):
        found.append(f"{details.get('name', '')} <{details['email']}>".strip())
    if entry.action == "guest.import":
        counts = ", ".join(f"{details[key]} {key}" for key in IMPORT_COUNTS if key in details)
        found.append(f"{counts} (from {'the API' if details.get('source') == 'api' else 'a CSV'})")
    if entry.action.startswith("guest.") and details.get("email"):
        found.append(f"{details.get('name', '')} <{details['email']}>".strip())
    if details.get("reason"):
        found.append(f"because {details['reason']}")
    return found


def _sending_lines(action: str, details: Mapping[str, Any]) -> list[str]:
    """What a pause, resume, stop, test send or copy adds to its line."""
    if action == "message.pause" and details.get("hold_after"):
        return [f"its hold was reached: {details.get('sent')} sent"]
    if action in ("message.pause", "message.stop") and "sent" in details:
        rest = "cancelled" if action == "message.stop" else "pending"
        return [f"{details['sent']} sent, {details.get(rest, 0)} {rest}"]
    if action == "message.test_send":
        results = details.get("results") or []
        took = sum(
            1 for result in results if isinstance(result, Mapping) and result.get("accepted")
        )
        to = ", ".join(str(address) for address in details.get("to") or [])
        return [f"to {to}: {took} of {len(results)} accepted", f"as {details.get('rendered_as')}"]
    if action == "message.duplicate" and details.get("from_message_id"):
        return [f"from message #{details['from_message_id']}"]
    return []


def _change(name: str, change: Mapping[str, Any], tz: ZoneInfo) -> str:
    label = FIELDS.get(name, name.replace("_", " "))
    if name in LONG:
        return f"{label} changed"
    return f"{label}: {value(change.get('old'), name, tz)} → {value(change.get('new'), name, tz)}"


def value(raw: Any, name: str, tz: ZoneInfo) -> str:
    if raw is None or raw == "":
        return "none"
    if name in TIMES and isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw).astimezone(tz)
        except ValueError:
            return raw
        return f"{when:%a %d %b %Y, %H:%M} {when.tzname()}"
    if isinstance(raw, str):
        return raw.replace("_", " ") if name in ("status", "rsvp_status", "role") else raw
    return str(raw)
