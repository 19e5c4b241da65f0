"""Cheap MIME: one plain-text e-mail as bytes, without building an EmailMessage per recipient.

Building ``email.message.EmailMessage`` costs about a millisecond per recipient, the
whole CPU budget of a message at relay speed; this module writes the same headers
with the standard library's encoders directly. The body is quoted-printable, so a
5,000-character line travels as soft-wrapped 76-character lines (RFC 5322's
998-octet limit) and arrives intact after decoding.
"""

from __future__ import annotations

import binascii
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr

CRLF = b"\r\n"


def _one_line(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def encode_subject(subject: str) -> str:
    subject = _one_line(subject)
    if subject.isascii() and len(subject) < 900:
        return subject
    return Header(subject, "utf-8", maxlinelen=76, header_name="Subject").encode(linesep="\r\n")


def encode_address(name: str, address: str) -> str:
    return formataddr((_one_line(name), address.strip()), charset="utf-8")


def encode_body(text: str) -> bytes:
    """UTF-8, quoted-printable, CRLF line ends."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(normalized, quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", CRLF)


def display_address(name: str, address: str) -> str:
    """``Name <address>`` in plain UTF-8 (quoted when the name needs it), for JSON APIs."""
    name = _one_line(name)
    if not name:
        return address.strip()
    if any(char in name for char in '()<>[]:;@\\,."'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address.strip()}>"


def unsubscribe_headers(unsubscribe_url: str) -> tuple[tuple[str, str], ...]:
    """RFC 8058 one-click unsubscribe, as (name, value) pairs."""
    return (
        ("List-Unsubscribe", f"<{unsubscribe_url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


class MessageBuilder:
    """Formats the fixed headers once per batch; ``build`` adds the per-recipient ones."""

    def __init__(self, sender: str, message_id_domain: str):
        name, address = parseaddr(sender)
        self.sender_address = address or sender
        self.from_header = encode_address(name, self.sender_address)
        #: The same sender for an HTTP API, which takes UTF-8 as it is.
        self.from_display = display_address(name, self.sender_address)
        self.domain = message_id_domain

    def message_id(self, message_id: int, delivery_id: int) -> str:
        """Stable per delivery, so a re-send after a crash can be recognised as the same mail."""
        return f"<delivery-{delivery_id}.message-{message_id}@{self.domain}>"

    def build(
        self,
        *,
        to_name: str,
        to_email: str,
        subject: str,
        body: str,
        message_id: str,
        unsubscribe_url: str,
        date: float | None = None,
    ) -> bytes:
        headers = (
            f"From: {self.from_header}\r\n"
            f"To: {encode_address(to_name, to_email)}\r\n"
            f"Subject: {encode_subject(subject)}\r\n"
            f"Date: {formatdate(date, localtime=False)}\r\n"
            f"Message-ID: {message_id}\r\n"
            f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
        )
        return headers.encode("ascii") + encode_body(body)
