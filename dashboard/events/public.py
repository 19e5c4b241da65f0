"""Guest-facing pages (no account): RSVP and one-click unsubscribe (RFC 8058)."""

from flask import Blueprint

bp = Blueprint("public", __name__)

RSVP_RULE = "/r/<token>"
UNSUBSCRIBE_RULE = "/u/<token>"


def rsvp_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/r/{token}"


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"
