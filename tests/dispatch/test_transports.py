"""Transports and MIME in isolation, against the real SMTP fixture."""

from __future__ import annotations

import email
import email.policy
import smtplib
from types import SimpleNamespace

import pytest

from dashboard.dispatch.mime import MessageBuilder
from dashboard.dispatch.models import ErrorKind
from dashboard.dispatch.smtp import SMTPTransport
from dashboard.dispatch.transports import (
    Payload,
    Refused,
    SlowDown,
    Unreachable,
    idempotency_key,
)
from tests.smtp_server import SMTPServer


@pytest.fixture(params=["pipelining", "one command at a time"])
def smtp_server(request):
    """Every test here runs against a relay that offers PIPELINING and one that does not."""
    server = SMTPServer(pipelining=request.param == "pipelining").start()
    yield server
    server.stop()


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


def test_a_refused_login_is_refused_credentials_not_an_outage(monkeypatch):
    closed: list[object] = []
    real_close = smtplib.SMTP.close

    def close(self):  # type: ignore[no-untyped-def]
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(smtplib.SMTP, "close", close)
    server = SMTPServer(login=("user", "right")).start()
    try:
        state = mail_state(server)
        state.username, state.password = "user", "wrong"
        with pytest.raises(Refused) as caught:
            SMTPTransport(state, timeout=5).open()
        assert "535" in str(caught.value) and "MAIL_USERNAME" in caught.value.setting
        assert len(closed) == 1  # the refused connection is closed, not left to the GC
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
    transport.close()
    assert result.kind is ErrorKind.PERMANENT and "554" in result.error


def test_commands_go_together_when_the_server_offers_pipelining(smtp_server):
    """MAIL, RCPT and DATA in one write, the content in a second: two round trips a
    message; a server without PIPELINING gets one command per write."""
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    transport.open()
    assert transport.conn is not None
    writes: list[bytes] = []
    real_send = transport.conn.send

    def counting_send(data):  # type: ignore[no-untyped-def]
        writes.append(data if isinstance(data, bytes) else data.encode())
        return real_send(data)

    transport.conn.send = counting_send  # type: ignore[method-assign]
    assert transport.send(outgoing(1)).ok
    assert transport.send(outgoing(2)).ok
    pipelined = smtp_server.handler.pipelining
    writes = [w for w in writes if not w.lower().startswith(b"ehlo")]  # once per connection
    assert len(writes) == (4 if pipelined else 8)
    if pipelined:
        first = writes[0].lower()
        assert first.startswith(b"mail from:") and b"\r\nrcpt to:<" in first
        assert first.endswith(b"\r\ndata\r\n")
    assert [m["Subject"] for m in map(lambda r: r.message, smtp_server.received)] == [
        "Hello 1",
        "Hello 2",
    ]
    transport.close()


def test_lines_that_start_with_a_dot_arrive_as_written(smtp_server):
    """The transparency dot (RFC 5321 4.5.2): a line of one dot would otherwise end the
    message early, and a leading dot would be lost."""
    content = b"Subject: dots\r\n\r\n.\r\n..two\r\n.three\r\nlast line without an end"
    payload = Payload(1, "noreply@example.com", "someone@example.org", content, "<m@x>", "k")
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    assert transport.send(payload).ok
    [received] = smtp_server.received
    assert received.data == content + b"\r\n"
    transport.close()


@pytest.mark.parametrize(
    "reply, kind",
    [("550 5.7.1 Sender not allowed", ErrorKind.PERMANENT), ("451 4.3.0 Later", None)],
)
def test_a_refused_sender_is_classified_and_the_connection_stays_in_step(smtp_server, reply, kind):
    smtp_server.handler.mail_reply = reply
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    if kind is None:  # 451: the server asks us to come back later
        with pytest.raises(SlowDown, match="451"):
            transport.send(outgoing(1))
    else:
        result = transport.send(outgoing(1))
        assert result.kind is kind and reply in result.error and not result.suppress
    smtp_server.handler.mail_reply = None
    assert transport.send(outgoing(2)).ok  # no reply of the refused message is left over
    assert [r.message["Subject"] for r in smtp_server.received] == ["Hello 2"]
    transport.close()


def test_a_careless_server_that_takes_data_after_refusing_the_recipient(smtp_server):
    """The refusal is what counts; the e-mail is not sent, and the connection stays usable."""
    smtp_server.handler.careless = True
    smtp_server.handler.rules = {"victim": "550 5.1.1 User unknown"}
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    result = transport.send(outgoing(1, "victim@example.org"))
    assert result.kind is ErrorKind.PERMANENT and "5.1.1" in result.error and result.suppress
    assert all(b"Hello 1" not in r.data for r in smtp_server.received)
    smtp_server.handler.rules = {}
    assert transport.send(outgoing(2)).ok
    assert any(r.message["Subject"] == "Hello 2" for r in smtp_server.received)
    transport.close()


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
