"""Statuses agree with each other: a message waiting for an automatic retry says so, a
send-now message never reads "scheduled for", a batch page never says "Started by Sent now
by", and a Sent-tab row shows its status once."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest

from dashboard.dispatch.models import (
    BatchStatus,
    BatchTrigger,
    Delivery,
    DeliveryStatus,
    ErrorKind,
)
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import HX


@pytest.fixture
def waiting_retry(event, make_guests, make_message, make_batch, now):
    """A sending message whose only batch finished with 2 temporary failures, retried at +10 min."""
    guests = make_guests(event, 3)
    message = make_message(event, status=MessageStatus.SENDING, send_at=now - timedelta(minutes=5))
    make_batch(
        message,
        status=BatchStatus.COMPLETED_WITH_FAILURES,
        finished_at=now - timedelta(minutes=4),
        total=3,
        sent=1,
        failed=2,
    )
    retry_at = now + timedelta(minutes=10)
    for i, guest in enumerate(guests):
        failed = i > 0
        db.session.add(
            Delivery(
                message_id=message.id,
                guest_id=guest.id,
                name=guest.name,
                email=guest.email,
                status=DeliveryStatus.FAILED if failed else DeliveryStatus.SENT,
                attempts=1,
                error_kind=ErrorKind.TRANSIENT if failed else None,
                last_error="450 4.2.1 busy" if failed else None,
                next_attempt_at=retry_at + timedelta(minutes=i - 1) if failed else None,
            )
        )
    db.session.commit()
    return message, retry_at


def test_a_message_waiting_for_an_automatic_retry_says_when(
    client, auth, owner, event, waiting_retry
):
    message, retry_at = waiting_retry
    local = retry_at.astimezone(event.tz)
    same_day = local.date() == (retry_at - timedelta(minutes=10)).astimezone(event.tz).date()
    when = f"{local:%H:%M}" if same_day else f"{local:%a %d %b, %H:%M}"  # past midnight
    expected = f"Retrying 2 at {when} {local.tzname()}"
    auth.login(owner)
    row = client.get(f"/events/{event.id}/communications/sent").text
    row = row.split(f'<tr id="message-{message.id}"')[1].split("</tr>")[0]
    assert f'id="message-status-{message.id}">{expected}</span>' in row
    assert ">Sending</span>" not in row

    live = client.get(
        f"/events/{event.id}/messages/{message.id}/progress", query_string={"row": 1}, headers=HX
    ).text
    assert f'hx-swap-oob="true">{expected}</span>' in live
    assert "Status:" not in live  # the row's own column shows it: once
    page = client.get(f"/events/{event.id}/messages/{message.id}").text
    assert (
        f'Status: <span class="badge status-sending" id="message-status-{message.id}">{expected}'
        in page
    )


def test_send_now_pages_say_sent_now_not_scheduled_nor_started_by_sent_now(
    client, auth, owner, event, make_message, make_batch, now
):
    message = make_message(event, status=MessageStatus.SENT, send_at=now)
    batch = make_batch(
        message,
        trigger=BatchTrigger.SEND_NOW,
        initiated_by_id=owner.id,
        initiated_label=owner.email,
        status=BatchStatus.COMPLETED,
        finished_at=now,
    )
    auth.login(owner)
    page = html.unescape(client.get(f"/events/{event.id}/messages/{message.id}").text)
    assert "scheduled for" not in page and "went out" in page
    batch_page = client.get(f"/events/{event.id}/batches/{batch.id}").text
    assert f'<p class="started-by">Sent now by {owner.email}, ' in batch_page
    assert "Started by Sent now" not in batch_page

    scheduled = make_batch(message, status=BatchStatus.COMPLETED, finished_at=now)
    assert (
        '<p class="started-by">Started by the scheduler, '
        in client.get(f"/events/{event.id}/batches/{scheduled.id}").text
    )
