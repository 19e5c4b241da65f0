"""The bound of a pause, measured: real dispatcher processes, an SMTP server that takes 20 ms
per message (100 ms while the processes start), one process on SQLite and three sharing
the batch on PostgreSQL.

After the pause is committed the server may accept only what each process had already
handed to its sender pool: never more than two commit groups plus DISPATCH_CONCURRENCY per
process (the pipelined walk holds the group on the wire and the one claimed behind it).
Everything it accepted is recorded, and a resume sends the rest: every guest exactly once.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.db_types import utcnow
from dashboard.dispatch import control
from dashboard.dispatch.models import BatchEntry, BatchStatus, Delivery, DeliveryStatus
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.dispatch.test_processes import dispatcher_process
from tests.dispatch.test_shared_batch import wait_for, workers_of
from tests.helpers import batches_of
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.slow

COMMIT_EVERY, CONCURRENCY = 25, 4
BOUND = 2 * COMMIT_EVERY + CONCURRENCY
WARM_UP_DELAY, DELAY = 0.1, 0.02
DELIVERY = re.compile(r"<delivery-(\d+)\.")


@pytest.fixture
def smtp_server():
    server = SMTPServer(delay=WARM_UP_DELAY).start()
    # Slow while the helper processes start (seconds on a busy machine), so that most of
    # the batch is still unsent when every process has joined; then a relay that answers
    # in 20 ms for the measurement itself.
    yield server
    server.stop()


def test_after_a_pause_the_server_accepts_at_most_what_was_handed_to_the_pools(
    app, app_env, db_engine, make_event, make_guests, make_message, smtp_server
):
    processes = 3 if db_engine == "postgresql" else 1
    guests = 1000 if processes == 1 else 2000  # helpers take seconds to start on a busy machine
    event = make_event()
    make_guests(event, guests)
    message = make_message(event)
    env = {"DISPATCH_COMMIT_EVERY": str(COMMIT_EVERY), "DISPATCH_CONCURRENCY": str(CONCURRENCY)}

    procs = [dispatcher_process(app_env, **env)]
    wait_for(lambda: len(smtp_server.received) >= COMMIT_EVERY)
    [batch] = batches_of(message)
    procs += [dispatcher_process(app_env, "--until-idle", **env) for _ in range(processes - 1)]
    wait_for(lambda: len(workers_of(batch)) == processes)  # every process is sending
    smtp_server.handler.delay = DELAY

    before = len(smtp_server.received)  # read first: what lands meanwhile counts as after
    db.session.refresh(message)
    control.pause(db.session, message, Actor("host@example.com"), utcnow())
    db.session.commit()
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    late = [DELIVERY.match(item.message["Message-ID"]) for item in smtp_server.received[before:]]
    worker_of = dict(
        db.session.execute(
            sa.select(BatchEntry.delivery_id, BatchEntry.worker).where(
                BatchEntry.batch_id == batch.id
            )
        ).all()
    )
    per_process = Counter(worker_of[int(match.group(1))] for match in late if match)
    print(
        f"\n{db_engine}, {processes} process(es), commit groups of {COMMIT_EVERY}, "
        f"{CONCURRENCY} threads each: {before} accepted before the pause, {len(late)} after "
        f"({sorted(per_process.values())} per process; bound {BOUND} per process)"
    )
    assert all(n <= BOUND for n in per_process.values()), per_process
    assert len(late) <= processes * BOUND

    db.session.expire_all()
    db.session.refresh(batch)
    db.session.refresh(message)
    assert (message.status, batch.status) == (MessageStatus.PAUSED, BatchStatus.PAUSED)
    sent = db.session.scalar(
        sa.select(sa.func.count()).where(
            Delivery.message_id == message.id, Delivery.status == DeliveryStatus.SENT
        )
    )
    assert sent == len(smtp_server.received) == batch.sent  # all it accepted is recorded
    assert sent < guests // 2, "the pause came too late to measure anything"
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(Delivery.claimed_at.is_not(None))) == 0
    )

    # Resume: the rest, and every guest exactly once.
    control.resume(db.session, message, Actor("host@example.com"), utcnow())
    db.session.commit()
    procs = [dispatcher_process(app_env, **env)]
    wait_for(lambda: len(smtp_server.received) > sent)  # its batch is prepared: others may join
    procs += [dispatcher_process(app_env, "--until-idle", **env) for _ in range(processes - 1)]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    received = Counter(rcpt for item in smtp_server.received for rcpt in item.rcpt_tos)
    assert len(received) == guests and set(received.values()) == {1}, "a guest got it twice"
    db.session.expire_all()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
