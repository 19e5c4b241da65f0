from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch, BatchEntry, Delivery
from dashboard.dispatch.scheduler import build_dispatcher
from dashboard.extensions import db
from dashboard.messages.models import Audience, Message, MessageStatus


@pytest.fixture
def app_env(app_env, smtp_server):
    """Dispatch tests send through a real SMTP server on loopback."""
    return {
        **app_env,
        **smtp_server.config(),
        "DISPATCH_CONCURRENCY": "2",
        "DISPATCH_COMMIT_EVERY": "10",
    }


@pytest.fixture
def dispatcher(app):
    return build_dispatcher(app, db.session, worker="test-dispatcher")


@pytest.fixture
def make_message(app, owner, now):
    def factory(
        event,
        *,
        audience=Audience.EVERYONE,
        subject="Hello {{guest_name}}",
        body="Dear {{guest_name}},\nsee you at {{event_name}}.\n{{unsubscribe_link}}",
        due=True,
    ) -> Message:
        message = Message(
            event_id=event.id,
            audience=audience,
            subject=subject,
            body=body,
            status=MessageStatus.SCHEDULED,
            send_at=now - timedelta(seconds=1) if due else now + timedelta(days=1),
            created_by_id=owner.id,
        )
        db.session.add(message)
        db.session.commit()
        return message

    return factory


def batches_of(message) -> list[Batch]:
    return list(
        db.session.scalars(
            sa.select(Batch).where(Batch.message_id == message.id).order_by(Batch.id)
        )
    )


def deliveries_of(message) -> list[Delivery]:
    return list(
        db.session.scalars(
            sa.select(Delivery).where(Delivery.message_id == message.id).order_by(Delivery.id)
        )
    )


def entries_of(batch) -> list[BatchEntry]:
    return list(db.session.scalars(sa.select(BatchEntry).where(BatchEntry.batch_id == batch.id)))
