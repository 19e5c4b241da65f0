"""Who an event's e-mails come from: the From display name and the Reply-To address.

The From address itself stays MAIL_DEFAULT_SENDER's (the domain that passes SPF and
DKIM); a host only names the sender and says where replies go.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.errors import ValidationError
from dashboard.events.addresses import normalize_email
from dashboard.events.models import Event

MAX_SENDER_NAME = 100
MAX_ADDRESS = 254


@dataclass(frozen=True)
class Identity:
    sender_name: str
    reply_to: str

    def apply(self, event: Event) -> None:
        event.sender_name, event.reply_to = self.sender_name, self.reply_to


def clean_reply_to(raw: str | None) -> str:
    """An address a mail server will accept in a header: empty, or valid and ASCII (an
    internationalized domain is stored in its IDNA form)."""
    address = (raw or "").strip()
    if not address:
        return ""
    if len(address) > MAX_ADDRESS:
        raise ValidationError({"reply_to": f"At most {MAX_ADDRESS} characters."})
    return normalize_email(address, "reply_to")


def clean_sender_name(raw: str | None) -> str:
    """One line of text: runs of white space (line breaks included) become one space."""
    name = " ".join((raw or "").split())
    if any(ord(char) < 32 or 127 <= ord(char) < 160 for char in name):
        raise ValidationError({"sender_name": "The sender name contains control characters."})
    if len(name) > MAX_SENDER_NAME:
        raise ValidationError({"sender_name": f"At most {MAX_SENDER_NAME} characters."})
    return name


def identity(
    sender_name: str | None, reply_to: str | None, current: Event | None = None
) -> Identity:
    """The cleaned pair; a None field keeps ``current``'s value. Every bad field at once."""
    errors: dict[str, str] = {}
    name = current.sender_name if current is not None and sender_name is None else sender_name
    address = current.reply_to if current is not None and reply_to is None else reply_to
    try:
        name = clean_sender_name(name)
    except ValidationError as error:
        errors.update(error.errors)
    try:
        address = clean_reply_to(address)
    except ValidationError as error:
        errors.update(error.errors)
    if errors:
        raise ValidationError(errors)
    return Identity(name or "", address or "")
