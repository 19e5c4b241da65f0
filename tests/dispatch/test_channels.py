"""The channel seam: a second channel, registered here only, is counted, previewed and sent
by the unchanged dispatcher, through a transport of its own that carries groups."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.dispatch import channels, transports
from dashboard.dispatch.models import Delivery, DeliveryStatus, Outcome
from dashboard.dispatch.transports import Payload, SendResult, Transport, TransportSpec
from dashboard.errors import ValidationError
from dashboard.events.models import Guest
from dashboard.extensions import db
from dashboard.messages.audience import count_recipients
from dashboard.messages.models import Audience, MessageStatus
from dashboard.messages.rendering import RenderedMessage
from dashboard.messages.services import create_message
from tests.helpers import batches_of, entries_of

SENT: list[Payload] = []
GROUPS: list[int] = []
_lock = threading.Lock()


class TextTransport(Transport):
    """Carries up to three texts a call, as an HTTP gateway's batch endpoint would."""

    def send_group(self, payloads: Sequence[Payload]) -> list[SendResult]:
        with _lock:
            GROUPS.append(len(payloads))
            SENT.extend(payloads)
        return [SendResult.sent(f"text-{p.delivery_id}") for p in payloads]


@dataclass
class TextComposer:
    message_id: int

    def compose(self, delivery_id: int, rendered: RenderedMessage) -> Payload:
        text = f"{rendered.subject}: {rendered.body}"
        return Payload(
            delivery_id=delivery_id,
            sender="EventDash",
            recipient=rendered.to_email,
            data=text.encode(),
            message_id=f"text-{self.message_id}-{delivery_id}",
            idempotency_key=transports.idempotency_key(delivery_id),
            subject=rendered.subject,
            body=rendered.body,
        )


class TextChannel(channels.Channel):
    """Texts to the number kept in the guest's name (a test has no phone column)."""

    name = "text_test"
    label = "Text (test)"
    transport_setting = "TEXT_TRANSPORT"
    default_transport = "text-gateway"
    transports = frozenset({"text-gateway"})
    no_address_reason = "no phone number"

    def address(self):
        return Guest.name

    def usable_address(self):
        return Guest.name.like("+%")

    def composer(self, settings, message_id, renderer):
        return TextComposer(message_id)


@pytest.fixture
def text_channel(app):
    SENT.clear()
    GROUPS.clear()
    channel = TextChannel()
    transports.register(
        "text-gateway", lambda config, mail: TransportSpec("text-gateway", TextTransport, 3)
    )
    channels.register(channel)
    yield channel
    channels.unregister(channel.name)
    transports.unregister("text-gateway")


def test_a_second_channel_is_counted_previewed_and_sent_without_touching_the_engine(
    text_channel, dispatcher, owner, make_event, make_guests, smtp_server, now
):
    event = make_event()
    with_phone = make_guests(event, 7, prefix="phone")
    for i, guest in enumerate(with_phone):
        guest.name = f"+49170000{i:04d}"
    make_guests(event, 2, prefix="nophone")  # "Nophone 7", "Nophone 8": no number
    db.session.commit()

    count = count_recipients(db.session, event.id, Audience.EVERYONE, text_channel)
    assert (count.in_audience, count.will_receive, count.no_address) == (9, 7, 2)

    message = create_message(
        db.session,
        event,
        Actor.of(owner),
        audience="everyone",
        channel="text_test",
        subject="Hi",
        body="See you at {{event_name}}",
        mode="send_now",
        now=now,
    )
    db.session.commit()
    assert message.channel is text_channel
    dispatcher.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    assert smtp_server.received == []  # nothing went out by e-mail
    assert sorted(p.recipient for p in SENT) == sorted(g.name for g in with_phone)
    assert all(p.data == b"Hi: See you at Summer Gala" for p in SENT)
    assert max(GROUPS) == 3 and sum(GROUPS) == 7  # the transport carried groups
    [batch] = batches_of(message)
    reasons = Counter((e.outcome, e.reason) for e in entries_of(batch))
    assert reasons == {(Outcome.SENT, None): 7, (Outcome.SKIPPED, "no phone number"): 2}
    providers = db.session.scalars(
        sa.select(Delivery.provider_message_id).where(Delivery.status == DeliveryStatus.SENT)
    ).all()
    assert len(set(providers)) == 7


def test_a_channel_that_is_not_registered_is_refused_at_compose_time(app, owner, make_event, now):
    with pytest.raises(ValidationError) as caught:
        create_message(
            db.session,
            make_event(),
            Actor.of(owner),
            audience="everyone",
            channel="text_test",
            subject="Hi",
            body="Hello",
            now=now,
        )
    assert "Choose a channel: email" in caught.value.errors["channel"]


def test_the_email_channel_asks_for_a_transport_it_can_use(app):
    with pytest.raises(LookupError, match="cannot be sent through"):
        channels.EMAIL.transport({"MAIL_TRANSPORT": "text-gateway"}, None)
    assert channels.EMAIL.transport({"MAIL_TRANSPORT": "log"}, None).name == "log"
    assert channels.EMAIL.transport({"DISPATCH_DRY_RUN": True}, None).name == "dry-run"
