"""Channels: how a message reaches a guest (e-mail first; another channel plugs in here).

A channel says
- which guests can receive: the guest column holding their address and the rule for a
  usable address (these feed the live count, the preview, the skip reasons and dispatch);
- how to compose one recipient's payload from the rendered message;
- which transports can carry its payloads, and which setting picks one.

The dispatcher, the count and the preview ask the channel of the message; none of them
knows what an e-mail is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from dashboard.db_types import utcnow
from dashboard.dispatch.mime import (
    CALENDAR_NAME,
    MessageBuilder,
    QuotedText,
    unsubscribe_headers,
)
from dashboard.dispatch.transports import Payload, TransportSpec, idempotency_key
from dashboard.dispatch.transports import build as build_transport
from dashboard.events.models import Guest
from dashboard.suppressions import services as suppressions

if TYPE_CHECKING:
    from dashboard.dispatch.settings import DispatchSettings
    from dashboard.events.calendar import Invite
    from dashboard.messages.layout import MailLayout
    from dashboard.messages.rendering import MessageRenderer, RenderedMessage


class Composer(Protocol):
    """Made once per batch; ``compose`` runs once per recipient and must be cheap."""

    def compose(self, delivery_id: int, rendered: RenderedMessage) -> Payload: ...


class Channel:
    """One way of reaching guests. Subclasses fill in the class attributes and methods."""

    #: Stored on the message (``messages.channel``) and shown in the API.
    name: str = ""
    label: str = ""
    #: The configuration key naming the transport, its default, and what may be named.
    transport_setting: str = ""
    default_transport: str = ""
    transports: frozenset[str] = frozenset()
    #: The skip reason of a guest without a usable address.
    no_address_reason: str = "no usable address"

    @property
    def value(self) -> str:  # the same face as the other enums of a message
        return self.name

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Channel):
            return other.name == self.name
        return isinstance(other, str) and other == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def address(self) -> sa.ColumnElement[str]:
        """The guest column holding this channel's address."""
        raise NotImplementedError

    def usable_address(self) -> sa.ColumnElement[bool]:
        raise NotImplementedError

    def suppression(self) -> sa.ColumnElement[str | None] | None:
        """SQL: why the guest's address is on this channel's suppression list (NULL if it is
        not), or None for a channel that keeps no such list."""
        return None

    def composer(
        self, settings: DispatchSettings, message_id: int, renderer: MessageRenderer
    ) -> Composer:
        """Made once per batch, with the message's renderer (its event and sources): the
        place for any work that is the same for every recipient."""
        raise NotImplementedError

    def transport(self, config: dict[str, Any], mail_state: Any) -> TransportSpec:
        """The transport the configuration picks for this channel."""
        name = config.get(self.transport_setting) or self.default_transport
        if name not in self.transports:
            raise LookupError(f"the {self.label} channel cannot be sent through {name!r}")
        return build_transport(name, config, mail_state)


# --- e-mail --------------------------------------------------------------------------------


@dataclass
class EmailComposer:
    """Per recipient: the layout's text and HTML with the guest's values, the invitation's
    URL line, and the MIME encoding. Everything else was done once, in ``build``."""

    builder: MessageBuilder
    message_id: int
    layout: MailLayout
    invite: Invite | None = None
    #: The layout's text part as quoted-printable, encoded once where no value stands.
    quoted: QuotedText = field(init=False)

    def __post_init__(self) -> None:
        self.quoted = QuotedText.of(self.layout.text)

    @classmethod
    def build(
        cls, settings: DispatchSettings, message_id: int, renderer: MessageRenderer
    ) -> EmailComposer:
        from dashboard.events.calendar import Invite
        from dashboard.messages.layout import MailLayout

        event = renderer.event
        builder = MessageBuilder(
            settings.sender,
            settings.message_id_domain,
            sender_name=event.sender_name,
            reply_to=event.reply_to,
        )
        invite = Invite(event, renderer.base_url, utcnow()) if renderer.attach_calendar else None
        return cls(builder, message_id, MailLayout.build(renderer), invite)

    def compose(self, delivery_id: int, rendered: RenderedMessage) -> Payload:
        builder = self.builder
        reference = builder.message_id(self.message_id, delivery_id)
        text, html = self.layout.render(rendered.values)
        calendar = self.invite.render(rendered.values["rsvp_link"]) if self.invite else None
        data = builder.build(
            to_name=rendered.to_name,
            to_email=rendered.to_email,
            subject=rendered.subject,
            body=text,
            html=html,
            calendar=calendar,
            message_id=reference,
            unsubscribe_url=rendered.unsubscribe_url,
            encoded_body=self.quoted.render(rendered.values),
        )
        return Payload(
            delivery_id=delivery_id,
            sender=builder.sender_address,
            recipient=rendered.to_email,
            data=data,
            message_id=reference,
            idempotency_key=idempotency_key(delivery_id),
            subject=rendered.subject,
            body=text,
            from_header=builder.from_display,
            html=html,
            reply_to=builder.reply_to_address,
            headers=unsubscribe_headers(rendered.unsubscribe_url),
            attachments=((CALENDAR_NAME, calendar),) if calendar else (),
        )


#: Characters that email-validator never lets into a stored address (no quoted local
#: parts, comments, domain literals or route syntax) and that smtplib would parse.
NEVER_IN_AN_ADDRESS = ' \t\r\n()<>,;:\\"[]'


@functools.cache
def _usable_email() -> sa.ColumnElement[bool]:
    """One @ with text on both sides, and none of the characters that a valid stored
    address never has but a mail library would read as syntax: rows stored before
    addresses were validated are skipped with the reason, never mailed to a re-parsed
    address (``flask check-guest-emails`` lists them). Built once: its 17 LIKEs (most of them
    escaped) took longer to build than the recipient count takes to run."""
    return sa.and_(
        Guest.email.like("%_@_%"),
        ~Guest.email.like("%@%@%"),
        *(~Guest.email.contains(char, autoescape=True) for char in NEVER_IN_AN_ADDRESS),
    )


class EmailChannel(Channel):
    name = "email"
    label = "E-mail"
    transport_setting = "MAIL_TRANSPORT"
    default_transport = "log"
    transports = frozenset({"resend", "smtp", "ses", "log"})
    no_address_reason = "no usable e-mail address"

    def address(self) -> sa.ColumnElement[str]:
        return Guest.email  # type: ignore[return-value]

    def usable_address(self) -> sa.ColumnElement[bool]:
        return _usable_email()

    def suppression(self) -> sa.ColumnElement[str | None]:
        return suppressions.reason_for(Guest.email_key)  # type: ignore[return-value]

    def composer(
        self, settings: DispatchSettings, message_id: int, renderer: MessageRenderer
    ) -> Composer:
        return EmailComposer.build(settings, message_id, renderer)


# --- the registry ----------------------------------------------------------------------------

EMAIL = EmailChannel()
_CHANNELS: dict[str, Channel] = {EMAIL.name: EMAIL}


def register(channel: Channel) -> None:
    _CHANNELS[channel.name] = channel


def unregister(name: str) -> None:
    if name != EMAIL.name:
        _CHANNELS.pop(name, None)


def get(name: Channel | str) -> Channel:
    """The channel called ``name``; LookupError for one that is not available here."""
    if isinstance(name, Channel):
        return name
    try:
        return _CHANNELS[name]
    except (KeyError, TypeError):
        raise LookupError(f"no channel named {name!r}") from None


class Unavailable(Channel):
    """A channel a stored message names but this installation does not provide: nobody
    can receive through it, so a send records every guest as skipped with the reason."""

    no_address_reason = "this channel is not available here"

    def __init__(self, name: str):
        self.name = self.label = name

    def address(self) -> sa.ColumnElement[str]:
        return Guest.email  # type: ignore[return-value]

    def usable_address(self) -> sa.ColumnElement[bool]:
        return sa.false()


def lookup(name: str) -> Channel:
    """Like ``get``, but a stored name that is not registered gives ``Unavailable``."""
    return _CHANNELS.get(name) or Unavailable(name)


def available() -> Iterator[Channel]:
    return iter(list(_CHANNELS.values()))
