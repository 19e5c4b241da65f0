"""Retry tells a temporary failure from a permanent one: temporary failures are retried by
default, refused addresses only on purpose (with a way to fix the address); attempt
numbers, the entries' attempts and the filter counts agree with each other."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.dispatch import rules
from dashboard.dispatch.models import Batch, BatchTrigger, Delivery, DeliveryStatus, ErrorKind
from dashboard.dispatch.services import failed_kinds, failed_kinds_query, retry_failed
from dashboard.dispatch.settings import DispatchSettings
from dashboard.dispatch.transports import SendResult
from dashboard.errors import Conflict
from dashboard.extensions import db
from tests.helpers import HX, partial_index, query_plan

BUSY = "450 4.2.1 Mailbox busy, try later"
REFUSED = "550 5.7.1 Recipient refused by policy"


@pytest.fixture
def mixed_failures(sent_with_failures):
    """4 sent, 1 temporary failure (a busy mailbox), 1 permanent (a refused address)."""
    event, message, batch = sent_with_failures
    soft, hard = db.session.scalars(
        sa.select(Delivery)
        .where(Delivery.message_id == message.id, Delivery.status == DeliveryStatus.FAILED)
        .order_by(Delivery.id)
    ).all()
    soft.error_kind, soft.last_error = ErrorKind.TRANSIENT, BUSY
    db.session.commit()
    return event, message, batch, soft, hard


def test_retry_takes_the_temporary_failures_and_the_permanent_only_on_purpose(
    mixed_failures, owner, now
):
    event, message, _, soft, hard = mixed_failures
    assert failed_kinds(db.session, message.id) == (1, 1)
    retry_failed(db.session, message, Actor.of(owner), now)
    db.session.commit()
    db.session.refresh(soft)
    db.session.refresh(hard)
    assert (soft.status, hard.status) == (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


def test_only_permanent_failures_left_says_so_and_how_to_go_on(sent_with_failures, owner, now):
    event, message, _ = sent_with_failures  # two 550s: both permanent
    with pytest.raises(Conflict, match="2 recipients failed permanently .* fix the address"):
        retry_failed(db.session, message, Actor.of(owner), now)
    db.session.rollback()
    batch = retry_failed(db.session, message, Actor.of(owner), now, permanent=True)
    db.session.commit()
    pending = db.session.scalar(
        sa.select(sa.func.count()).where(
            Delivery.message_id == message.id, Delivery.status == DeliveryStatus.PENDING
        )
    )
    assert pending == 2 and batch.trigger is BatchTrigger.RETRY_FAILED


def test_message_page_offers_temporary_retry_and_a_way_to_fix_refused_addresses(
    client, auth, owner, mixed_failures
):
    event, message, batch, _, hard = mixed_failures
    auth.login(owner)
    page = html.unescape(client.get(f"/events/{event.id}/messages/{message.id}").text)
    assert "Retry failed (1)" in page
    assert "Retry permanent failures too (1)" in page
    assert "1 recipient was refused for good" in page
    fix = f"/events/{event.id}/batches/{batch.id}?outcome=failed"
    assert f'href="{fix}">Fix the address</a>' in page

    entries = html.unescape(client.get(fix).text)
    assert f"/events/{event.id}/guests/{hard.guest_id}/edit" in entries
    assert f"Fix {hard.name}’s address" in entries

    # The default retry (no "permanent") leaves the refused address alone.
    client.post(f"/events/{event.id}/messages/{message.id}/retry-failed", headers=HX)
    db.session.refresh(hard)
    assert hard.status is DeliveryStatus.FAILED
    assert (
        client.post(f"/api/events/{event.id}/messages/{message.id}/retry-failed").status_code == 409
    )


def test_a_retry_beyond_the_automatic_attempts_never_reads_attempt_3_of_2(now):
    settings = DispatchSettings(
        base_url="http://x.test", sender="a@x.test", max_attempts=2, retry_base_seconds=60
    )
    busy = SendResult.transient("451 busy")
    assert rules.judge(busy, 0, settings, now).reason == "451 busy (attempt 1 of 2; retrying)"
    assert rules.judge(busy, 1, settings, now).reason == "451 busy (attempt 2 of 2; giving up)"
    third = rules.judge(busy, 2, settings, now)
    assert "of 2" not in third.reason
    assert third.reason == "451 busy (attempt 3, a retry on request; not retried automatically)"
    assert third.delivery["next_attempt_at"] is None


def test_entries_say_attempts_in_all_and_the_filter_counts_follow_the_finished_batch(
    client, auth, owner, sent_with_failures, dispatcher, now
):
    event, message, _ = sent_with_failures
    retry = retry_failed(db.session, message, Actor.of(owner), now, permanent=True)
    db.session.commit()
    auth.login(owner)
    url = f"/events/{event.id}/batches/{retry.id}"
    page = client.get(url).text
    assert ">All (0)<" in page and ">Failed (0)<" in page  # read before the batch ran

    dispatcher.clock = lambda: now + timedelta(seconds=5)
    dispatcher.poll()  # the retry batch runs: the two 550s again
    assert db.session.get(Batch, retry.id).failed == 2
    # The entries reload themselves when the batch finishes; the filter comes with them.
    fragment = client.get(url, headers={**HX, "HX-Trigger": "entries"}).text
    assert 'id="outcome"' in fragment and 'hx-swap-oob="true"' in fragment
    assert ">All (2)<" in fragment and ">Failed (2)<" in fragment
    assert "2 attempts in all" in fragment
    assert ">Attempts in all<" in fragment
    # A filter change swaps only the entries (the select keeps its focus).
    assert 'id="outcome"' not in client.get(url, headers={**HX, "HX-Trigger": "outcome"}).text


def test_admin_retry_of_one_error_group_leaves_the_other_errors_alone(
    client, auth, make_user, mixed_failures
):
    event, message, _, soft, hard = mixed_failures
    auth.login(make_user("admin@example.com", admin=True))
    page = html.unescape(client.get("/admin/failures").text)
    busy_group = page.split(f"<strong>{BUSY}</strong>")[1].split("</header>")[0]
    refused_group = page.split(f"<strong>{REFUSED}</strong>")[1].split("</header>")[0]
    assert "Retry all (1 message)" in busy_group
    assert "Retry anyway (1 message)" in refused_group and "fails again" in refused_group

    client.post(
        "/admin/failures/retry", data={"message_id": message.id, "reason": BUSY}, headers=HX
    )
    db.session.refresh(soft)
    db.session.refresh(hard)
    assert (soft.status, hard.status) == (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


@pytest.mark.sqlite_only
def test_failed_kinds_are_counted_from_the_partial_index_alone(mixed_failures):
    """The batch page's retry counts read ``ix_deliveries_failed_kind`` and never the table
    (each failed row's kind read from the table cost 22.8 ms at 100,000 guests)."""
    _, message, _, _, _ = mixed_failures
    query = failed_kinds_query(message.id)
    plan = query_plan(query)
    assert "COVERING INDEX ix_deliveries_failed_kind" in plan, plan
    assert db.session.execute(query).one() == (1, 1)


def test_only_failed_rows_are_in_the_failed_kinds_index(app):
    columns, where = partial_index("deliveries", "ix_deliveries_failed_kind")
    assert columns == ["message_id", "status", "error_kind"]
    assert "status" in where and "failed" in where
