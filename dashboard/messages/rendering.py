"""What one guest sees: the same code for the compose preview and for dispatch."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.events.models import Event, Guest
from dashboard.events.public import PREVIEW_TOKEN, rsvp_url, unsubscribe_url
from dashboard.messages.placeholders import compile_template


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str
    to_name: str
    to_email: str
    unsubscribe_url: str


def event_date_text(event: Event) -> str:
    local = event.starts_at.astimezone(event.tz)
    return f"{local.strftime('%A %-d %B %Y at %H:%M')} {local.tzname()}"


class MessageRenderer:
    """Compiles subject and body once; ``render(guest)`` is a few string joins.

    ``preview=True`` is for showing a message to a host: the guest's links become inert
    ones (``/r/preview``, ``/u/preview``), because a guest's token is their only credential
    and a viewer who saw it could answer or unsubscribe for them.
    """

    def __init__(
        self, event: Event, subject: str, body: str, base_url: str, *, preview: bool = False
    ):
        self.base_url = base_url.rstrip("/")
        self.preview = preview
        self.subject = compile_template(subject)
        self.body = compile_template(body)
        self.event_values = {
            "event_name": event.name,
            "event_date": event_date_text(event),
            "venue": event.venue or "",
        }

    def render(self, guest: Guest) -> RenderedMessage:
        token = PREVIEW_TOKEN if self.preview else guest.token
        unsubscribe = unsubscribe_url(self.base_url, token)
        values = {
            **self.event_values,
            "guest_name": guest.name,
            "rsvp_link": rsvp_url(self.base_url, token),
            "unsubscribe_link": unsubscribe,
        }
        subject = " ".join(self.subject.render(values).split())  # no CR/LF from values
        return RenderedMessage(
            subject, self.body.render(values), guest.name, guest.email, unsubscribe
        )
