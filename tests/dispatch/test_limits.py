"""Limits shared through the database: request slots, "slow down" waits, the rolling daily
quota; and SMTP's "slow down" answers, which back off the whole transport."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dashboard.dispatch import pacing
from dashboard.dispatch.models import BatchStatus, DeliveryStatus, SendSpend
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import batches_of, deliveries_of

T0 = datetime(2026, 12, 2, 13, 5, tzinfo=UTC)


def test_slots_never_overlap_whoever_reserves_them(app):
    """Two reservations made at the same moment (two processes) get consecutive slots."""
    first = pacing.reserve_slots(db.session, 4, 0.5, now=1000.0)
    second = pacing.reserve_slots(db.session, 2, 0.5, now=1000.0)
    later = pacing.reserve_slots(db.session, 1, 0.5, now=2000.0)  # idle since: starts now
    assert (first, second, later) == (1000.0, 1002.0, 2000.0)


def test_a_hold_off_delays_every_next_slot(app):
    assert pacing.free_from(db.session, now=1000.0) == 1000.0  # nothing held: now
    pacing.hold_off(db.session, until=1500.0)
    assert pacing.reserve_slots(db.session, 1, 0.0, now=1000.0) == 1500.0
    assert pacing.free_from(db.session, now=1000.0) == 1500.0  # without a rate too
    pacing.hold_off(db.session, until=1200.0)  # an earlier wait never shortens a later one
    assert pacing.reserve_slots(db.session, 1, 0.0, now=1000.0) == 1500.0
    assert pacing.free_from(db.session, now=1600.0) == 1600.0  # the wait is over


def test_the_daily_quota_is_a_rolling_24_hours(app):
    grant = pacing.take_quota(db.session, 3, 5, T0)
    assert (grant.granted, grant.frees_at) == (3, None)
    noon = T0 + timedelta(hours=12)
    grant = pacing.take_quota(db.session, 4, 5, noon)
    assert (grant.granted, grant.frees_at) == (2, T0 + timedelta(hours=24))
    assert pacing.take_quota(db.session, 1, 5, noon).granted == 0

    # The first 3 leave the window exactly 24 hours after they went; the 2 of noon stay.
    assert pacing.take_quota(db.session, 9, 5, T0 + timedelta(hours=24, seconds=-1)).granted == 0
    grant = pacing.take_quota(db.session, 9, 5, T0 + timedelta(hours=24))
    assert grant.granted == 3 and grant.frees_at == noon + timedelta(hours=24)
    assert pacing.take_quota(db.session, 7, None, noon).granted == 7  # no quota set


def test_what_never_reached_the_provider_is_given_back(app):
    grant = pacing.take_quota(db.session, 5, 5, T0)
    pacing.give_back(db.session, grant.spend_id, 2)
    db.session.commit()
    assert pacing.take_quota(db.session, 5, 5, T0).granted == 2
    assert db.session.scalar(sa.select(sa.func.sum(SendSpend.amount))) == 5


def test_a_batch_waits_for_the_daily_quota_and_says_until_when(
    app, client, auth, owner, dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event(timezone="Europe/Berlin", starts_at=T0 + timedelta(days=10))
    make_guests(event, 8)
    message = make_message(event, send_at=T0 - timedelta(seconds=1))
    dispatcher.settings = dataclasses.replace(dispatcher.settings, daily_quota=5)
    dispatcher.clock = lambda: T0

    dispatcher.poll()

    db.session.refresh(message)
    assert len(smtp_server.received) == 5
    [batch] = batches_of(message)
    assert batch.status is BatchStatus.INTERRUPTED and "DISPATCH_DAILY_QUOTA" in batch.error
    # 13:05 UTC is 14:05 in Berlin; the window frees 24 hours after the first send.
    assert message.status_reason == "Waiting for the daily quota; resumes at Thu 3 Dec 14:05"
    assert message.resume_at == T0 + timedelta(hours=24)
    waiting = [d for d in deliveries_of(message) if d.status is DeliveryStatus.PENDING]
    assert len(waiting) == 3 and all(d.attempts == 0 for d in waiting)
    auth.login(owner)
    page = client.get(f"/events/{event.id}/messages/{message.id}").get_data(as_text=True)
    assert "Waiting for the daily quota; resumes at Thu 3 Dec 14:05" in page

    dispatcher.clock = lambda: T0 + timedelta(hours=23)
    dispatcher.poll()  # not yet
    assert len(smtp_server.received) == 5
    dispatcher.clock = lambda: T0 + timedelta(hours=24, seconds=1)
    dispatcher.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT and message.status_reason is None
    assert Counter(smtp_server.recipients()) == {f"guest{i}@example.org": 1 for i in range(8)}


def test_smtp_slow_down_waits_and_sends_the_same_recipients_again_at_no_cost(
    dispatcher, make_event, make_guests, make_message, smtp_server, monkeypatch
):
    """A 451 4.3.0 (the server, not the mailbox) backs off the whole transport: the batch
    waits, the same recipients go again, nobody is charged an attempt."""
    event = make_event()
    make_guests(event, 12)
    message = make_message(event)
    dispatcher.settings = dataclasses.replace(dispatcher.settings, slow_down_seconds=0.05)
    smtp_server.handler.rules = {"guest3@": "451 4.3.0 Try again later"}
    waits: list[float] = []
    original = pacing.hold_off

    def hold_off(session, until):
        waits.append(until)
        smtp_server.handler.rules = {}  # the server recovers while we wait
        original(session, until)

    monkeypatch.setattr(pacing, "hold_off", hold_off)
    dispatcher.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.SENT and len(waits) == 1
    assert Counter(smtp_server.recipients()) == {f"guest{i}@example.org": 1 for i in range(12)}
    assert all(d.attempts == 1 for d in deliveries_of(message))
    [batch] = batches_of(message)
    assert (batch.status, batch.sent, batch.failed) == (BatchStatus.COMPLETED, 12, 0)


def test_a_recipients_slow_down_that_never_ends_becomes_its_transient_failure(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    """One greylisting mailbox cannot hold the batch back for ever: after the waits, its
    answer is charged to it as a transient failure, and everybody else got the message."""
    event = make_event()
    make_guests(event, 6)
    message = make_message(event)
    dispatcher.settings = dataclasses.replace(
        dispatcher.settings, slow_down_seconds=0.02, retry_base_seconds=60
    )
    smtp_server.handler.rules = {"guest2@": "450 4.7.1 Greylisted, try again later"}

    dispatcher.poll()

    db.session.refresh(message)
    assert len(smtp_server.received) == 5
    [stuck] = [d for d in deliveries_of(message) if d.email == "guest2@example.org"]
    assert (stuck.status, stuck.attempts) == (DeliveryStatus.FAILED, 1)
    assert "kept asking to slow down" in stuck.last_error and stuck.next_attempt_at is not None
    assert batches_of(message)[0].status is BatchStatus.COMPLETED_WITH_FAILURES


def test_a_421_that_goes_on_pauses_the_message_without_charging_anybody(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 4)
    message = make_message(event)
    dispatcher.settings = dataclasses.replace(dispatcher.settings, slow_down_seconds=0.02)
    smtp_server.handler.rules = {"@example.org": "421 4.7.0 Too many connections, slow down"}

    dispatcher.poll()

    db.session.refresh(message)
    [batch] = batches_of(message)
    assert batch.status is BatchStatus.INTERRUPTED and "slow down" in batch.error
    assert message.status is MessageStatus.SENDING and message.resume_at is not None
    assert message.status_reason.startswith("Waiting: the mail server asked us to slow down")
    assert all(
        d.attempts == 0 and d.status is DeliveryStatus.PENDING for d in deliveries_of(message)
    )
