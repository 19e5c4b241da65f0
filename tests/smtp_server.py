"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

``rules`` let a test make the server answer some recipients with 4xx/5xx, and
``stop()``/``start()`` simulate an outage on the same port. It offers PIPELINING (RFC
2920) as production relays do; ``SMTPServer(pipelining=False)`` is a server that does not,
which the client must then talk to one command at a time.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    #: When the server accepted it (seconds since the epoch).
    at: float = field(default_factory=time.time)

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Recorder:
    """aiosmtpd handler. ``rules`` maps a substring of the recipient to an SMTP reply."""

    received: list[Received] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    #: The reply to MAIL FROM instead of 250 (a refused sender), when set.
    mail_reply: str | None = None
    #: Offer PIPELINING in the EHLO reply.
    pipelining: bool = True
    #: A careless server: a recipient refused by ``rules`` still counts, so DATA is taken.
    careless: bool = False
    #: Seconds the server takes to accept each message (a relay's pace); each connection
    #: waits on its own, as a real server's do.
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        for needle, reply in self.rules.items():
            if needle in address:
                if self.careless:
                    envelope.rcpt_tos.append(address)
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(
        self,
        port: int | None = None,
        login: tuple[str, str] | None = None,
        delay: float = 0.0,
        pipelining: bool = True,
    ):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.handler = Recorder(delay=delay, pipelining=pipelining)
        #: (user, password) this server accepts in AUTH; None: it offers no AUTH.
        self.login = login
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        user, password = auth_data.login.decode(), auth_data.password.decode()
        return AuthResult(success=(user, password) == self.login, handled=False)

    def start(self) -> SMTPServer:
        auth = {}
        if self.login is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            data_size_limit=50 * 1024 * 1024,
            **auth,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def recipients(self) -> list[str]:
        return [rcpt for item in self.received for rcpt in item.rcpt_tos]

    def messages_to(self, address: str) -> list[EmailMessage]:
        return [item.message for item in self.received if address in item.rcpt_tos]

    def config(self) -> dict[str, str]:
        """Environment for the app to send through this server."""
        return {"MAIL_SERVER": self.host, "MAIL_PORT": str(self.port), "MAIL_TRANSPORT": "smtp"}
