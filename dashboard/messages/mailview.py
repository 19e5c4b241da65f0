"""Showing an e-mail exactly as it was sent: its parts read back from the bytes, and its
HTML served as a document of its own for a sandboxed frame.

The frame's document carries its own Content-Security-Policy (the page's own policy does
not reach a document loaded from a URL): the mail's inline styles and its images may
load, nothing else (no script, no form, no plugin, no base URL), only this site may frame
it, and it is sandboxed by the policy as well. The page shows it in ``<iframe sandbox>`` without
``allow-scripts``, so even a script that got into a mail could not run. Links are made
inert (``href`` becomes ``data-href``): clicking in a preview goes nowhere, and the
inlined styles keep them looking like links.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage

from flask import Response

FRAME_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; "
    "sandbox"  # sandboxed even when its URL is opened on its own, outside the frame
)
_HREF = re.compile(r"(<a\b[^>]*?\s)href=", re.IGNORECASE)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class MailView:
    """The parts of one sent e-mail, decoded."""

    headers: dict[str, str]
    text: str
    html: str | None
    attachments: list[Attachment] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> MailView:
        message: EmailMessage = email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[assignment]
        headers = {
            name: str(message[name])
            for name in ("From", "Reply-To", "To", "Subject", "Date")
            if message[name] is not None
        }
        text_part = message.get_body(("plain",))
        html_part = message.get_body(("html",))
        attachments = [
            Attachment(
                part.get_filename() or "attachment",
                part.get_content_type(),
                len(part.get_payload(decode=True) or b""),
            )
            for part in message.iter_attachments()
        ]
        return cls(
            headers,
            text_part.get_content() if text_part is not None else "",
            html_part.get_content() if html_part is not None else None,
            attachments,
        )


def inert(html: str) -> str:
    """The same page with links that lead nowhere (the HTML is otherwise untouched)."""
    return _HREF.sub(r"\1data-href=", html)


def frame_response(html: str | None, status: int = 200) -> Response:
    """A mail's HTML as the document of a sandboxed frame (see the module docstring)."""
    body = inert(html) if html else EMPTY_FRAME
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = FRAME_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


EMPTY_FRAME = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Nothing to show</title>'
    '</head><body><p style="font-family: sans-serif; color: #6b7280;">Nothing to show.</p>'
    "</body></html>"
)
