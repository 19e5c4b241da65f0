"""The compose preview: what one real guest of the audience would get, composed by the
dispatcher's own renderer and composer, then read back from the bytes it would send."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from dashboard.dispatch import channels
from dashboard.dispatch.settings import DispatchSettings
from dashboard.events.models import Event, Guest
from dashboard.messages import audience as audiences
from dashboard.messages import placeholders
from dashboard.messages.mailview import MailView
from dashboard.messages.models import Audience
from dashboard.messages.rendering import MessageRenderer, RenderedMessage
from dashboard.messages.services import MAX_BODY, MAX_SUBJECT


@dataclass
class Preview:
    event: Event
    preview_errors: list[str] = field(default_factory=list)
    audience_label: str = ""
    guest: Guest | None = None
    rendered: RenderedMessage | None = None
    #: The e-mail as sent, when the channel is e-mail.
    mail: MailView | None = None

    def context(self) -> dict[str, Any]:
        return dict(self.__dict__)


def preview(
    session: Session,
    event: Event,
    settings: DispatchSettings,
    *,
    audience: str | None,
    subject: str,
    body: str,
    attach_calendar: bool = False,
    channel: str | None = None,
) -> Preview:
    """The preview of the message a compose form holds (nothing is saved)."""
    result = Preview(event)
    try:
        chosen = Audience(audience or Audience.EVERYONE)
    except ValueError:
        result.preview_errors = ["Choose a valid audience."]
        return result
    for label, text, limit in (("Subject", subject, MAX_SUBJECT), ("Message", body, MAX_BODY)):
        if len(text) > limit:
            # Capped like a save: a preview is open to viewers, so its cost must be bounded.
            result.preview_errors.append(f"{label}: {len(text):,} characters; at most {limit:,}.")
            continue
        try:
            placeholders.validate(text)
        except placeholders.PlaceholderError as error:
            result.preview_errors.append(f"{label}: {error}")
    if result.preview_errors:
        return result
    result.audience_label = chosen.label
    result.guest = audiences.sample_guest(session, event.id, chosen)
    if result.guest is None:
        return result
    # Inert links (/r/preview, /u/preview): a guest's token is theirs alone, never a viewer's.
    renderer = MessageRenderer(
        event, subject, body, settings.base_url, attach_calendar=attach_calendar, preview=True
    )
    result.rendered = renderer.render(result.guest)
    chosen_channel = channels.lookup(channel or channels.EMAIL.name)
    # An empty form (every Communications page opens with one) has no e-mail to show yet.
    if chosen_channel == channels.EMAIL and body.strip():
        composer = chosen_channel.composer(settings, 0, renderer)
        result.mail = MailView.parse(composer.compose(0, result.rendered).data)
    return result
