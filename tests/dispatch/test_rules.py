"""The rules of sending and of statuses, without a database."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.dispatch import states
from dashboard.dispatch.models import BatchStatus, DeliveryStatus, ErrorKind, Outcome
from dashboard.dispatch.pool import SenderPool
from dashboard.dispatch.rules import Skip, judge, passes
from dashboard.dispatch.settings import DispatchSettings
from dashboard.dispatch.transports import (
    Payload,
    SendResult,
    Transport,
    TransportSpec,
    Unreachable,
    idempotency_key,
)
from dashboard.messages.models import MessageStatus

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = DispatchSettings(
    base_url="http://x.test", sender="a@x.test", max_attempts=3, retry_base_seconds=60
)


def test_a_transient_failure_under_the_cap_is_retried_with_doubling_backoff():
    first = judge(SendResult.transient("451 busy"), 0, SETTINGS, NOW)
    second = judge(SendResult.transient("451 busy"), 1, SETTINGS, NOW)
    assert first.outcome is Outcome.FAILED and first.error_kind is ErrorKind.TRANSIENT
    assert first.delivery["next_attempt_at"] == NOW + timedelta(seconds=60)
    assert second.delivery["next_attempt_at"] == NOW + timedelta(seconds=120)
    assert first.reason == "451 busy (attempt 1 of 3; retrying)"
    assert first.delivery["attempts"] == 1 and first.counter == "failed"


def test_the_last_transient_attempt_and_a_permanent_failure_are_not_retried():
    last = judge(SendResult.transient("451 busy"), 2, SETTINGS, NOW)
    assert last.delivery["next_attempt_at"] is None
    assert last.reason == "451 busy (attempt 3 of 3; giving up)"
    permanent = judge(SendResult.permanent("550 no such user"), 0, SETTINGS, NOW)
    assert permanent.delivery["next_attempt_at"] is None
    assert permanent.reason == "550 no such user" and permanent.error_kind is ErrorKind.PERMANENT


def test_sent_skip_and_dry_run_verdicts():
    sent = judge(SendResult.sent("<id@x>"), 2, SETTINGS, NOW)
    assert sent.delivery["status"] is DeliveryStatus.SENT and sent.delivery["attempts"] == 3
    assert sent.delivery["sent_at"] == NOW and sent.delivery["provider_message_id"] == "<id@x>"
    skip = judge(Skip("unsubscribed"), 0, SETTINGS, NOW)
    assert (skip.outcome, skip.reason, skip.counter) == (Outcome.SKIPPED, "unsubscribed", "skipped")
    dry = judge(SendResult(False, error="dry run", dry_run=True), 0, SETTINGS, NOW)
    assert dry.outcome is Outcome.DRY_RUN and dry.delivery["dry_run"] is True
    assert dry.delivery["status"] is not DeliveryStatus.SENT


def test_the_walk_is_made_of_or_free_parts():
    parts = passes(3, NOW)
    assert len(parts) == 2
    assert all(" OR " not in str(part.compile()) for part in parts)
    assert "deliveries.id = " in str(passes(3, NOW, only_delivery=7)[0].compile())


@pytest.mark.parametrize(
    ("sent", "failed", "batch", "message"),
    [
        (5, 0, BatchStatus.COMPLETED, MessageStatus.SENT),
        (0, 0, BatchStatus.COMPLETED, MessageStatus.SENT),
        (3, 2, BatchStatus.COMPLETED_WITH_FAILURES, MessageStatus.SENT_WITH_FAILURES),
        # Skipped guests were never meant to receive it: nobody got it, so it failed.
        (0, 1, BatchStatus.FAILED, MessageStatus.FAILED),
    ],
)
def test_one_rule_gives_batches_and_messages_the_same_status_from_their_figures(
    sent, failed, batch, message
):
    assert states.batch_status_from(sent, failed) is batch
    assert states.message_status_from(sent, failed) is message


def test_the_tables_refuse_what_they_do_not_list():
    assert states.allowed(MessageStatus.SCHEDULED, MessageStatus.SENDING)
    assert states.allowed(MessageStatus.DRAFT, MessageStatus.DRAFT)  # an edit stays a draft
    assert not states.allowed(MessageStatus.SENT, MessageStatus.DRAFT)
    # A cancelled message never goes out; only a reminder the system cancelled when its
    # event moved may come back as scheduled (the caller's WHERE names that reason), and a
    # host may restore one as a draft.
    assert not states.allowed(MessageStatus.CANCELLED, MessageStatus.SENDING)
    assert states.allowed(MessageStatus.CANCELLED, MessageStatus.DRAFT)
    assert not states.allowed(MessageStatus.DRY_RUN, MessageStatus.SENT)
    assert not states.allowed(MessageStatus.OVERDUE, MessageStatus.SENT)
    assert not states.allowed(BatchStatus.COMPLETED, BatchStatus.RUNNING)
    with pytest.raises(states.IllegalTransition, match="can no longer be cancelled"):
        states.check(MessageStatus.SENDING, MessageStatus.CANCELLED)


def test_asking_for_an_illegal_move_is_a_programming_error(app):
    from dashboard.extensions import db

    with pytest.raises(ValueError, match="sent -> draft is not allowed"):
        states.move_message(
            db.session, 1, MessageStatus.DRAFT, now=NOW, expected=[MessageStatus.SENT]
        )


def _payload(n: int) -> Payload:
    return Payload(n, "a@x.test", f"g{n}@x.test", b"x", f"<{n}@x>", idempotency_key(n))


class Flaky(Transport):
    """Sends until the third payload, where the server goes away."""

    def send(self, payload: Payload) -> SendResult:
        if payload.delivery_id == 3:
            raise Unreachable("connection refused")
        return SendResult.sent(str(payload.delivery_id))


def test_a_group_stops_at_an_outage_and_charges_nobody_for_the_rest():
    results = Flaky().send_group([_payload(n) for n in range(1, 6)])
    assert [r.ok for r in results[:2]] == [True, True]
    assert all(isinstance(r, Unreachable) for r in results[2:])


def test_the_pool_cuts_groups_of_the_transports_size_and_keeps_the_order():
    seen: list[list[int]] = []

    class Recording(Transport):
        def send_group(self, payloads):
            seen.append([p.delivery_id for p in payloads])
            return [SendResult.sent(str(p.delivery_id)) for p in payloads]

    pool = SenderPool(TransportSpec("rec", Recording, group_size=4), size=2)
    try:
        results = pool.wait(pool.submit([_payload(n) for n in range(10)]), 1.0, lambda: None)
    finally:
        pool.close()
    assert [r.provider_id for r in results] == [str(n) for n in range(10)]
    assert sorted(len(g) for g in seen) == [2, 4, 4]


def test_without_a_rate_each_thread_takes_the_next_e_mail_and_the_order_is_kept():
    """One task per thread (not per e-mail): a slow answer holds up only its thread, the
    others take the rest, and the results come back in the order of the payloads."""
    threads: set[str] = set()
    # The first three e-mails meet here, so each of the three threads must hold one (with
    # fewer threads the barrier breaks); then the first answer is slow.
    first_three = threading.Barrier(3, timeout=10)

    class Uneven(Transport):
        def send(self, payload):
            threads.add(threading.current_thread().name)
            if payload.delivery_id < 3:
                first_three.wait()
            time.sleep(0.05 if payload.delivery_id == 0 else 0.001)
            return SendResult.sent(str(payload.delivery_id))

    pool = SenderPool(TransportSpec("uneven", Uneven), size=3)
    try:
        futures = pool.submit([_payload(n) for n in range(30)])
        results = pool.wait(futures, 1.0, lambda: None)
    finally:
        pool.close()
    assert len(futures) == 1  # one future for the chunk, not one per e-mail
    assert [r.provider_id for r in results] == [str(n) for n in range(30)]
    assert len(threads) == 3


def test_a_bug_in_a_sending_thread_is_raised_once_every_thread_has_stopped():
    sent: list[int] = []

    class Buggy(Transport):
        def send(self, payload):
            if payload.delivery_id == 2:
                raise KeyError("a bug, not an outage")
            time.sleep(0.01)
            sent.append(payload.delivery_id)
            return SendResult.sent()

    pool = SenderPool(TransportSpec("buggy", Buggy), size=2)
    try:
        future = pool.submit([_payload(n) for n in range(8)])
        with pytest.raises(KeyError, match="a bug"):
            pool.wait(future, 1.0, lambda: None)
        assert sorted(sent) == [0, 1, 3, 4, 5, 6, 7]  # the other thread went on meanwhile
    finally:
        pool.close()


def test_idempotency_keys_are_stable_per_delivery_and_distinct_between_deliveries():
    assert idempotency_key(41) == idempotency_key(41) != idempotency_key(42)


def test_no_status_is_written_outside_the_guarded_transition():
    """Every UPDATE that sets a message's or a batch's status lives in dispatch/states.py."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "dashboard"
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "states.py":
            continue
        text = path.read_text()
        for match in re.finditer(r"sa\.update\((Message|Batch)\)[^;]*?\.values\(([^)]*)\)", text):
            if re.search(r"\bstatus\s*=", match.group(2)):
                offenders.append(f"{path.relative_to(root)}: {match.group(0)[:80]}")
        if re.search(r"\b(message|batch)\.status\s*=(?!=)", text):
            offenders.append(f"{path.relative_to(root)}: assigns .status")
    assert offenders == []
