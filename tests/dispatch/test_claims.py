"""Chunk claims: how several dispatcher processes share one batch without sharing a row.

Runs on both engines (SQLite and PostgreSQL); the multi-process proofs are in
test_scale_out.py and test_processes.py.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import SCHEDULER
from dashboard.db_types import utcnow
from dashboard.dispatch import claim, recipients, services
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    BatchTrigger,
    Delivery,
    DeliveryStatus,
)
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus
from tests.helpers import batches_of

LEASE = timedelta(seconds=60)
PENDING = Delivery.status == DeliveryStatus.PENDING


@pytest.fixture
def batch(app, make_event, make_guests, make_message, now):
    """A running batch whose 30 deliveries are pending, as its owner leaves them after step 1."""
    event = make_event()
    make_guests(event, 30)
    message = make_message(event)
    batch = services.queue_batch(db.session, message.id, BatchTrigger.SCHEDULE, SCHEDULER, now)
    db.session.flush()
    recipients.materialize(db.session, message, now)
    db.session.commit()
    return batch


def take(session: Session, batch: Batch, owner: str, now, *, after_id: int = 0, limit: int = 10):
    ids = claim.claim_deliveries(
        session,
        batch_id=batch.id,
        message_id=batch.message_id,
        scope=PENDING,
        worker=owner,
        now=now,
        lease=LEASE,
        after_id=after_id,
        limit=limit,
    )
    session.commit()
    return ids


def all_ids(batch: Batch) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(Delivery.id)
            .where(Delivery.message_id == batch.message_id)
            .order_by(Delivery.id)
        )
    )


def test_claims_are_chunks_in_id_order_and_never_overlap(batch, now):
    ids = all_ids(batch)
    first = take(db.session, batch, "a", now)
    second = take(db.session, batch, "b", now)
    third = take(db.session, batch, "a", now, after_id=first[-1])
    assert first == ids[:10] and second == ids[10:20] and third == ids[20:30]
    assert take(db.session, batch, "c", now) == []  # everything is claimed
    owners = dict(db.session.execute(sa.select(Delivery.id, Delivery.worker)).all())
    assert {owners[i] for i in second} == {"b"}


def test_a_lapsed_claim_is_taken_by_another_process_a_live_one_is_not(batch, now):
    ids = take(db.session, batch, "a", now, limit=30)
    assert take(db.session, batch, "b", now + LEASE - timedelta(seconds=1)) == []
    claim.renew_claims(db.session, ids[:5], "a", now + timedelta(seconds=50))
    db.session.commit()
    later = now + LEASE + timedelta(seconds=1)
    assert take(db.session, batch, "b", later, limit=30) == ids[5:]  # renewed rows stay "a"'s
    assert claim.claimed_by_others(db.session, batch.message_id, "b", later, LEASE)  # "a"'s 5
    assert claim.claimed_by_others(db.session, batch.message_id, "a", later, LEASE)  # "b"'s 25
    assert not claim.claimed_by_others(db.session, batch.message_id, "a", later + 2 * LEASE, LEASE)


def test_recorded_rows_are_out_of_scope(batch, now):
    ids = take(db.session, batch, "a", now, limit=5)
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(status=DeliveryStatus.SENT, worker=None, claimed_at=None)
    )
    db.session.commit()
    much_later = now + 10 * LEASE
    assert set(take(db.session, batch, "b", much_later, limit=30)).isdisjoint(ids)


def test_a_sealed_or_finished_batch_takes_no_claims(batch, now):
    db.session.execute(sa.update(Batch).where(Batch.id == batch.id).values(sealed_at=now))
    db.session.commit()
    assert take(db.session, batch, "a", now) == []
    db.session.execute(
        sa.update(Batch)
        .where(Batch.id == batch.id)
        .values(sealed_at=None, status=BatchStatus.INTERRUPTED)
    )
    db.session.commit()
    assert take(db.session, batch, "a", now) == []


def test_release_gives_back_only_the_callers_rows(batch, now):
    mine = take(db.session, batch, "a", now)
    theirs = take(db.session, batch, "b", now)
    claim.release_claims(db.session, batch.message_id, "a")
    db.session.commit()
    assert take(db.session, batch, "c", now, limit=30) == sorted(mine + all_ids(batch)[20:])
    assert not set(theirs) & set(take(db.session, batch, "d", now, limit=30))


def test_racing_claims_from_many_connections_never_share_a_row(app, batch, now):
    """Eight threads, each on its own connection, claim 3 rows at a time until none is left."""
    won: dict[str, list[int]] = {}
    sizes: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(name: str) -> None:
        with app.app_context(), Session(db.engine) as session:
            got: list[int] = []
            try:
                start.wait()
                while ids := take(session, batch, name, now, limit=3):
                    sizes.append(len(ids))
                    got += ids
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            won[name] = got

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    claimed = [i for ids in won.values() for i in ids]
    assert sorted(claimed) == all_ids(batch), "a row was claimed twice or not at all"
    # Never more than the chunk. Fewer is allowed: PostgreSQL's SKIP LOCKED passes over
    # rows another connection is claiming at that moment, and the claim takes what is left.
    assert max(sizes) == 3 and all(1 <= size <= 3 for size in sizes)


# --- a helper's part, and the owner's wait, in one process ------------------------------


@pytest.fixture
def foreign_batch(batch, now):
    """``batch`` as a live owner elsewhere leaves it: prepared, heartbeating, message sending."""
    db.session.execute(
        sa.update(Batch)
        .where(Batch.id == batch.id)
        .values(worker="elsewhere", heartbeat_at=now, total=30, started_at=now)
    )
    db.session.execute(
        sa.update(Message)
        .where(Message.id == batch.message_id)
        .values(status=MessageStatus.SENDING, worker="elsewhere", heartbeat_at=now)
    )
    db.session.commit()
    return batch


def test_an_idle_process_helps_a_running_batch_and_leaves_finishing_to_its_owner(
    dispatcher, foreign_batch, smtp_server
):

    report = dispatcher.poll()

    assert report.helped == [foreign_batch.id] and report.batches == []
    assert len(smtp_server.received) == 30
    db.session.expire_all()
    batch = db.session.get(Batch, foreign_batch.id)
    assert (batch.status, batch.worker, batch.sent) == (BatchStatus.RUNNING, "elsewhere", 30)
    workers = set(db.session.scalars(sa.select(BatchEntry.worker)))
    assert workers == {"test-dispatcher"}
    assert db.session.get(Message, batch.message_id).status is MessageStatus.SENDING
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(Delivery.claimed_at.is_not(None))) == 0
    )

    assert dispatcher.poll().helped == []  # nothing left to help with: no second send
    assert len(smtp_server.received) == 30


@pytest.mark.parametrize(
    "change",
    [
        {"sealed_at": sa.func.now()},  # its owner is finishing
        {"trigger": BatchTrigger.SEND_ONE},  # a single controlled re-send
        {"dry_run": True},  # a dry run is not this process's kind of work
        {"heartbeat_at": None},  # queued, not prepared by an owner yet
        {"total": 0},  # not prepared yet
    ],
    ids=["sealed", "send-one", "dry-run", "queued", "unprepared"],
)
def test_batches_a_process_must_not_join(dispatcher, foreign_batch, smtp_server, change):
    db.session.execute(sa.update(Batch).where(Batch.id == foreign_batch.id).values(**change))
    db.session.commit()
    assert dispatcher._joinable(20) == []


def test_a_helper_that_cannot_reach_the_mail_server_gives_its_chunk_back(
    dispatcher, foreign_batch, smtp_server
):
    smtp_server.stop()
    assert dispatcher.poll().helped == []
    db.session.expire_all()
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(Delivery.claimed_at.is_not(None))) == 0
    )
    statuses = set(db.session.scalars(sa.select(Delivery.status)))
    assert statuses == {DeliveryStatus.PENDING}  # no attempt charged, nothing recorded


def test_the_owner_waits_for_a_chunk_held_by_a_helper_then_sends_it_when_the_claim_lapses(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    """A helper that went quiet holding rows: the owner does not finish without them."""
    dispatcher.settings = dataclasses.replace(dispatcher.settings, lease_seconds=1.0)
    event = make_event()
    make_guests(event, 20)
    message = make_message(event)
    recipients.materialize(db.session, message, utcnow())
    held = list(
        db.session.scalars(sa.select(Delivery.id).where(Delivery.message_id == message.id).limit(5))
    )
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.id.in_(held))
        .values(worker="quiet-helper", claimed_at=utcnow())
    )
    db.session.commit()

    dispatcher.poll()

    db.session.expire_all()
    [batch] = batches_of(message)
    assert (batch.status, batch.total, batch.sent) == (BatchStatus.COMPLETED, 20, 20)
    assert sorted(smtp_server.recipients()) == sorted(f"guest{i}@example.org" for i in range(20))


def test_a_row_with_an_outcome_in_the_batch_is_never_claimed_again_by_it(batch, now):
    """Whatever the scope says: one outcome per guest per batch (invariant 2)."""
    ids = take(db.session, batch, "a", now, limit=3)
    db.session.add(BatchEntry(batch_id=batch.id, delivery_id=ids[0], outcome="sent"))
    db.session.execute(
        sa.update(Delivery).where(Delivery.id.in_(ids)).values(worker=None, claimed_at=None)
    )
    db.session.commit()
    assert take(db.session, batch, "b", now, limit=3) == ids[1:] + [all_ids(batch)[3]]
