"""hold_after: "send to the first N guests, then wait for me", through a real SMTP server."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor
from dashboard.dispatch import control
from dashboard.dispatch.models import BatchStatus, BatchTrigger, DeliveryStatus
from dashboard.dispatch.scheduler import build_dispatcher
from dashboard.extensions import db
from dashboard.messages import services as messages
from dashboard.messages.models import Audience, Message, MessageStatus
from tests.helpers import batches_of, deliveries_of

HOLD = 137  # not a multiple of the chunk (10), and some of the first ones fail


@pytest.mark.parametrize("mode", ["schedule", "send_now"])
def test_a_500_guest_send_stops_at_exactly_n_sent_then_resumes_without_holding_again(
    mode, app, dispatcher, event, owner, make_guests, smtp_server, now
):
    make_guests(event, 10, prefix="bad")  # the first ids: refused with a 550, never "sent"
    make_guests(event, 490)
    smtp_server.handler.rules = {"bad": "550 5.1.1 No such user here"}
    message = messages.create_message(
        db.session,
        event,
        Actor.of(owner),
        audience=Audience.EVERYONE,
        subject="Doors open at 7",
        body="Hi {{guest_name}}",
        mode=mode,
        send_at=now + timedelta(seconds=1) if mode == "schedule" else None,
        hold_after=HOLD,
        now=now,
    )
    db.session.commit()
    if mode == "schedule":
        dispatcher.clock = lambda: now + timedelta(seconds=2)

    dispatcher.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.PAUSED
    assert len(smtp_server.received) == HOLD
    statuses = Counter(d.status for d in deliveries_of(message))
    assert statuses[DeliveryStatus.SENT] == HOLD
    assert statuses[DeliveryStatus.PENDING] == 500 - HOLD - statuses[DeliveryStatus.FAILED]
    assert message.status_reason == f"{HOLD} of 500 sent. Check how it arrived, then resume."
    assert message.held_at is not None and message.paused_by == "scheduler"
    [held] = batches_of(message)
    assert (held.status, held.sent, held.failed) == (BatchStatus.PAUSED, HOLD, 10)
    assert (
        held.error
        == f"Paused after the first {HOLD} sent; {500 - HOLD - held.failed} left to send."
    )
    pause = db.session.scalar(
        sa.select(AuditEntry).where(
            AuditEntry.message_id == message.id, AuditEntry.action == "message.pause"
        )
    )
    assert pause.actor == "scheduler" and pause.details["hold_after"] is True

    control.resume(db.session, message, Actor.of(owner), now)
    db.session.commit()
    dispatcher.clock = lambda: now + timedelta(seconds=3)
    dispatcher.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.SENT_WITH_FAILURES  # the 10 refused
    received = Counter(rcpt for item in smtp_server.received for rcpt in item.rcpt_tos)
    assert len(received) == 490 and set(received.values()) == {1}
    [_, rest] = batches_of(message)
    assert (rest.trigger, rest.status) == (BatchTrigger.RESUME, BatchStatus.COMPLETED)


def test_a_hold_the_audience_never_reaches_changes_nothing(
    dispatcher, event, make_guests, make_message, smtp_server
):
    make_guests(event, 12)
    message = make_message(event)
    message.hold_after = 12  # exactly everyone: nothing is left to wait for
    db.session.commit()
    dispatcher.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT and len(smtp_server.received) == 12
    assert message.held_at is None


def test_no_other_process_helps_a_send_until_its_hold_is_reached(
    app, event, make_guests, make_message, make_batch, now
):
    """Only the owner sends while a hold is open, so it can stop at exactly N."""
    make_guests(event, 3)
    message = make_message(event, status=MessageStatus.SENDING)
    message.hold_after = 2
    make_batch(message, worker="owner", total=100)
    db.session.commit()
    other = build_dispatcher(app, db.session, worker="helper")
    assert other._joinable(20) == []
    db.session.execute(sa.update(Message).where(Message.id == message.id).values(held_at=now))
    db.session.commit()
    assert len(other._joinable(20)) == 1
