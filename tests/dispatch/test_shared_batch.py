"""One large batch shared by several dispatcher processes, on both engines.

The first process claims the message and owns the batch; processes started while it
sends join the batch and claim chunks of it. Every guest must get the message exactly
once, the batch must hold one outcome per guest, and the work must really be shared.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, BatchEntry, BatchStatus, Delivery, DeliveryStatus
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.dispatch.test_processes import dispatcher_process
from tests.helpers import batches_of

pytestmark = pytest.mark.slow


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def workers_of(batch: Batch) -> Counter:
    db.session.expire_all()
    return Counter(
        dict(
            db.session.execute(
                sa.select(BatchEntry.worker, sa.func.count())
                .where(BatchEntry.batch_id == batch.id)
                .group_by(BatchEntry.worker)
            ).all()
        )
    )


def test_three_processes_share_one_large_batch(
    app, app_env, make_event, make_guests, make_message, smtp_server
):
    guests = 3000
    event = make_event()
    make_guests(event, guests)
    message = make_message(event)
    env = {
        "DISPATCH_COMMIT_EVERY": "25",
        "DISPATCH_CONCURRENCY": "2",
        "DISPATCH_RATE_PER_SECOND": "400",  # alone, the owner would need 7.5 s
    }

    owner = dispatcher_process(app_env, **env)
    wait_for(lambda: len(smtp_server.received) >= 100)
    helpers = [dispatcher_process(app_env, "--until-idle", **env) for _ in range(2)]
    for proc in [owner, *helpers]:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    received = Counter(rcpt for item in smtp_server.received for rcpt in item.rcpt_tos)
    assert len(received) == guests and set(received.values()) == {1}, "a guest got it twice"

    db.session.expire_all()
    [batch] = batches_of(message)  # one batch, shared
    assert batch.status is BatchStatus.COMPLETED
    assert (batch.total, batch.sent, batch.failed, batch.skipped) == (guests, guests, 0, 0)
    shares = workers_of(batch)
    print(f"\nrows per process: {sorted(shares.values())}")
    assert sum(shares.values()) == guests and len(shares) == 3
    assert min(shares.values()) >= guests // 10, "a process did (almost) nothing"
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(Delivery.claimed_at.is_not(None))) == 0
    )


def test_a_helper_killed_mid_chunk_its_rows_are_sent_by_the_owner(
    app, app_env, make_event, make_guests, make_message, smtp_server
):
    """The helper's claims lapse after the lease; the owner re-walks and sends those rows."""
    guests, chunk, concurrency = 1200, 25, 2
    event = make_event()
    make_guests(event, guests)
    message = make_message(event)
    env = {
        "DISPATCH_COMMIT_EVERY": str(chunk),
        "DISPATCH_CONCURRENCY": str(concurrency),
        "DISPATCH_RATE_PER_SECOND": "200",
        "DISPATCH_LEASE_SECONDS": "2",
    }

    owner = dispatcher_process(app_env, **env)
    wait_for(lambda: len(smtp_server.received) >= 50)
    [batch] = batches_of(message)
    helper = dispatcher_process(app_env, "--until-idle", **env)
    wait_for(lambda: len(workers_of(batch)) == 2)  # the helper has recorded a chunk
    [helper_name] = set(workers_of(batch)) - {batch.worker}

    def helper_claims() -> int:
        return db.session.scalar(
            sa.select(sa.func.count()).where(
                Delivery.worker == helper_name, Delivery.claimed_at.is_not(None)
            )
        )

    wait_for(lambda: helper_claims() > 0)
    time.sleep(0.05)  # into the sending of its chunk
    helper.send_signal(signal.SIGKILL)
    helper.wait(timeout=10)
    held = helper_claims()
    assert held > 0, "the helper was not killed holding a chunk"
    _out, err = owner.communicate(timeout=300)
    assert owner.returncode == 0, err

    db.session.expire_all()
    assert batches_of(message) == [batch]
    db.session.refresh(batch)
    assert batch.status is BatchStatus.COMPLETED
    assert (batch.total, batch.sent) == (guests, guests)  # one outcome per guest
    assert sum(workers_of(batch).values()) == guests
    statuses = Counter(
        db.session.scalars(sa.select(Delivery.status).where(Delivery.message_id == message.id))
    )
    assert statuses == {DeliveryStatus.SENT: guests}

    received = Counter(rcpt for item in smtp_server.received for rcpt in item.rcpt_tos)
    assert len(received) == guests, "a guest was missed"
    repeats = sum(received.values()) - guests
    print(f"\nhelper killed holding {held} rows; repeated: {repeats} (window {chunk} + in flight)")
    assert repeats <= chunk + concurrency
