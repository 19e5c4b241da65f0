"""The dispatcher against a real SMTP server on loopback, with faults injected."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.dispatch.models import BatchStatus, BatchTrigger, DeliveryStatus, ErrorKind, Outcome
from dashboard.dispatch.services import retry_failed
from dashboard.errors import Conflict
from dashboard.events.models import RsvpStatus
from dashboard.extensions import db
from dashboard.messages.models import Audience, MessageStatus
from tests.helpers import batches_of, deliveries_of, entries_of


def refresh(*objs):
    for obj in objs:
        db.session.refresh(obj)


def test_due_message_is_sent_to_its_audience_once(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 12, RsvpStatus.ATTENDING)
    make_guests(event, 5, RsvpStatus.DECLINED, prefix="declined")
    message = make_message(event, audience=Audience.ATTENDING)

    dispatcher.poll()
    refresh(message)

    assert message.status is MessageStatus.SENT
    assert sorted(smtp_server.recipients()) == sorted(f"guest{i}@example.org" for i in range(12))
    [batch] = batches_of(message)
    assert (batch.status, batch.trigger, batch.initiated_label) == (
        BatchStatus.COMPLETED,
        BatchTrigger.SCHEDULE,
        "scheduler",
    )
    assert (batch.total, batch.sent, batch.failed, batch.skipped) == (12, 12, 0, 0)
    assert all(
        d.status is DeliveryStatus.SENT and d.attempts == 1 and d.sent_at
        for d in deliveries_of(message)
    )

    # Invariant 3: polling again, or re-running the finished message, sends nothing more.
    dispatcher.poll()
    assert len(smtp_server.received) == 12


def test_headers_encoding_and_long_lines(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event(name="Fête d'été")
    [guest] = make_guests(event, 1, RsvpStatus.ATTENDING)
    guest.name = "Zoë Ünïcode-Ñame"
    db.session.commit()
    long_line = "x" * 5000
    message = make_message(
        event,
        subject="Ça commence: {{event_name}} 🎉",
        body="Hi {{guest_name}}\n" + long_line + "\nbye {{unsubscribe_link}}",
    )

    dispatcher.poll()

    [received] = smtp_server.received
    mail = received.message
    assert mail["Subject"] == "Ça commence: Fête d'été 🎉"
    assert "Zoë Ünïcode-Ñame" in str(mail["To"])
    [delivery] = deliveries_of(message)
    assert mail["Message-ID"] == f"<delivery-{delivery.id}.message-{message.id}@dashboard.test>"
    assert mail["List-Unsubscribe"] == f"<http://dashboard.test/u/{guest.token}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = mail.get_body(("plain",)).get_content()
    assert long_line in body.splitlines()
    assert body.startswith("Hi Zoë Ünïcode-Ñame")
    assert max(len(line) for line in received.data.split(b"\r\n")) <= 998


def test_unsubscribed_guests_are_skipped_with_reason(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 3)
    make_guests(event, 2, prefix="gone", unsubscribed=True)
    message = make_message(event)

    dispatcher.poll()
    refresh(message)

    [batch] = batches_of(message)
    assert (batch.total, batch.sent, batch.skipped) == (5, 3, 2)
    reasons = Counter(e.reason for e in entries_of(batch) if e.outcome is Outcome.SKIPPED)
    assert reasons == {"unsubscribed": 2}
    assert len(smtp_server.received) == 3
    assert message.status is MessageStatus.SENT


def test_4xx_retried_5xx_permanent_and_sums_add_up(
    app, dispatcher, make_event, make_guests, make_message, smtp_server
):
    """Invariants 1, 2, 8: one recipient's failure never stops the batch; sums hold."""
    event = make_event()
    make_guests(event, 10)
    make_guests(event, 3, prefix="busy")
    make_guests(event, 2, prefix="bad")
    smtp_server.handler.rules = {
        "busy": "452 4.2.2 Mailbox full, try again later",
        "bad": "550 5.1.1 No such user here",
    }
    message = make_message(event)
    dispatcher.settings = dataclasses.replace(dispatcher.settings, retry_base_seconds=60)
    start = dispatcher.clock()

    dispatcher.poll()
    [first] = batches_of(message)
    assert first.status is BatchStatus.COMPLETED_WITH_FAILURES
    assert (first.total, first.sent, first.failed, first.skipped) == (15, 10, 5, 0)
    assert first.sent + first.failed + first.skipped == first.total == len(entries_of(first))
    bad = [d for d in deliveries_of(message) if d.email.startswith("bad")]
    assert all(
        d.error_kind is ErrorKind.PERMANENT and "550 5.1.1 No such user here" in d.last_error
        for d in bad
    )
    refresh(message)
    assert message.status is MessageStatus.SENDING  # transient ones still to retry

    busy = [d for d in deliveries_of(message) if d.email.startswith("busy")]
    assert all(d.next_attempt_at == d.updated_at + timedelta(seconds=60) for d in busy)
    dispatcher.poll()  # backoff not over yet: nothing happens
    assert len(batches_of(message)) == 1

    smtp_server.handler.rules = {"bad": "550 5.1.1 No such user here"}  # busy recovers
    dispatcher.clock = lambda: start + timedelta(seconds=61)
    dispatcher.poll()
    refresh(message)
    first, second = batches_of(message)
    assert second.trigger is BatchTrigger.RETRY
    assert (second.total, second.sent, second.failed) == (3, 3, 0)
    assert message.status is MessageStatus.SENT_WITH_FAILURES
    by_status = Counter(d.status for d in deliveries_of(message))
    assert by_status == {DeliveryStatus.SENT: 13, DeliveryStatus.FAILED: 2}
    # Permanent failures were attempted exactly once.
    assert all(d.attempts == 1 for d in deliveries_of(message) if d.status is DeliveryStatus.FAILED)
    assert Counter(smtp_server.recipients())["busy10@example.org"] == 1


def test_transient_attempts_are_capped_in_sql(
    app, dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 2, prefix="busy")
    smtp_server.handler.rules = {"busy": "450 4.2.1 Mailbox busy, try later"}
    message = make_message(event)
    for _ in range(dispatcher.settings.max_attempts + 3):
        dispatcher.poll()
    refresh(message)
    assert all(d.attempts == dispatcher.settings.max_attempts for d in deliveries_of(message))
    assert message.status is MessageStatus.FAILED
    assert len(batches_of(message)) == dispatcher.settings.max_attempts


def test_render_error_fails_only_that_recipient(
    monkeypatch, dispatcher, make_event, make_guests, make_message, smtp_server
):
    from dashboard.messages.rendering import MessageRenderer

    event = make_event()
    guests = make_guests(event, 5)
    cursed = guests[2].token
    original = MessageRenderer.render

    def render(self, guest):
        if guest.token == cursed:
            raise RuntimeError("boom while rendering")
        return original(self, guest)

    monkeypatch.setattr(MessageRenderer, "render", render)
    message = make_message(event)
    dispatcher.poll()

    [batch] = batches_of(message)
    assert (batch.sent, batch.failed, batch.status) == (4, 1, BatchStatus.COMPLETED_WITH_FAILURES)
    failed = [e for e in entries_of(batch) if e.outcome is Outcome.FAILED]
    assert "boom while rendering" in failed[0].reason
    assert len(smtp_server.received) == 4


def test_server_down_pauses_without_burning_attempts(
    app, dispatcher, make_event, make_guests, make_message, smtp_server
):
    """Invariant 9: an outage pauses the batch; it resumes after, everyone sent once."""
    event = make_event()
    make_guests(event, 20)
    message = make_message(event)
    smtp_server.stop()

    dispatcher.poll()
    refresh(message)
    [paused] = batches_of(message)
    assert paused.status is BatchStatus.INTERRUPTED
    assert "unreachable" in paused.error
    assert message.status is MessageStatus.SENDING
    assert all(
        d.attempts == 0 and d.status is DeliveryStatus.PENDING for d in deliveries_of(message)
    )

    dispatcher.poll()  # still paused: no new batch, nothing charged
    assert len(batches_of(message)) == 1

    smtp_server.start()
    later = dispatcher.clock() + timedelta(seconds=dispatcher.settings.pause_seconds + 1)
    dispatcher.clock = lambda: later
    dispatcher.poll()
    refresh(message)
    assert message.status is MessageStatus.SENT
    assert batches_of(message)[-1].trigger is BatchTrigger.RESUME
    assert sorted(smtp_server.recipients()) == sorted(f"guest{i}@example.org" for i in range(20))
    assert all(d.attempts == 1 for d in deliveries_of(message))


def test_manual_retry_touches_only_failed_rows(
    app, owner, dispatcher, make_event, make_guests, make_message, smtp_server, now
):
    event = make_event()
    make_guests(event, 4)
    make_guests(event, 2, prefix="bad")
    smtp_server.handler.rules = {"bad": "550 5.7.1 Recipient refused by policy"}
    message = make_message(event)
    dispatcher.poll()
    refresh(message)
    assert message.status is MessageStatus.SENT_WITH_FAILURES
    sent_before = {
        d.id: d.sent_at for d in deliveries_of(message) if d.status is DeliveryStatus.SENT
    }

    smtp_server.handler.rules = {}
    batch = retry_failed(db.session, message, Actor.of(owner), now, permanent=True)
    db.session.commit()
    assert (batch.trigger, batch.initiated_label) == (BatchTrigger.RETRY_FAILED, owner.email)
    dispatcher.poll()
    refresh(message, batch)
    assert (batch.total, batch.sent, batch.status) == (2, 2, BatchStatus.COMPLETED)
    assert message.status is MessageStatus.SENT
    assert Counter(smtp_server.recipients()) == Counter(
        {
            **{f"guest{i}@example.org": 1 for i in range(4)},
            "bad4@example.org": 1,
            "bad5@example.org": 1,
        }
    )
    assert {d.id: d.sent_at for d in deliveries_of(message) if d.id in sent_before} == sent_before
    assert len(deliveries_of(message)) == 6  # rows reused, none added

    with pytest.raises(Conflict):
        retry_failed(db.session, message, Actor.of(owner), now, permanent=True)


def test_dry_run_sends_nothing_and_records_dry_run(
    app_env, make_event, make_guests, make_message, smtp_server
):
    from dashboard import create_app
    from dashboard.dispatch.scheduler import build_dispatcher

    app = create_app(
        overrides={"WTF_CSRF_ENABLED": False}, env={**app_env, "DISPATCH_DRY_RUN": "yes"}
    )
    event = make_event()
    make_guests(event, 3)
    message = make_message(event)
    with app.app_context():
        build_dispatcher(app, db.session, worker="dry").poll()
    refresh(message)
    assert smtp_server.received == []
    [batch] = batches_of(message)
    assert batch.dry_run and batch.sent == 0 and batch.skipped == 3
    assert {e.outcome for e in entries_of(batch)} == {Outcome.DRY_RUN}
    assert all(d.status is not DeliveryStatus.SENT and d.dry_run for d in deliveries_of(message))


def test_claim_is_atomic(app, make_event, make_message, now):
    """Invariant 4: two claimers of one due message, one wins."""
    from dashboard.dispatch import claim

    message = make_message(make_event())
    assert claim.claim_due(db.session, message.id, "a", now) is True
    assert claim.claim_due(db.session, message.id, "b", now) is False
    db.session.commit()
    refresh(message)
    assert (message.status, message.worker) == (MessageStatus.SENDING, "a")


def test_finalizing_survives_a_broken_recipient_state(
    app, monkeypatch, dispatcher, make_event, make_guests, make_message
):
    """Invariant 6: an exception while recording still ends the batch, not 'running'."""
    event = make_event()
    make_guests(event, 5)
    message = make_message(event)
    calls = {"n": 0}
    from dashboard.dispatch import run as run_module

    original = run_module.record_outcomes

    def broken(*args, **kwargs):
        calls["n"] += 1
        db.session.execute(
            sa.text(
                "INSERT INTO batch_entries (batch_id, delivery_id, outcome, processed_at) VALUES (999999, 1, 'nope', '2020-01-01')"
            )
        )
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, "record_outcomes", broken)
    dispatcher.poll()
    [batch] = batches_of(message)
    assert batch.status is BatchStatus.FAILED
    assert "Internal error" in batch.error
    refresh(message)
    assert message.status is MessageStatus.SENDING and message.worker is None


def test_finished_message_keeps_figures_equal_to_its_rows(
    app, owner, dispatcher, make_event, make_guests, make_message, smtp_server, now
):
    """Invariant 7: the figures a finished message keeps are the aggregates of its rows."""
    from dashboard.dispatch.queries import message_counts

    event = make_event()
    make_guests(event, 5)
    make_guests(event, 2, prefix="bad")
    make_guests(event, 1, prefix="gone", unsubscribed=True)
    smtp_server.handler.rules = {"bad": "550 5.7.1 Recipient refused by policy"}
    message = make_message(event)
    dispatcher.poll()
    refresh(message)
    by_status = Counter(d.status for d in deliveries_of(message))
    kept = (message.final_total, message.final_sent, message.final_failed, message.final_skipped)
    assert kept == (8, by_status[DeliveryStatus.SENT], 2, 1) == (8, 5, 2, 1)
    assert message_counts(db.session, [message.id])[message.id].as_json() == {
        "total": 8,
        "sent": 5,
        "failed": 2,
        "skipped": 1,
        "pending": 0,
        "cancelled": 0,
    }

    smtp_server.handler.rules = {}
    retry_failed(db.session, message, Actor.of(owner), now, permanent=True)
    db.session.commit()
    refresh(message)
    assert message.final_total is None  # in flight again: counted from the rows
    assert message_counts(db.session, [message.id])[message.id].pending == 2
    dispatcher.poll()
    refresh(message)
    assert (message.status, message.final_sent, message.final_failed) == (MessageStatus.SENT, 7, 0)
