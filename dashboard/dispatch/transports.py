"""Transports: one small class each behind ``open / send_group / close``.

A transport carries a group of composed payloads and returns one result per payload:
SMTP sends them one by one over its connection, an HTTP provider may send a whole group
in one request (its ``group_size``). ``send`` never raises for a recipient's problem; it
returns a ``SendResult`` that says sent, or failed with the error classified as
transient (retry later) or permanent (do not retry). ``Unreachable`` is raised when the
server cannot be reached at all, so the dispatcher pauses the batch instead of charging
an attempt to every recipient.

Transports are registered by name (``register``); a channel names the ones that can
carry its payloads, and the configuration picks one of them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import smtplib
import ssl
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard.dispatch.models import ErrorKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Payload:
    """One recipient's composed message, ready for the wire."""

    delivery_id: int
    sender: str
    #: The envelope recipient: exactly the address stored for the guest, never re-parsed.
    recipient: str
    data: bytes
    message_id: str
    #: Stable per delivery across retries and processes: a provider that saw it already
    #: answers with the first result instead of sending again.
    idempotency_key: str
    subject: str = ""
    body: str = ""


def idempotency_key(delivery_id: int) -> str:
    return f"delivery-{delivery_id}"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None
    kind: ErrorKind | None = None
    provider_id: str | None = None
    dry_run: bool = False

    @classmethod
    def sent(cls, provider_id: str | None = None) -> SendResult:
        return cls(True, provider_id=provider_id)

    @classmethod
    def transient(cls, error: str) -> SendResult:
        return cls(False, error=error, kind=ErrorKind.TRANSIENT)

    @classmethod
    def permanent(cls, error: str) -> SendResult:
        return cls(False, error=error, kind=ErrorKind.PERMANENT)


class Unreachable(Exception):
    """The server cannot be reached; nothing was charged to the recipient."""


class Transport:
    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect (or do nothing); raise Unreachable when the server is down."""

    def send(self, payload: Payload) -> SendResult:
        raise NotImplementedError

    def send_group(self, payloads: Sequence[Payload]) -> list[SendResult | Unreachable]:
        """One result per payload, in order. Once the server is unreachable the rest of the
        group is not tried (and not charged to anyone)."""
        results: list[SendResult | Unreachable] = []
        for payload in payloads:
            try:
                results.append(self.send(payload))
            except Unreachable as error:
                return results + [error] * (len(payloads) - len(results))
        return results

    def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect."""


@dataclass(frozen=True)
class TransportSpec:
    """How to make one transport per sending thread, and how many payloads a call carries."""

    name: str
    make: Callable[[], Transport]
    group_size: int = 1


#: name -> builder of a spec from the app's configuration and Flask-Mail's state.
TransportBuilder = Callable[[dict[str, Any], Any], TransportSpec]
_REGISTRY: dict[str, TransportBuilder] = {}


def register(name: str, builder: TransportBuilder) -> None:
    _REGISTRY[name] = builder


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def build(name: str, config: dict[str, Any], mail_state: Any) -> TransportSpec:
    if config.get("DISPATCH_DRY_RUN"):
        return TransportSpec("dry-run", DryRunTransport)
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no transport named {name!r}") from None
    return builder(config, mail_state)


def classify_code(code: int, text: str) -> SendResult:
    message = f"{code} {text}".strip()
    if 400 <= code < 500:
        return SendResult.transient(message)
    return SendResult.permanent(message)


def _decode(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


#: What may travel between the brackets of ``RCPT TO:<...>`` as it is: printable ASCII
#: without spaces or brackets (stored addresses are normalized ASCII; see events.services).
ENVELOPE_ADDRESS = re.compile(r"^[!-;=?-~]+@[!-;=?-~]+$")


def _send_to_exactly(conn: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> dict:
    """``conn.sendmail(sender, [recipient], data)``, except that the recipient goes on the
    wire exactly as given. smtplib re-parses every address (``quoteaddr``), and what it
    makes of ``root)@example.net`` is ``<root>``: a local mailbox, while the log would say
    the stored address was mailed. Raises what sendmail raises, so callers classify alike."""
    conn.ehlo_or_helo_if_needed()
    options = [f"size={len(data)}"] if conn.does_esmtp and conn.has_extn("size") else []
    code, reply = conn.mail(sender, options)
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    conn.putcmd("rcpt", f"TO:<{recipient}>")
    code, reply = conn.getreply()
    if code not in (250, 251):
        _abandon(conn, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = conn.data(data)
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPDataError(code, reply)
    return {}


def _abandon(conn: smtplib.SMTP, code: int) -> None:
    """What sendmail does after a refusal: 421 means the server is closing, else RSET."""
    if code == 421:
        conn.close()
    else:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.rset()


class SMTPTransport(Transport):
    """One reused SMTP connection, configured from Flask-Mail's settings.

    A dropped connection is reopened once; if that fails the server is unreachable.
    """

    def __init__(self, mail_state: Any, timeout: float = 30.0):
        self.mail = mail_state
        self.timeout = timeout
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        mail = self.mail
        try:
            if mail.use_ssl:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(mail.server, mail.port, timeout=self.timeout)
            else:
                conn = smtplib.SMTP(mail.server, mail.port, timeout=self.timeout)
            if mail.use_tls:
                conn.starttls(context=ssl.create_default_context())
            if mail.username and mail.password:
                conn.login(mail.username, mail.password)
        except smtplib.SMTPAuthenticationError as error:
            raise Unreachable(
                f"SMTP login refused: {error.smtp_code} {_decode(error.smtp_error)}"
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            raise Unreachable(f"cannot connect to {mail.server}:{mail.port}: {error}") from error
        return conn

    def open(self) -> None:
        if self.conn is None:
            self.conn = self._connect()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (OSError, smtplib.SMTPException):
                self.conn.close()
            self.conn = None

    def _reconnect(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None
        self.conn = self._connect()

    def send(self, email: Payload) -> SendResult:
        self.open()
        try:
            return self._send_once(email)
        except OSError as error:  # includes SMTPServerDisconnected, timeouts, resets
            log.warning("SMTP connection lost (%s); reconnecting", error)
            self._reconnect()  # raises Unreachable if the server is gone
            try:
                return self._send_once(email)
            except OSError as again:
                self.conn = None
                return SendResult.transient(f"connection lost: {again or type(again).__name__}")

    def _send_once(self, email: Payload) -> SendResult:
        assert self.conn is not None
        if not ENVELOPE_ADDRESS.match(email.recipient):
            return SendResult.permanent(
                f"invalid address: {email.recipient!r} cannot be sent as stored"
            )
        try:
            refused = _send_to_exactly(self.conn, email.sender, email.recipient, email.data)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            self._reset()
            return classify_code(code, _decode(text))
        except smtplib.SMTPSenderRefused as error:
            self._reset()
            return classify_code(error.smtp_code, _decode(error.smtp_error))
        except smtplib.SMTPDataError as error:
            self._reset()
            return classify_code(error.smtp_code, _decode(error.smtp_error))
        except smtplib.SMTPResponseException as error:
            self._reset()
            return classify_code(error.smtp_code, _decode(error.smtp_error))
        except smtplib.SMTPNotSupportedError as error:
            return SendResult.permanent(str(error))
        except UnicodeEncodeError as error:
            return SendResult.permanent(f"invalid address: {error}")
        if refused:
            code, text = next(iter(refused.values()))
            return classify_code(code, _decode(text))
        return SendResult.sent(email.message_id)

    def _reset(self) -> None:
        try:
            assert self.conn is not None
            self.conn.rset()
        except (smtplib.SMTPException, OSError):
            pass


#: What the log transport sent most recently, newest first, shown on the Outbox page.
OUTBOX: deque[dict[str, Any]] = deque(maxlen=200)
_outbox_lock = threading.Lock()
_outbox_ids = itertools.count(1)


class LogTransport(Transport):
    """Development transport: logs each e-mail and keeps the last ones for the Outbox page."""

    def send(self, email: Payload) -> SendResult:
        log.info("mail to %s: %s (%s)", email.recipient, email.subject, email.message_id)
        with _outbox_lock:
            OUTBOX.appendleft(
                {
                    "id": next(_outbox_ids),
                    "data": email.data,  # the e-mail exactly as it would have been sent
                    "at": datetime.now(UTC),
                    "to": email.recipient,
                    "subject": email.subject,
                    "body": email.body,
                    "message_id": email.message_id,
                    "size": len(email.data),
                }
            )
        return SendResult.sent(email.message_id)


class DryRunTransport(Transport):
    """DISPATCH_DRY_RUN: sends nothing, and says so (recorded as dry-run, never as sent)."""

    def send(self, email: Payload) -> SendResult:
        log.info("dry run: would mail %s: %s", email.recipient, email.subject)
        return SendResult(False, error="dry run: nothing was sent", dry_run=True)


register(
    "smtp",
    lambda config, mail: TransportSpec(
        "smtp",
        lambda: SMTPTransport(mail, timeout=float(config.get("MAIL_TIMEOUT_SECONDS", 30.0))),
    ),
)
register("log", lambda config, mail: TransportSpec("log", LogTransport))
