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
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formataddr, formatdate, parseaddr

from dashboard.messages.placeholders import Template

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


def _line_ends(text: str) -> str:
    """Every line end as LF (CRLF and a lone CR alike)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def encode_body(text: str) -> bytes:
    """UTF-8, quoted-printable, CRLF line ends."""
    normalized = _line_ends(text).encode("utf-8")
    encoded = binascii.b2a_qp(normalized, quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", CRLF)


@dataclass(frozen=True)
class QuotedText:
    """``encode_body`` of a text template, worked out once per message: the lines without
    a guest's value are encoded once, and for each recipient only the lines with one.

    Quoted-printable keeps no state from one line to the next, so this is exactly
    ``encode_body(template.render(values))``. A carriage return where a value meets the
    text could join two line ends into one; then the whole text is encoded as it is."""

    template: Template
    #: Encoded lines (with their CRLF), and (template, last) for a line with values.
    pieces: tuple[bytes | tuple[Template, bool], ...]
    names: tuple[str, ...]  # the values it takes, each once
    whole: bool  # a literal ends in a lone CR before a value: always encode the whole

    @classmethod
    def of(cls, template: Template) -> QuotedText:
        lines: list[tuple[list[str], list[str]]] = [([""], [])]
        for index, literal in enumerate(template.parts):
            if index:
                lines[-1][0].append("")
                lines[-1][1].append(template.names[index - 1])
            first, *rest = _line_ends(literal).split("\n")
            lines[-1][0][-1] += first
            lines += [([line], []) for line in rest]
        pieces: list[bytes | tuple[Template, bool]] = []
        for number, (parts, names) in enumerate(lines):
            last = number == len(lines) - 1
            if names:
                pieces.append((Template(tuple(parts), tuple(names)), last))
            elif pieces and isinstance(pieces[-1], bytes):
                pieces[-1] += quoted_line(parts[0], last)
            else:
                pieces.append(quoted_line(parts[0], last))
        whole = any(part.endswith("\r") for part in template.parts[:-1])
        return cls(template, tuple(pieces), tuple(dict.fromkeys(template.names)), whole)

    def render(self, values: Mapping[str, str]) -> bytes:
        if self.whole or any("\r" in values.get(name, "") for name in self.names):
            return encode_body(self.template.render(values))
        return b"".join(
            piece if isinstance(piece, bytes) else quoted_line(piece[0].render(values), piece[1])
            for piece in self.pieces
        )


#: A line that quoted-printable leaves as it is (cut into 76-character lines): printable
#: ASCII but "=", with tabs and spaces inside but not at its end.
_AS_IS = re.compile(r"(?:[\t !-<>-~]*[!-<>-~])?")
QP_WIDTH = 76


def quoted_line(line: str, last: bool = False) -> bytes:
    """``encode_body`` of one line (and its line end, unless ``last``), without the
    encoder's cost when there is nothing to encode, as for a line holding a link."""
    if line.isascii() and _AS_IS.fullmatch(line):
        data = line.encode("ascii")
        lines = []
        while len(data) > QP_WIDTH:  # soft breaks where binascii puts them
            lines.append(data[: QP_WIDTH - 1] + b"=")
            data = data[QP_WIDTH - 1 :]
        if data != b".":  # a lone dot is encoded
            return b"\r\n".join([*lines, data]) + (b"" if last else CRLF)
    return encode_body(line if last else line + "\n")


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
        encoded_body: bytes | None = None,
    ) -> bytes:
        """Plain text alone, or text and ``html`` as alternatives, with ``calendar`` attached.
        ``encoded_body`` is ``encode_body(body)`` when the caller has it already."""
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
        text = TEXT_HEADERS + CRLF + (encode_body(body) if encoded_body is None else encoded_body)
        if html is None:
            return headers + text
        alternative = self._multipart(
            b"alternative", self.alternative, [text, HTML_HEADERS + encode_html(html)]
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
