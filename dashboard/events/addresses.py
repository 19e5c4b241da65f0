"""What makes a guest's fields valid, and the one form of an address that is stored and mailed.

Every way a guest arrives (the form, a CSV import, the API) goes through ``clean_guest``,
so the address on the row is exactly the address the transport hands to the server.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from dashboard.errors import ValidationError
from dashboard.events.models import Guest, RsvpStatus

MAX_NAME = 200
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def clean_guest(
    name: str | None, email: str | None, rsvp_status: str | None
) -> tuple[str, str, RsvpStatus]:
    """Validate one guest's fields; raise ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    email = (email or "").strip()
    if not name:
        errors["name"] = "Name is required."
    elif _has_control_characters(name):
        errors["name"] = "Name contains control characters."
    elif len(name) > MAX_NAME:
        errors["name"] = f"Name is longer than {MAX_NAME} characters."
    if not email:
        errors["email"] = "E-mail is required."
    else:
        try:
            email = normalize_email(email)
        except ValidationError as error:
            errors.update(error.errors)
    raw_status = (rsvp_status or "pending").strip().lower()
    try:
        status = RsvpStatus(raw_status)
    except ValueError:
        errors["rsvp_status"] = (
            f"{raw_status!r} is not an RSVP status (attending, pending, declined, maybe)."
        )
        status = RsvpStatus.PENDING
    if errors:
        raise ValidationError(errors)
    return name, email, status


def _has_control_characters(value: str) -> bool:
    return CONTROL_RE.search(value) is not None


def normalize_email(raw: str, field: str = "email") -> str:
    """The address as it is stored and mailed, or ValidationError with the reason.

    ``email-validator`` checks the syntax (no DNS lookup): no comments, quotes, brackets or
    colons that a mail library would read differently from what is stored. The result is
    the normalized form in ASCII (a domain in Unicode becomes its IDNA spelling), so the
    SMTP envelope carries exactly the stored text. A local part in Unicode is refused:
    most relays cannot deliver to one (SMTPUTF8).
    """
    text = (raw or "").strip()
    if _has_control_characters(text):
        raise ValidationError({field: f"{text!r} is not a valid e-mail address."})
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise ValidationError({field: f"{text!r} is not a valid e-mail address: {error}"}) from None
    return result.ascii_email or result.normalized


def email_key(raw: str) -> str:
    """The key a guest with this address is stored under (its text lower-cased when it is
    not a valid address, so a lookup by it finds nothing)."""
    try:
        return Guest.key_for(normalize_email(raw))
    except ValidationError:
        return Guest.key_for(raw or "")
