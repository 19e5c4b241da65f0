"""A host in control of a send: pause, resume and stop, in one process, on both engines.

The transport here counts what it is handed and, at a chosen send, lets a "host" act from
another session (as the page or the API would, in another process): so the action lands
while a chunk is on the wire, every time, without timing. The walk is pipelined (the next
chunk is claimed while one is on the wire); the host acts once the chunk after the one on
the wire is claimed, so a pause meets the most the walk may still send: two chunks.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor
from dashboard.db_types import utcnow
from dashboard.dispatch import claim, control, recipients, services, states
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    BatchTrigger,
    Delivery,
    DeliveryStatus,
    Outcome,
)
from dashboard.dispatch.poll import Dispatcher
from dashboard.dispatch.queries import delivery_counts, message_counts
from dashboard.dispatch.settings import DispatchSettings
from dashboard.dispatch.transports import Payload, SendResult, Transport, TransportSpec
from dashboard.errors import Conflict, IllegalTransition
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus
from dashboard.messages.services import send_now
from tests.helpers import batches_of, deliveries_of, entries_of

HOST = Actor("host@example.com")
CHUNK, THREADS = 10, 2
LEASE = timedelta(seconds=60)


class Wire:
    """What the transports were handed, and a host's action at the ``at``-th send."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.lock = threading.Lock()
        self.at: int | None = None
        self.action: Callable[[], None] | None = None
        self.refuse: set[str] = set()
        #: The ids of every claim the walk made, in order (empty claims too).
        self.claims: list[list[int]] = []
        self.claimed = threading.Condition()

    def claim(self, ids: list[int]) -> None:
        with self.claimed:
            self.claims.append(list(ids))
            self.claimed.notify_all()

    def _next_claim_made(self, delivery_id: int) -> None:
        """Wait (a little at most) until the walk claimed after the chunk holding
        ``delivery_id``: it does so before it waits for that chunk."""
        with self.claimed:
            self.claimed.wait_for(
                lambda: any(
                    delivery_id in ids and index + 1 < len(self.claims)
                    for index, ids in enumerate(self.claims)
                ),
                timeout=5,
            )

    def send(self, payload: Payload) -> SendResult:
        with self.lock:
            self.sent.append(payload.recipient)
            act = len(self.sent) == self.at
        if act and self.action is not None:
            self._next_claim_made(payload.delivery_id)
            self.action()
        if any(needle in payload.recipient for needle in self.refuse):
            return SendResult.permanent("550 5.1.1 No such user here")
        return SendResult.sent(payload.message_id)

    def when(self, at: int, action: Callable[[], None]) -> None:
        self.at, self.action = at, action


class WireTransport(Transport):
    def __init__(self, wire: Wire):
        self.wire = wire

    def send(self, payload: Payload) -> SendResult:
        return self.wire.send(payload)


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def run(app, wire, monkeypatch) -> Dispatcher:
    settings = DispatchSettings(
        base_url="http://dashboard.test",
        sender="Host <host@dashboard.test>",
        commit_every=CHUNK,
        concurrency=THREADS,
        retry_base_seconds=0,
    )
    spec = TransportSpec("wire", lambda: WireTransport(wire))
    claim_deliveries = claim.claim_deliveries

    def watched_claim(*args, **kwargs) -> list[int]:
        ids = claim_deliveries(*args, **kwargs)
        wire.claim(ids)
        return ids

    monkeypatch.setattr(claim, "claim_deliveries", watched_claim)
    return Dispatcher(db.session, settings, lambda _channel: spec, worker="owner")


def as_host(message_id: int, act: Callable[[Session, Message], object]) -> Callable[[], None]:
    """``act`` in a session of its own, committed: a host's click from another process."""
    engine = db.engine

    def run() -> None:
        with Session(engine) as session:
            act(session, session.get(Message, message_id))
            session.commit()

    return run


def pause_it(session: Session, message: Message) -> None:
    control.pause(session, message, HOST, utcnow())


def stop_it(session: Session, message: Message) -> None:
    control.stop(session, message, HOST, utcnow(), LEASE)


def resume(message: Message, now) -> Batch:
    db.session.refresh(message)
    batch = control.resume(db.session, message, HOST, now)
    db.session.commit()
    return batch


def figures_add_up(message: Message) -> None:
    """sent + failed + skipped + cancelled (+ pending) = total, for the message and each batch."""
    counts = message_counts(db.session, [message.id])[message.id]
    assert counts.sent + counts.failed + counts.skipped + counts.cancelled + counts.pending == (
        counts.total
    )
    for batch in batches_of(message):
        db.session.refresh(batch)
        assert batch.sent + batch.failed + batch.skipped + batch.cancelled == batch.total, batch.id
        assert len(entries_of(batch)) == batch.total


def test_pause_takes_no_more_chunks_and_records_the_ones_on_the_wire(
    run, wire, event, make_guests, make_message
):
    make_guests(event, 95)
    message = make_message(event)
    wire.when(25, as_host(message.id, pause_it))  # inside the third chunk

    run.poll()

    db.session.refresh(message)
    [batch] = batches_of(message)
    assert (message.status, batch.status) == (MessageStatus.PAUSED, BatchStatus.PAUSED)
    assert len(wire.sent) == 40, "the chunks on the wire went out, and nothing after them"
    assert (batch.sent, batch.total) == (40, 40)  # what it did; the rest waits for a resume
    assert batch.error == "Paused by host@example.com; 55 left to send."
    counts = delivery_counts(db.session, [message.id])[message.id]
    assert (counts.sent, counts.pending) == (40, 55)
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(Delivery.claimed_at.is_not(None))) == 0
    )
    assert (message.paused_by, message.worker) == ("host@example.com", None)
    figures_add_up(message)
    assert run.poll().batches == []  # nobody picks a paused message up


def test_every_guest_exactly_once_over_several_pause_and_resume_cycles(
    run, wire, event, make_guests, make_message, now
):
    make_guests(event, 120)
    make_guests(event, 3, prefix="gone", unsubscribed=True)
    message = make_message(event)
    for at in (13, 41, 77):
        wire.when(at, as_host(message.id, pause_it))
        run.poll()
        db.session.refresh(message)
        assert message.status is MessageStatus.PAUSED
        figures_add_up(message)
        resume(message, now)
    wire.at = None
    run.poll()

    assert Counter(wire.sent) == {f"guest{i}@example.org": 1 for i in range(120)}
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    batches = batches_of(message)
    assert [b.trigger for b in batches] == [BatchTrigger.SCHEDULE] + [BatchTrigger.RESUME] * 3
    assert [b.status for b in batches] == [BatchStatus.PAUSED] * 3 + [BatchStatus.COMPLETED]
    # Whole chunks: the one on the wire at the pause and the one claimed behind it.
    assert [b.sent for b in batches] == [30, 30, 30, 30]
    assert sum(b.total for b in batches) == 123  # every recipient in exactly one batch
    assert batches[0].skipped == 3
    figures_add_up(message)


def test_stop_while_sending_cancels_the_rest_in_the_running_batch(
    run, wire, event, make_guests, make_message
):
    make_guests(event, 47)
    make_guests(event, 2, prefix="gone", unsubscribed=True)
    message = make_message(event)
    wire.when(15, as_host(message.id, stop_it))

    run.poll()

    db.session.refresh(message)
    [batch] = batches_of(message)
    assert (message.status, batch.status) == (MessageStatus.STOPPED, BatchStatus.STOPPED)
    assert message.status_reason == "Stopped by host@example.com"
    assert (batch.sent, batch.skipped, batch.cancelled, batch.total) == (30, 2, 17, 49)
    cancelled = [e for e in entries_of(batch) if e.outcome is Outcome.CANCELLED]
    assert {e.reason for e in cancelled} == {"stopped by host@example.com"}
    rows = Counter(d.status for d in deliveries_of(message))
    assert rows == {
        DeliveryStatus.SENT: 30,
        DeliveryStatus.SKIPPED: 2,
        DeliveryStatus.CANCELLED: 17,
    }
    assert (message.final_total, message.final_sent, message.final_cancelled) == (49, 30, 17)
    figures_add_up(message)
    assert run.poll().batches == []


def test_stop_while_paused_records_the_rest_in_a_batch_of_its_own(
    run, wire, event, make_guests, make_message, make_user, now
):
    make_guests(event, 40)
    message = make_message(event)
    wire.when(5, as_host(message.id, pause_it))
    run.poll()
    make_guests(event, 4, prefix="late")  # joined the audience while it was paused

    db.session.refresh(message)
    control.stop(db.session, message, Actor("cli:dispatch stop (ops)"), now, LEASE)
    db.session.commit()

    paused, stop = batches_of(message)
    assert (stop.trigger, stop.status, stop.initiated_label) == (
        BatchTrigger.STOP,
        BatchStatus.STOPPED,
        "cli:dispatch stop (ops)",
    )
    assert (stop.cancelled, stop.total) == (24, 24)  # the 20 left and the 4 who joined
    assert {e.reason for e in entries_of(stop)} == {"stopped by cli:dispatch stop (ops)"}
    assert paused.status is BatchStatus.PAUSED and (paused.sent, paused.total) == (20, 20)
    counts = message_counts(db.session, [message.id])[message.id]
    assert (counts.total, counts.sent, counts.cancelled, counts.pending) == (44, 20, 24, 0)
    figures_add_up(message)
    # Final: nothing resumes or sends it again.
    with pytest.raises(IllegalTransition, match="stopped: there is nothing to resume"):
        control.resume(db.session, message, HOST, now)
    assert run.poll().batches == [] and len(wire.sent) == 20


def test_a_queued_send_now_paused_before_any_worker_started_it(
    run, wire, event, make_guests, make_message, now
):
    make_guests(event, 12)
    message = make_message(event, status=MessageStatus.DRAFT)
    queued = send_now(db.session, message, HOST, now=now)
    control.pause(db.session, message, HOST, now)
    db.session.commit()
    db.session.refresh(queued)
    assert queued.status is BatchStatus.PAUSED and queued.total == 0
    assert queued.error == "Paused by host@example.com before it started."
    assert run.poll().batches == [] and wire.sent == []

    batch = resume(message, now)
    assert run.poll().batches == [batch.id]
    assert sorted(wire.sent) == sorted(f"guest{i}@example.org" for i in range(12))


def test_wrong_states_are_refused_with_the_reason(run, wire, event, make_guests, make_message, now):
    make_guests(event, 30)
    draft = make_message(event, status=MessageStatus.DRAFT)
    with pytest.raises(IllegalTransition, match="This message is draft: there is nothing to pause"):
        control.pause(db.session, draft, HOST, now)
    with pytest.raises(IllegalTransition, match="Only a paused message can be resumed"):
        control.resume(db.session, draft, HOST, now)
    with pytest.raises(IllegalTransition, match="being sent or is paused can be stopped"):
        control.stop(db.session, draft, HOST, now, LEASE)

    # Resume while the pause is still being recorded (a batch of it still runs): refused.
    sending = make_message(event)
    sending_id, engine, pause = sending.id, db.engine, as_host(sending.id, pause_it)
    results: list[str] = []

    def early_resume() -> None:
        pause()
        with Session(engine) as session:
            try:
                control.resume(session, session.get(Message, sending_id), HOST, now)
            except Conflict as error:
                results.append(str(error))

    wire.when(3, early_resume)
    run.poll()
    assert results == [control.STILL_PAUSING]
    db.session.refresh(sending)
    assert sending.status is MessageStatus.PAUSED


def test_each_action_is_audited_with_its_actor(run, wire, event, make_guests, make_message, now):
    make_guests(event, 25)
    message = make_message(event)
    wire.when(3, as_host(message.id, pause_it))
    run.poll()
    batch = resume(message, now)
    wire.when(len(wire.sent) + 3, as_host(message.id, stop_it))
    run.poll()

    log = db.session.execute(
        sa.select(AuditEntry.action, AuditEntry.actor, AuditEntry.batch_id, AuditEntry.details)
        .where(AuditEntry.message_id == message.id)
        .order_by(AuditEntry.id)
    ).all()
    assert [(action, actor) for action, actor, _, _ in log] == [
        ("batch.start", "scheduler"),
        ("message.pause", "host@example.com"),
        ("message.resume", "host@example.com"),  # the batch it queued starts without a line
        ("message.stop", "host@example.com"),
    ]
    resumed = next(row for row in log if row.action == "message.resume")
    assert resumed.batch_id == batch.id and resumed.details["pending"] == 5


def test_recovery_ends_a_dead_owners_batch_as_the_host_said(
    run, event, make_guests, make_message, make_batch, now
):
    """The owner died after the host paused (or stopped) the message: the batch ends the way
    the host asked, never as interrupted-and-resumed."""
    make_guests(event, 6)
    stale = now - timedelta(minutes=10)
    paused = make_message(event, status=MessageStatus.PAUSED)
    stopped = make_message(event, status=MessageStatus.STOPPED)
    for message in (paused, stopped):
        recipients.materialize(db.session, message, now)
    db.session.commit()
    one = make_batch(paused, heartbeat_at=stale, total=6)
    two = make_batch(stopped, heartbeat_at=stale, total=6)
    db.session.execute(
        sa.update(Message).where(Message.id == stopped.id).values(status_reason="Stopped by x@y")
    )
    db.session.commit()

    assert run.recover() == 2
    for batch in (one, two):
        db.session.refresh(batch)
    assert one.status is BatchStatus.PAUSED and one.total == 0
    assert (two.status, two.cancelled, two.total) == (BatchStatus.STOPPED, 6, 6)
    assert {e.reason for e in entries_of(two)} == {"stopped by x@y"}
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(
                BatchEntry.batch_id == two.id, BatchEntry.outcome == Outcome.CANCELLED
            )
        )
        == 6
    )


def test_the_state_table_has_the_new_moves():
    M, B = MessageStatus, BatchStatus
    assert states.allowed(M.SENDING, M.PAUSED) and states.allowed(M.PAUSED, M.SENDING)
    assert states.allowed(M.SENDING, M.STOPPED) and states.allowed(M.PAUSED, M.STOPPED)
    assert not any(states.allowed(M.STOPPED, target) for target in M if target is not M.STOPPED)
    assert not states.allowed(M.DRAFT, M.PAUSED) and not states.allowed(M.SENT, M.STOPPED)
    assert states.allowed(B.RUNNING, B.PAUSED) and states.allowed(B.RUNNING, B.STOPPED)
    assert not states.allowed(B.PAUSED, B.RUNNING)


def test_a_single_re_send_is_refused_while_paused_or_stopped(
    run, wire, event, make_guests, make_message
):
    make_guests(event, 15)
    message = make_message(event)
    wire.when(2, as_host(message.id, pause_it))
    run.poll()
    [delivery, *_] = deliveries_of(message)
    with pytest.raises(Conflict, match="This message is paused: nothing of it is sent"):
        services.send_one(run, delivery.id, HOST)
    assert len(wire.sent) == 15
