"""A 20,000-entry batch pages without per-row queries, from the (batch_id, outcome, id) index."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.db_types import UTCDateTime
from dashboard.dispatch.models import BatchEntry, BatchStatus, Delivery, DeliveryStatus, Outcome
from dashboard.dispatch.queries import EntryFilter, batch_entries
from dashboard.events.models import Guest
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import HX, bulk_guests, counted_statements, query_plan

N = 20_000
pytestmark = pytest.mark.slow


@pytest.fixture
def big_batch(app, make_event, make_message, make_batch, now):
    event = make_event()
    bulk_guests(event.id, N, name="Guest {i:05d}", email="g{i:05d}@example.org")
    message = make_message(event, status=MessageStatus.SENT_WITH_FAILURES)
    failed = sa.func.mod(Guest.id, 10) == 0  # every tenth guest failed
    db.session.execute(
        sa.insert(Delivery).from_select(
            [
                "message_id",
                "guest_id",
                "name",
                "email",
                "status",
                "attempts",
                "created_at",
                "updated_at",
            ],
            sa.select(
                sa.literal(message.id),
                Guest.id,
                Guest.name,
                Guest.email,
                sa.case((failed, DeliveryStatus.FAILED.value), else_=DeliveryStatus.SENT.value),
                sa.literal(1),
                sa.literal(now, UTCDateTime()),
                sa.literal(now, UTCDateTime()),
            ).where(Guest.event_id == event.id),
        )
    )
    batch = make_batch(
        message,
        status=BatchStatus.COMPLETED_WITH_FAILURES,
        total=N,
        sent=N - N // 10,
        failed=N // 10,
        finished_at=now + timedelta(minutes=3),
    )
    is_failed = Delivery.status == DeliveryStatus.FAILED
    db.session.execute(
        sa.insert(BatchEntry).from_select(
            ["batch_id", "delivery_id", "outcome", "reason", "processed_at"],
            sa.select(
                sa.literal(batch.id),
                Delivery.id,
                sa.case((is_failed, Outcome.FAILED.value), else_=Outcome.SENT.value),
                sa.case((is_failed, sa.literal("550 mailbox unavailable")), else_=sa.null()),
                sa.literal(now, UTCDateTime()),
            ).where(Delivery.message_id == message.id),
        )
    )
    db.session.commit()
    return event, batch


def test_a_deep_page_is_a_handful_of_queries(client, auth, big_batch):
    event, batch = big_batch
    auth.login()
    url = f"/events/{event.id}/batches/{batch.id}"
    with counted_statements() as seen:
        response = client.get(url, query_string={"page": 380}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count('<tr class="entry-') == 50
    assert "Page 380 of 400" in html
    assert len(seen) <= 6, seen  # user, event, role, batch, count, one page: never per row

    with counted_statements() as seen:
        failed = client.get(url, query_string={"outcome": "failed", "page": 40}, headers=HX)
    html = failed.get_data(as_text=True)
    assert html.count('<tr class="entry-failed"') == 50 and "Page 40 of 40" in html
    assert len(seen) <= 6, seen

    found = client.get(url, query_string={"q": "g01234@"}, headers=HX).get_data(as_text=True)
    assert found.count('<tr class="entry-') == 1 and "Guest 01234" in found


@pytest.mark.sqlite_only
def test_entry_pages_use_the_batch_index(big_batch):
    _, batch = big_batch
    rows, total = batch_entries(db.session, batch.id, EntryFilter.FAILED, limit=50, offset=1950)
    assert total == N // 10 and len(rows) == 50
    assert all(row.outcome is Outcome.FAILED for row in rows)

    page_ids = (
        sa.select(BatchEntry.id)
        .where(BatchEntry.batch_id == batch.id, BatchEntry.outcome.in_([Outcome.FAILED]))
        .order_by(BatchEntry.id)
        .limit(50)
        .offset(1950)
    )
    plan = query_plan(page_ids)
    assert "ix_batch_entries_batch_id_outcome_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # ordered by the index, no sort of 2,000 rows
