"""Transports and MIME in isolation, against the real SMTP fixture."""

from __future__ import annotations

import email
import email.policy
from types import SimpleNamespace

import pytest

from dashboard.dispatch.mime import MessageBuilder
from dashboard.dispatch.models import ErrorKind
from dashboard.dispatch.transports import (
    Payload,
    Refused,
    SlowDown,
    SMTPTransport,
    Unreachable,
    idempotency_key,
)
from tests.smtp_server import SMTPServer


def mail_state(server):
    return SimpleNamespace(
        server=server.host,
        port=server.port,
        use_ssl=False,
        use_tls=False,
        username=None,
        password=None,
    )


def outgoing(n: int, to: str = "someone@example.org") -> Payload:
    builder = MessageBuilder("Dashboard <noreply@example.com>", "example.com")
    data = builder.build(
        to_name="Some One",
        to_email=to,
        subject=f"Hello {n}",
        body="Body\n",
        message_id=builder.message_id(1, n),
        unsubscribe_url="http://x/u/t",
    )
    return Payload(
        n, builder.sender_address, to, data, builder.message_id(1, n), idempotency_key(n)
    )


def test_connection_is_reused_and_reopened_after_a_drop(smtp_server):
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    assert transport.send(outgoing(1)).ok
    first_conn = transport.conn
    assert transport.send(outgoing(2)).ok
    assert transport.conn is first_conn  # one connection for many messages

    smtp_server.stop()  # the server drops every connection...
    smtp_server.start()  # ...and comes back on the same port
    result = transport.send(outgoing(3))
    assert result.ok and transport.conn is not first_conn
    assert len(smtp_server.received) == 3
    transport.close()


def test_server_gone_raises_unreachable(smtp_server):
    transport = SMTPTransport(mail_state(smtp_server), timeout=2)
    smtp_server.stop()
    with pytest.raises(Unreachable, match="cannot connect"):
        transport.send(outgoing(1))


@pytest.mark.parametrize(
    "reply, kind, suppress",
    [
        ("452 4.2.2 Mailbox full", ErrorKind.TRANSIENT, False),  # about that mailbox
        ("450 4.1.8 Sender domain has no MX", ErrorKind.TRANSIENT, False),
        ("550 5.1.1 User unknown", ErrorKind.PERMANENT, True),  # a hard bounce
        ("553 5.1.3 Bad address", ErrorKind.PERMANENT, True),
        ("552 5.2.2 Mailbox full for good", ErrorKind.PERMANENT, False),
        ("550 5.7.1 Relaying denied", ErrorKind.PERMANENT, False),  # policy: not the address
    ],
)
def test_reply_codes_are_classified(smtp_server, reply, kind, suppress):
    smtp_server.handler.rules = {"victim": reply}
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    result = transport.send(outgoing(1, "victim@example.org"))
    assert not result.ok and result.kind is kind and reply in result.error
    assert result.suppress is suppress
    assert transport.send(outgoing(2)).ok  # the connection is still usable afterwards
    transport.close()


@pytest.mark.parametrize(
    "reply, recipient",
    [
        ("451 4.3.0 Try again later", True),
        ("450 4.7.1 Greylisted, come back in 5 minutes", True),
        ("454 4.7.0 TLS not available now", True),
        ("452 Too many recipients this hour", True),
        ("421 4.7.0 Too many connections, slow down", False),
    ],
)
def test_slow_down_replies_back_off_instead_of_charging_the_recipient(
    smtp_server, reply, recipient
):
    smtp_server.handler.rules = {"victim": reply}
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    [*_, result] = transport.send_group([outgoing(1), outgoing(2, "victim@example.org")])
    assert isinstance(result, SlowDown) and reply in str(result)
    assert result.recipient is recipient
    smtp_server.handler.rules = {}
    assert transport.send(outgoing(3)).ok  # reconnects after a 421 closed the connection
    transport.close()


def test_a_refused_login_is_refused_credentials_not_an_outage():
    server = SMTPServer(login=("user", "right")).start()
    try:
        state = mail_state(server)
        state.username, state.password = "user", "wrong"
        with pytest.raises(Refused) as caught:
            SMTPTransport(state, timeout=5).open()
        assert "535" in str(caught.value) and "MAIL_USERNAME" in caught.value.setting
        state.password = "right"
        transport = SMTPTransport(state, timeout=5)
        assert transport.send(outgoing(1)).ok
        transport.close()
    finally:
        server.stop()


def test_data_rejection_is_classified(smtp_server):
    smtp_server.handler.data_reply = "554 5.6.0 Message rejected"
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    result = transport.send(outgoing(1))
    assert result.kind is ErrorKind.PERMANENT and "554" in result.error


def test_mime_is_parseable_and_folded():
    builder = MessageBuilder("Événements <noreply@example.com>", "example.com")
    body = "Line one\n" + "é" * 3000 + "\nend. with a dot line\n.\n"
    data = builder.build(
        to_name='Ann "Quote" Ünï',
        to_email="ann@example.org",
        subject="Grüße\r\nBcc: evil@example.org",
        body=body,
        message_id="<x@example.com>",
        unsubscribe_url="http://x/u/t",
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße Bcc: evil@example.org"  # CR/LF cannot inject a header
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].display_name == 'Ann "Quote" Ünï'
    assert parsed["From"].addresses[0].display_name == "Événements"
    assert parsed.get_content().replace("\r\n", "\n") == body
