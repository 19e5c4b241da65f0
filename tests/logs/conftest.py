"""Fixtures of the batch-log tests: the real dispatcher against a real SMTP server, plus
small factories for batches, collaborators and API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dashboard.auth.models import User
from dashboard.auth.services import create_token
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
from dashboard.dispatch.scheduler import build_dispatcher
from dashboard.events.models import Collaborator, Event, Role
from dashboard.extensions import db
from dashboard.messages.models import Audience, Message, MessageStatus

STATS_TOKEN = "stats-token-for-tests-0123456789"


@pytest.fixture
def app_env(app_env, smtp_server):
    """Sends go through a real SMTP server on loopback (as in tests/dispatch)."""
    return {
        **app_env,
        **smtp_server.config(),
        "DISPATCH_CONCURRENCY": "2",
        "DISPATCH_COMMIT_EVERY": "10",
        "STATS_TOKEN": STATS_TOKEN,
    }


@pytest.fixture
def dispatcher(app):
    return build_dispatcher(app, db.session, worker="test-dispatcher")


@pytest.fixture
def make_message(app, owner, now):
    def factory(
        event: Event,
        *,
        audience: Audience = Audience.EVERYONE,
        subject: str = "Hello {{guest_name}}",
        body: str = "Dear {{guest_name}},\nsee you at {{event_name}}.\n{{unsubscribe_link}}",
        status: MessageStatus = MessageStatus.SCHEDULED,
        due: bool = True,
    ) -> Message:
        message = Message(
            event_id=event.id,
            audience=audience,
            subject=subject,
            body=body,
            status=status,
            send_at=now - timedelta(seconds=1) if due else now + timedelta(days=1),
            created_by_id=owner.id,
        )
        db.session.add(message)
        db.session.commit()
        return message

    return factory


@pytest.fixture
def make_batch(app, now):
    """A hand-made batch (e.g. one that is running right now)."""

    def factory(message: Message, **fields: Any) -> Batch:
        values: dict[str, Any] = {
            "message_id": message.id,
            "trigger": BatchTrigger.SCHEDULE,
            "initiated_label": "scheduler",
            "status": BatchStatus.RUNNING,
            "started_at": now,
            "heartbeat_at": now,
        }
        values.update(fields)
        batch = Batch(**values)
        db.session.add(batch)
        db.session.commit()
        return batch

    return factory


@pytest.fixture
def sent_with_failures(dispatcher, make_event, make_guests, make_message, smtp_server):
    """A message dispatched for real: 4 guests got it, 2 were refused with a 550."""
    event = make_event()
    make_guests(event, 4)
    make_guests(event, 2, prefix="bad")
    smtp_server.handler.rules = {"bad": "550 5.1.1 No such user here"}
    message = make_message(event)
    dispatcher.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT_WITH_FAILURES
    [batch] = db.session.scalars(sa.select(Batch).where(Batch.message_id == message.id)).all()
    return event, message, batch


def add_collaborator(event: Event, user: User, role: Role) -> None:
    db.session.add(Collaborator(event_id=event.id, user_id=user.id, role=role))
    db.session.commit()


def bearer(user: User) -> dict[str, str]:
    raw = create_token(db.session, user, "tests")
    db.session.commit()
    return {"Authorization": f"Bearer {raw}"}


def ago(now: datetime, **delta: float) -> datetime:
    return now - timedelta(**delta)
