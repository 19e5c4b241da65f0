"""Real processes: two dispatchers on one SQLite file, and a dispatcher killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger, Delivery, DeliveryStatus
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import batches_of

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def dispatcher_process(app_env: dict[str, str], *flags: str, **extra: str) -> subprocess.Popen:
    env = {**os.environ, **app_env, **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "dispatch", "run-due", *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def message_ids_received(smtp_server) -> Counter:
    return Counter(item.message["Message-ID"] for item in smtp_server.received)


def test_two_dispatchers_never_send_twice(
    app, app_env, make_event, make_guests, make_message, smtp_server
):
    """Invariants 3 and 4: two processes polling one database; every guest gets each message once."""
    event = make_event()
    make_guests(event, 60)
    messages = [
        make_message(event, subject=f"Message {i} for {{{{guest_name}}}}") for i in range(8)
    ]

    procs = [dispatcher_process(app_env, DISPATCH_COMMIT_EVERY="5") for _ in range(2)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err

    received = message_ids_received(smtp_server)
    assert len(received) == 8 * 60
    assert set(received.values()) == {1}, "someone received a message twice"
    for message in messages:
        db.session.refresh(message)
        assert message.status is MessageStatus.SENT
        owners = {b.worker for b in batches_of(message)}
        assert len(owners) == 1  # one process ran it


def test_sigkill_mid_batch_loses_nobody(
    app, app_env, make_event, make_guests, make_message, smtp_server
):
    """Invariants 3 and 5: kill -9 in a 2,000-recipient batch; the restart finishes the work.

    Repeats are bounded by two commit groups (DISPATCH_COMMIT_EVERY: the walk records one
    while the next is on the wire) plus the sends in flight; the test measures the figure
    and prints it. No rate, so the walk is pipelined; a relay taking 5 ms a message keeps
    the kill mid-batch.
    """
    commit_every = 25
    smtp_server.handler.delay = 0.005
    event = make_event()
    make_guests(event, 2000)
    message = make_message(event)
    env = {
        "DISPATCH_COMMIT_EVERY": str(commit_every),
        "DISPATCH_CONCURRENCY": "4",
    }

    first = dispatcher_process(app_env, **env)
    deadline = time.monotonic() + 60
    while len(smtp_server.received) < 510 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = len(smtp_server.received)
    assert 0 < killed_at < 2000, "the kill did not land mid-batch"

    db.session.expire_all()
    [stale] = batches_of(message)
    assert stale.status is BatchStatus.RUNNING  # what a crash leaves behind

    time.sleep(1.2)  # let the 1-second lease of the dead process expire
    second = dispatcher_process(app_env, DISPATCH_LEASE_SECONDS="1", **env)
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err

    db.session.expire_all()
    old, resumed = batches_of(message)
    assert old.status is BatchStatus.INTERRUPTED and "stopped responding" in old.error
    assert resumed.trigger is BatchTrigger.RESUME and resumed.status is BatchStatus.COMPLETED
    assert old.sent + resumed.sent == 2000 - 0  # every delivery has exactly one 'sent' record
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    statuses = Counter(
        db.session.scalars(sa.select(Delivery.status).where(Delivery.message_id == message.id))
    )
    assert statuses == {DeliveryStatus.SENT: 2000}

    received = Counter(rcpt for item in smtp_server.received for rcpt in item.rcpt_tos)
    assert set(received) == {f"guest{i}@example.org" for i in range(2000)}, "a guest was missed"
    repeats = sum(received.values()) - 2000
    print(
        f"\nkilled after {killed_at} sends; repeated after restart: {repeats} (window 2 x {commit_every} + in flight)"
    )
    assert repeats <= 2 * commit_every + 4
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Batch).where(Batch.status == BatchStatus.RUNNING)
        )
        == 0
    )
