"""A dry run that can be undone: nothing is sent, every recipient stays pending, the message
ends in ``dry_run`` and is never picked again, and send-now with dry run off sends it for
real to everyone."""

from __future__ import annotations

from collections import Counter

import pytest

from dashboard import create_app
from dashboard.audit.services import Actor
from dashboard.dispatch.models import DeliveryStatus, Outcome
from dashboard.dispatch.scheduler import build_dispatcher
from dashboard.events.models import RsvpStatus
from dashboard.extensions import db
from dashboard.messages import services as messages
from dashboard.messages.models import MessageStatus
from tests.admin.conftest import STATS_TOKEN
from tests.helpers import batches_of, deliveries_of, entries_of


@pytest.fixture
def app_env(app_env):
    return {**app_env, "STATS_TOKEN": STATS_TOKEN}


@pytest.fixture
def dry_dispatcher(app_env):
    """A worker of the same database with DISPATCH_DRY_RUN on."""
    dry_app = create_app(env={**app_env, "DISPATCH_DRY_RUN": "on"})
    return build_dispatcher(dry_app, db.session, worker="dry-worker")


def test_a_dry_run_can_be_sent_for_real_afterwards(
    client, dispatcher, dry_dispatcher, make_event, make_guests, make_message, owner, now,
    smtp_server,
):  # fmt: skip
    event = make_event()
    make_guests(event, 3, RsvpStatus.ATTENDING)
    make_guests(event, 1, prefix="gone", unsubscribed=True)
    message = make_message(event)

    dry_dispatcher.poll()
    db.session.refresh(message)
    assert smtp_server.received == []
    assert message.status is MessageStatus.DRY_RUN
    assert message.status_reason == "Dry run: 3 would have received it; nothing was sent"
    [dry] = batches_of(message)
    assert dry.dry_run and (dry.total, dry.sent, dry.skipped) == (4, 0, 4)
    assert Counter(e.outcome for e in entries_of(dry)) == {Outcome.SKIPPED: 1, Outcome.DRY_RUN: 3}
    rows = {d.email: (d.status, d.dry_run) for d in deliveries_of(message)}
    assert rows == {
        **{f"guest{i}@example.org": (DeliveryStatus.PENDING, True) for i in range(3)},
        "gone3@example.org": (DeliveryStatus.SKIPPED, False),
    }

    # Neither kind of worker picks a dry-run message up again on its own.
    assert dry_dispatcher.poll().batches == [] and dispatcher.poll().batches == []

    stats = client.get("/api/stats", headers={"Authorization": f"Bearer {STATS_TOKEN}"}).json
    assert stats["messages"]["dry_run"] == 1
    assert stats["outcomes"]["all"] == {
        "sent": 0,
        "failed": 0,
        "skipped": 1,
        "dry_run": 3,
        "cancelled": 0,
    }

    # Dry run off: send-now sends it for real, to everyone the dry run reached.
    messages.send_now(db.session, message, Actor.of(owner), now=now)
    db.session.commit()
    dispatcher.poll()
    db.session.refresh(message)
    assert (message.status, message.status_reason) == (MessageStatus.SENT, None)
    assert sorted(smtp_server.recipients()) == [f"guest{i}@example.org" for i in range(3)]
    assert all(
        not d.dry_run and d.status in (DeliveryStatus.SENT, DeliveryStatus.SKIPPED)
        for d in deliveries_of(message)
    )
    stats = client.get("/api/stats", headers={"Authorization": f"Bearer {STATS_TOKEN}"}).json
    assert stats["outcomes"]["all"]["sent"] == 3 and stats["outcomes"]["all"]["dry_run"] == 3


def test_a_dry_run_message_is_listed_as_sent_with_its_reason_and_a_button(
    client, auth, dry_dispatcher, make_event, make_guests, make_message, owner
):
    event = make_event()
    make_guests(event, 2)
    message = make_message(event)
    dry_dispatcher.poll()
    auth.login(owner)
    html = client.get(f"/events/{event.id}/communications/sent").get_data(as_text=True)
    assert "Dry run: 2 would have received it; nothing was sent" in html
    assert f'/events/{event.id}/communications/{message.id}/send-now"' in html
    assert "Send for real" in html
    api = client.get(f"/api/events/{event.id}/messages/{message.id}").get_json()
    assert api["status"] == "dry_run" and api["counts"]["pending"] == 2
