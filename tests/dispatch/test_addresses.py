"""The address mailed is the address stored: the SMTP envelope carries it as it is, and
rows stored before addresses were validated are skipped with the reason, never re-parsed."""

from __future__ import annotations

import smtplib
from dataclasses import replace

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Delivery, DeliveryStatus
from dashboard.dispatch.smtp import SMTPTransport
from dashboard.events.models import Guest
from dashboard.extensions import db
from tests.dispatch.test_transports import mail_state, outgoing


@pytest.fixture
def wire(monkeypatch) -> list[bytes]:
    """Every MAIL and RCPT line written to any connection (a pipelined write holds
    several commands)."""
    lines: list[bytes] = []
    real = smtplib.SMTP.send

    def recording(self, data):  # type: ignore[no-untyped-def]
        raw = data.encode(self.command_encoding) if isinstance(data, str) else data
        if raw[:4].lower() in (b"mail", b"rcpt"):
            commands = raw.splitlines(keepends=True)
            lines.extend(line for line in commands if line[:4].lower() in (b"mail", b"rcpt"))
        return real(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", recording)
    return lines


@pytest.mark.parametrize(
    "address",
    [
        "root)@example.net",
        "ceo(not-me)@company.example",
        "javascript:alert('x')//@example.net",
        "O'Brien+events@example.org",
    ],
)
def test_the_envelope_recipient_is_exactly_the_given_address(smtp_server, wire, address):
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    transport.send(outgoing(1, to=address))
    transport.close()
    assert [line for line in wire if line.lower().startswith(b"rcpt")] == [
        f"rcpt TO:<{address}>\r\n".encode()
    ]
    # smtplib's own sendmail made "root)@example.net" into RCPT TO:<root>.
    assert all(received.rcpt_tos != ["root"] for received in smtp_server.received)


@pytest.mark.parametrize(
    "address", ["two words@example.org", "a@b.org\r\nRCPT TO:<x@y.org>", "<a@b.org>", "jö@b.org"]
)
def test_an_address_that_cannot_travel_as_it_is_is_refused_unsent(smtp_server, wire, address):
    transport = SMTPTransport(mail_state(smtp_server), timeout=5)
    result = transport.send(replace(outgoing(1), recipient=address))
    transport.close()
    assert not result.ok and result.kind.value == "permanent"
    assert result.error.startswith("invalid address:")
    assert wire == [] and smtp_server.received == []


def test_stored_rows_that_are_not_valid_addresses_are_skipped_not_mailed(
    dispatcher, make_event, make_message, smtp_server
):
    event = make_event()
    legacy = ["root)@example.net", "ceo(not-me)@company.example", "a@b@example.org", "x:y@z.org"]
    for n, address in enumerate([*legacy, "fine@example.org"]):
        db.session.add(
            Guest(event_id=event.id, name=f"G{n}", email=address, email_key=address.lower())
        )
    db.session.commit()
    message = make_message(event)
    dispatcher.poll()
    outcomes = dict(
        db.session.execute(
            sa.select(Guest.email, Delivery.status)
            .join(Delivery, Delivery.guest_id == Guest.id)
            .where(Delivery.message_id == message.id)
        ).all()
    )
    assert outcomes == {
        **dict.fromkeys(legacy, DeliveryStatus.SKIPPED),
        "fine@example.org": DeliveryStatus.SENT,
    }
    reasons = set(
        db.session.scalars(
            sa.select(Delivery.last_error).where(
                Delivery.message_id == message.id, Delivery.status == DeliveryStatus.SKIPPED
            )
        )
    )
    assert reasons == {"no usable e-mail address"}
    assert [r.rcpt_tos for r in smtp_server.received] == [["fine@example.org"]]


def test_the_usable_address_rule_is_built_once_and_holds_twice_in_one_statement(make_event):
    """The rule is one expression reused by every count and walk (building its 17 LIKEs
    cost more than the recipient count); reused twice in one statement, as the live count
    does with it and its negation, each use still reads its own values."""
    from dashboard.dispatch.channels import EMAIL

    assert EMAIL.usable_address() is EMAIL.usable_address()
    event = make_event()
    for n, address in enumerate(["fine@example.org", "a@b@example.org", "x y@z.org", "ok@x.io"]):
        db.session.add(
            Guest(event_id=event.id, name=f"G{n}", email=address, email_key=address.lower())
        )
    db.session.commit()
    rule = EMAIL.usable_address()
    usable, unusable = db.session.execute(
        sa.select(sa.func.count().filter(rule), sa.func.count().filter(~rule)).where(
            Guest.event_id == event.id
        )
    ).one()
    assert (usable, unusable) == (2, 2)
