"""Scale-out: three dispatcher processes on one PostgreSQL database share the due work."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, BatchStatus, Delivery, DeliveryStatus
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus
from tests.dispatch.test_processes import dispatcher_process

pytestmark = pytest.mark.slow


@pytest.fixture
def db_engine() -> str:
    """PostgreSQL only: it is the scale-out engine (test_processes covers SQLite)."""
    return "postgresql"


def test_three_processes_fifty_messages_each_guest_once(
    app, app_env, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 200)
    messages = [make_message(event, subject=f"Note {i}") for i in range(50)]

    procs = [
        dispatcher_process(app_env, "--until-idle", DISPATCH_COMMIT_EVERY="20") for _ in range(3)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    received = Counter(item.message["Message-ID"] for item in smtp_server.received)
    assert len(received) == 50 * 200 and set(received.values()) == {1}
    db.session.expire_all()
    assert {
        m.status
        for m in db.session.scalars(
            sa.select(Message).where(Message.id.in_([m.id for m in messages]))
        )
    } == {MessageStatus.SENT}
    owners = Counter(db.session.scalars(sa.select(Batch.worker)))
    print(f"\nbatches per process: {sorted(owners.values())}")
    assert len(owners) == 3, "the work was not spread over the processes"


def test_killed_process_work_is_finished_by_the_others(
    app, app_env, make_event, make_guests, make_message, smtp_server
):
    event = make_event()
    make_guests(event, 400)
    messages = [make_message(event, subject=f"Big {i}") for i in range(3)]
    env = {
        "DISPATCH_COMMIT_EVERY": "20",
        "DISPATCH_RATE_PER_SECOND": "300",
        "DISPATCH_LEASE_SECONDS": "2",
    }

    victim = dispatcher_process(app_env, **env)
    deadline = time.monotonic() + 60
    while len(smtp_server.received) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    time.sleep(2.2)  # the victim's lease runs out
    others = [dispatcher_process(app_env, "--until-idle", **env) for _ in range(2)]
    for proc in others:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    db.session.expire_all()
    statuses = Counter(db.session.scalars(sa.select(Delivery.status)))
    assert statuses == {DeliveryStatus.SENT: 1200}
    received = Counter(
        (item.message["Subject"], rcpt) for item in smtp_server.received for rcpt in item.rcpt_tos
    )
    assert len(received) == 1200, "a guest was missed"
    assert sum(received.values()) - 1200 <= 20 + 4  # at most one commit group repeated
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Batch).where(Batch.status == BatchStatus.RUNNING)
        )
        == 0
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Batch)
            .where(Batch.status == BatchStatus.INTERRUPTED)
        )
        == 1
    )
    assert all(
        m.status is MessageStatus.SENT
        for m in db.session.scalars(
            sa.select(Message).where(Message.id.in_([m.id for m in messages]))
        )
    )
