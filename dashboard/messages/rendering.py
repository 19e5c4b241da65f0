"""What one guest sees: the same code for the compose preview and for dispatch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.events.models import Event, Guest
from dashboard.events.public import PREVIEW_TOKEN, calendar_url, rsvp_url, unsubscribe_url
from dashboard.messages.markup import links_written_out
from dashboard.messages.placeholders import compile_template


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    #: The body as plain text: the source with its placeholders filled in and its
    #: Markdown links written out.
    body: str
    to_name: str
    to_email: str
    unsubscribe_url: str
    #: This guest's value of every placeholder (and of the calendar download link), for
    #: a channel that lays the message out itself.
    values: Mapping[str, str]


@dataclass(frozen=True)
class EventFacts:
    """What a message says about its event, read once per message (no lazy loads later)."""

    id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue: str
    sender_name: str
    reply_to: str
    calendar_sequence: int

    @classmethod
    def of(cls, event: Event) -> EventFacts:
        return cls(
            id=event.id,
            name=event.name,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            timezone=event.timezone,
            venue=event.venue or "",
            sender_name=event.sender_name or "",
            reply_to=event.reply_to or "",
            calendar_sequence=event.calendar_sequence or 0,
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def event_date_text(event: Any) -> str:
    local = event.starts_at.astimezone(event.tz)
    return f"{local.strftime('%A %-d %B %Y at %H:%M')} {local.tzname()}"


def event_time_span(event: EventFacts) -> str:
    """Like "Saturday 1 June 2030, 19:00–21:00 CEST", with the end's day when it differs."""
    start, end = event.starts_at.astimezone(event.tz), event.ends_at.astimezone(event.tz)
    day = f"{start.strftime('%A %-d %B %Y')}, {start:%H:%M}"
    if end.date() == start.date():
        return f"{day}–{end:%H:%M} {end.tzname()}"
    return f"{day} {start.tzname()} – {end.strftime('%A %-d %B %Y')}, {end:%H:%M} {end.tzname()}"


def event_values(event: Any) -> dict[str, str]:
    """The placeholders whose value is the same for every guest of ``event``."""
    return {
        "event_name": event.name,
        "event_date": event_date_text(event),
        "venue": event.venue or "",
    }


def with_event_values(text: str, event: Any) -> str:
    """A subject as a host should read it in lists and confirmations: the event's values
    filled in, a guest's own placeholders (``{{guest_name}}``) left as they are."""
    return " ".join(compile_template(text).render(event_values(event)).split())


class MessageRenderer:
    """Compiles subject and body once; ``render(guest)`` is a few string joins.

    ``preview=True`` is for showing a message to a host: the guest's links become inert
    ones (``/r/preview``, ``/u/preview``), because a guest's token is their only credential
    and a viewer who saw it could answer or unsubscribe for them.
    """

    def __init__(
        self,
        event: Event,
        subject: str,
        body: str,
        base_url: str,
        *,
        attach_calendar: bool = False,
        preview: bool = False,
    ):
        self.base_url = base_url.rstrip("/")
        self.preview = preview
        self.event = EventFacts.of(event)
        self.subject_source = subject
        self.body_source = body
        self.attach_calendar = attach_calendar
        self.subject = compile_template(subject)
        self.body = compile_template(links_written_out(body))
        self.event_values = event_values(event)

    def render(self, guest: Guest) -> RenderedMessage:
        token = PREVIEW_TOKEN if self.preview else guest.token
        unsubscribe = unsubscribe_url(self.base_url, token)
        values = {
            **self.event_values,
            "guest_name": guest.name,
            "rsvp_link": rsvp_url(self.base_url, token),
            "unsubscribe_link": unsubscribe,
            "calendar_link": calendar_url(self.base_url, token),
        }
        subject = " ".join(self.subject.render(values).split())  # no CR/LF from values
        return RenderedMessage(
            subject, self.body.render(values), guest.name, guest.email, unsubscribe, values
        )
