"""DISPATCH_RATE_PER_SECOND holds for all processes together: three dispatcher processes on
one PostgreSQL database share one batch and one rate, measured at the receiving server."""

from __future__ import annotations

import bisect
from collections import Counter

import pytest

from dashboard.extensions import db
from tests.dispatch.test_processes import dispatcher_process
from tests.dispatch.test_shared_batch import wait_for, workers_of
from tests.helpers import batches_of

pytestmark = pytest.mark.slow


@pytest.fixture
def db_engine() -> str:
    """The scale-out engine: processes on several machines share PostgreSQL."""
    return "postgresql"


def busiest_second(times: list[float]) -> int:
    """The most sends in any one-second window."""
    return max(bisect.bisect_left(times, start + 1.0) - i for i, start in enumerate(times))


def test_three_processes_keep_the_rate_together(
    app, app_env, make_event, make_guests, make_message, smtp_server
):
    rate, guests = 100, 900
    event = make_event()
    make_guests(event, guests)
    message = make_message(event)
    env = {
        "DISPATCH_RATE_PER_SECOND": str(rate),
        "DISPATCH_COMMIT_EVERY": "10",
        "DISPATCH_CONCURRENCY": "2",
    }

    owner = dispatcher_process(app_env, **env)
    wait_for(lambda: len(smtp_server.received) >= 50)
    helpers = [dispatcher_process(app_env, "--until-idle", **env) for _ in range(2)]
    for proc in [owner, *helpers]:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    received = Counter(rcpt for item in smtp_server.received for rcpt in item.rcpt_tos)
    assert len(received) == guests and set(received.values()) == {1}
    db.session.expire_all()
    [batch] = batches_of(message)
    shares = workers_of(batch)
    assert len(shares) == 3, "the three processes did not all send"
    times = sorted(item.at for item in smtp_server.received)
    peak = busiest_second(times)
    mean = (len(times) - 1) / (times[-1] - times[0])
    n = len(times)
    steady = (0.6 * n) / (times[int(0.8 * n)] - times[int(0.2 * n)])  # helpers started
    print(
        f"\nrate {rate}/s: busiest second {peak}, mean {mean:.1f}/s, middle 60% {steady:.1f}/s,"
        f" rows per process {sorted(shares.values())}"
    )
    # Each process alone keeps the rate, so without sharing three would reach ~3x.
    assert peak <= rate * 1.1, f"{peak} sends in one second, over {rate}/s + 10%"
    assert mean <= rate * 1.1
    assert mean >= rate * 0.5, "the shared slots left the senders idle"
