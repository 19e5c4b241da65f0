"""Cheap MIME: one e-mail as bytes, without building an EmailMessage per recipient.

Building ``email.message.EmailMessage`` costs about a millisecond per recipient, the
whole CPU budget of a message at relay speed; this module writes the same headers and
parts with the standard library's encoders directly. The text part is quoted-printable,
so a 5,000-character line travels as soft-wrapped 76-character lines (RFC 5322's
998-octet limit) and arrives intact after decoding; the HTML part is 7bit in long lines
when it can be (``encode_html``); the calendar file is base64.

An e-mail with an HTML part is ``multipart/alternative`` (text, then HTML); with a
calendar invitation that is wrapped in ``multipart/mixed`` with the ``.ics`` attached.
The boundaries start with ``=_``, which quoted-printable and base64 cannot produce, and
carry a random token drawn per batch, which the 7bit HTML part cannot know; so no
content can end a part early.
"""

from __future__ import annotations

import binascii
import secrets
from email.utils import formataddr, formatdate, parseaddr

CRLF = b"\r\n"
TEXT_HEADERS = (
    b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
)
HTML_HEADERS = b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: '
MAX_LINE = 998
CALENDAR_NAME = "invite.ics"
CALENDAR_HEADERS = (
    f'Content-Type: text/calendar; charset="utf-8"; method=PUBLISH; name="{CALENDAR_NAME}"\r\n'
    f'Content-Disposition: attachment; filename="{CALENDAR_NAME}"\r\n'
    "Content-Transfer-Encoding: base64\r\n"
).encode("ascii")


def _one_line(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


#: UTF-8 bytes per RFC 2047 encoded word: 45 make 60 base64 characters, a 72-character
#: word; the first word shares its line with "Subject: ", so it carries fewer.
WORD_BYTES = 45
FIRST_WORD_BYTES = 39


def encode_subject(subject: str) -> str:
    """The subject as it is when plain ASCII, else as base64 encoded words (RFC 2047), each
    on its own folded line of at most 76 characters and cut between characters, never
    inside one (``email.header.Header`` measured every byte: 15 times the CPU)."""
    subject = _one_line(subject)
    if subject.isascii() and len(subject) < 900:
        return subject
    data = subject.encode("utf-8")
    words = []
    start, limit = 0, FIRST_WORD_BYTES
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte
            end -= 1
        words.append(
            "=?utf-8?b?" + binascii.b2a_base64(data[start:end], newline=False).decode() + "?="
        )
        start, limit = end, WORD_BYTES
    return "\r\n ".join(words)


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


def encode_html(html: str) -> bytes:
    """The HTML part's transfer encoding header line, a blank line, and the content.

    HTML needs no line breaks of its own, so a layout written in long lines, with every
    character beyond ASCII as a character reference, travels as 7bit in a handful of
    lines (a mail server's work grows with the lines, far more than with their length).
    A copy with a line over 998 octets (a guest's very long value) goes quoted-printable.
    """
    data = html.encode("ascii", "xmlcharrefreplace")
    if b"\r" not in data and max(map(len, data.split(b"\n"))) <= MAX_LINE:
        return b"7bit\r\n\r\n" + data.replace(b"\n", CRLF)
    return b"quoted-printable\r\n\r\n" + encode_body(html)


def encode_attachment(data: bytes) -> bytes:
    """Base64 in lines of 76 characters (57 bytes each), CRLF line ends."""
    lines = (binascii.b2a_base64(data[i : i + 57]) for i in range(0, len(data), 57))
    return b"".join(lines).replace(b"\n", CRLF)


class MessageBuilder:
    """Formats the fixed headers once per batch; ``build`` adds the per-recipient ones.

    ``sender_name`` replaces the display name of ``sender`` (the address stays, for SPF
    and DKIM); ``reply_to`` adds a Reply-To header.
    """

    def __init__(
        self, sender: str, message_id_domain: str, *, sender_name: str = "", reply_to: str = ""
    ):
        name, address = parseaddr(sender)
        self.sender_address = address or sender
        self.from_header = encode_address(sender_name or name, self.sender_address)
        self.reply_to = f"Reply-To: {encode_address('', reply_to)}\r\n" if reply_to else ""
        #: The same sender and Reply-To for an HTTP API, which takes UTF-8 as it is.
        self.from_display = display_address(sender_name or name, self.sender_address)
        self.reply_to_address = reply_to or None
        self.domain = message_id_domain
        token = secrets.token_hex(12)
        self.mixed = f"=_mixed_{token}".encode("ascii")
        self.alternative = f"=_alt_{token}".encode("ascii")

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
        html: str | None = None,
        calendar: bytes | None = None,
        date: float | None = None,
    ) -> bytes:
        """Plain text alone, or text and ``html`` as alternatives, with ``calendar`` attached."""
        headers = (
            f"From: {self.from_header}\r\n"
            f"{self.reply_to}"
            f"To: {encode_address(to_name, to_email)}\r\n"
            f"Subject: {encode_subject(subject)}\r\n"
            f"Date: {formatdate(date, localtime=False)}\r\n"
            f"Message-ID: {message_id}\r\n"
            f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            "MIME-Version: 1.0\r\n"
        ).encode("ascii")
        if html is None:
            return headers + TEXT_HEADERS + CRLF + encode_body(body)
        alternative = self._multipart(
            b"alternative",
            self.alternative,
            [TEXT_HEADERS + CRLF + encode_body(body), HTML_HEADERS + encode_html(html)],
        )
        if calendar is None:
            return headers + alternative
        invitation = CALENDAR_HEADERS + CRLF + encode_attachment(calendar)
        return headers + self._multipart(b"mixed", self.mixed, [alternative, invitation])

    @staticmethod
    def _multipart(subtype: bytes, boundary: bytes, parts: list[bytes]) -> bytes:
        """Content-Type header, blank line, then each part (its own headers and content)."""
        delimiter = b"\r\n--" + boundary + CRLF
        return (
            b"Content-Type: multipart/" + subtype + b'; boundary="' + boundary + b'"\r\n\r\n'
            + b"--" + boundary + CRLF
            + delimiter.join(parts)
            + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
