"""An event in the guests' calendars: its end, the invitation (.ics) and "Add to calendar" links.

The invitation is published (``METHOD:PUBLISH``) with one ``UID`` per event, so a guest's
calendar replaces its entry when a later e-mail carries a higher ``SEQUENCE``; the
sequence goes up whenever the event's start or end moves. Times are written in UTC.

``Invite`` builds the calendar once per message; per guest only the ``URL`` line (the
guest's own RSVP page) is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import icalendar
from icalendar.parser import foldline

from dashboard.errors import ValidationError
from dashboard.events.models import DEFAULT_LENGTH, Event
from dashboard.timeutil import parse_local_datetime

PRODID = "-//Event dashboard//Invitations//EN"
#: Stands for the guest's RSVP page in the built calendar (lower-case letters only, so
#: no property value can contain it by accident once escaped and folded).
_URL_SLOT = "zzguestrsvpurlslotzz"
MAX_LENGTH = timedelta(days=31)


class EventTimes(Protocol):
    id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    venue: str
    calendar_sequence: int


# --- the end of an event and its sequence ---------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """An edit's new start and end, and the instants they replace."""

    starts_at: datetime
    ends_at: datetime
    was: tuple[datetime | None, datetime | None]

    def apply(self, event: Event) -> None:
        """Set the end; raise the calendar sequence when the start or the end moved."""
        event.ends_at = self.ends_at
        if self.was[0] is not None and self.was != (self.starts_at, self.ends_at):
            event.calendar_sequence = (event.calendar_sequence or 0) + 1


def timing(
    starts_at: datetime,
    ends_at: str | datetime | None,
    timezone: str,
    current: Event | None = None,
) -> Timing:
    """The end for a start: ``ends_at`` if given (read in the event's zone when naive);
    None keeps the current length (two hours for a new event); "" resets it to two hours."""
    was = (current.starts_at, current.ends_at) if current is not None else (None, None)
    if ends_at is None or (isinstance(ends_at, str) and not ends_at.strip()):
        keep = ends_at is None and current is not None and current.ends_at is not None
        length = current.ends_at - current.starts_at if keep else DEFAULT_LENGTH  # type: ignore[union-attr]
        end = starts_at + length
    else:
        end = parse_local_datetime(ends_at, timezone, "ends_at")
        if end <= starts_at:
            raise ValidationError({"ends_at": "The event must end after it starts."})
        if end - starts_at > MAX_LENGTH:
            raise ValidationError({"ends_at": "An event lasts at most 31 days."})
    return Timing(starts_at, end, was)


# --- the invitation -------------------------------------------------------------------------


def uid(event_id: int, base_url: str) -> str:
    """Stable per event (and per installation), whatever is sent or moved later."""
    return f"event-{event_id}@{urlsplit(base_url).hostname or 'localhost'}"


def utc_stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class Invite:
    """The event's .ics, built once; ``render(rsvp_url)`` writes one guest's copy."""

    def __init__(self, event: EventTimes, base_url: str, stamp: datetime):
        calendar = icalendar.Calendar()
        calendar.add("prodid", PRODID)
        calendar.add("version", "2.0")
        calendar.add("method", "PUBLISH")
        entry = icalendar.Event()
        entry.add("uid", uid(event.id, base_url))
        entry.add("dtstamp", stamp.astimezone(UTC))
        entry.add("dtstart", event.starts_at.astimezone(UTC))
        entry.add("dtend", event.ends_at.astimezone(UTC))
        entry.add("sequence", event.calendar_sequence or 0)
        entry.add("summary", event.name)
        if event.venue:
            entry.add("location", event.venue)
        entry.add("url", _URL_SLOT)
        calendar.add_component(entry)
        data = calendar.to_ical().decode("utf-8")
        line = f"URL:{_URL_SLOT}\r\n"
        self.head, found, self.tail = data.partition(line)
        assert found, "the URL line is folded or missing"

    def render(self, rsvp_url: str) -> bytes:
        line = f"URL:{rsvp_url}"
        if len(line) > 75 or not line.isascii():  # content lines fold at 75 octets
            line = foldline(line)
        return (self.head + line + "\r\n" + self.tail).encode("utf-8")


# --- links ----------------------------------------------------------------------------------


def google_url(event: EventTimes, details: str) -> str:
    query = {
        "action": "TEMPLATE",
        "text": event.name,
        "dates": f"{utc_stamp(event.starts_at)}/{utc_stamp(event.ends_at)}",
        "location": event.venue,
        "details": details,
    }
    return "https://calendar.google.com/calendar/render?" + urlencode(query)


def outlook_url(event: EventTimes, details: str) -> str:
    def iso(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": event.name,
        "startdt": iso(event.starts_at),
        "enddt": iso(event.ends_at),
        "location": event.venue,
        "body": details,
    }
    return "https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode(query)


def filename(event: EventTimes) -> str:
    """A plain ASCII file name for the download (the event's name is in the file)."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in event.name).split()
    return "-".join(words)[:60].lower() + ".ics" if words else "event.ics"
