"""Transports: one small class each behind ``open / send_group / close``.

A transport carries a group of composed payloads and returns one result per payload:
SMTP sends them one by one over its connection, an HTTP provider may send a whole group
in one request (its ``group_size``). ``send`` never raises for a recipient's problem; it
returns a ``SendResult`` that says sent, or failed with the error classified as
transient (retry later) or permanent (do not retry). What is nobody's fault is raised (or
returned in place of a result) as ``Unreachable`` and charged to nobody:

- ``Unreachable`` itself: the server cannot be reached; the batch pauses and resumes later;
- ``SlowDown``: the server asked us to send less (HTTP 429 with ``Retry-After``, a
  provider's quota, SMTP 421/450/451/452/454): the whole transport waits, then the same
  payloads go again;
- ``Refused``: the server refused our credentials (HTTP 401/403, SMTP 535): the batch
  stops with an alert on the message page until the setting is fixed.

Transports are registered by name (``register``); a channel names the ones that can
carry its payloads, and the configuration picks one of them.
"""

from __future__ import annotations

import itertools
import logging
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
    #: What an HTTP API takes instead of the MIME bytes (made from the same values once,
    #: so nothing is built twice): the formatted From, the HTML part and Reply-To when the
    #: message has them, and the extra headers (List-Unsubscribe and its one-click Post).
    from_header: str = ""
    html: str | None = None
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    #: Files attached to the message, as (filename, content): the calendar invitation.
    attachments: tuple[tuple[str, bytes], ...] = ()


def idempotency_key(delivery_id: int) -> str:
    return f"delivery-{delivery_id}"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None
    kind: ErrorKind | None = None
    provider_id: str | None = None
    dry_run: bool = False
    #: A permanent refusal of the address itself (SMTP 5xx on RCPT for an unknown mailbox, a
    #: provider's 422 for the recipient): the address joins the suppression list.
    suppress: bool = False

    @classmethod
    def sent(cls, provider_id: str | None = None) -> SendResult:
        return cls(True, provider_id=provider_id)

    @classmethod
    def transient(cls, error: str) -> SendResult:
        return cls(False, error=error, kind=ErrorKind.TRANSIENT)

    @classmethod
    def permanent(cls, error: str, *, suppress: bool = False) -> SendResult:
        return cls(False, error=error, kind=ErrorKind.PERMANENT, suppress=suppress)


class Unreachable(Exception):
    """The server cannot be reached; nothing was charged to the recipient."""


class SlowDown(Unreachable):
    """The server asked us to send less. The whole transport waits ``retry_after`` seconds
    (when the server said) and the same payloads go again; nobody's attempt is spent.

    ``quota``: a provider's daily or monthly quota is used up (a long wait).
    ``recipient``: the answer concerned one recipient's transaction (an SMTP 4xx to RCPT
    or DATA): if it keeps coming after the waits, it becomes that recipient's transient
    failure, so one busy mailbox cannot hold a batch back for ever.
    """

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        quota: bool = False,
        recipient: bool = False,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.quota = quota
        self.recipient = recipient


class Refused(Unreachable):
    """The server refused our credentials or account: nothing can be sent until someone
    fixes ``setting``; the batch stops with an alert and nobody's attempt is spent."""

    def __init__(self, message: str, setting: str = ""):
        super().__init__(message)
        self.setting = setting


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


register("log", lambda config, mail: TransportSpec("log", LogTransport))


def _smtp(config: dict[str, Any], mail_state: Any) -> TransportSpec:
    from dashboard.dispatch.smtp import SMTPTransport

    timeout = float(config.get("MAIL_TIMEOUT_SECONDS", 30.0))
    return TransportSpec("smtp", lambda: SMTPTransport(mail_state, timeout=timeout))


def _resend(config: dict[str, Any], mail_state: Any) -> TransportSpec:
    from dashboard.dispatch.resend import resend_spec

    return resend_spec(config)


def _ses(config: dict[str, Any], mail_state: Any) -> TransportSpec:
    from dashboard.dispatch.ses import ses_spec  # boto3 is imported only where SES is used

    return ses_spec(config)


register("smtp", _smtp)
register("resend", _resend)
register("ses", _ses)
