"""Plain helpers the tests import; the fixtures are in the conftests."""

from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskClient

from dashboard.auth.models import User
from dashboard.dispatch.models import Batch, BatchEntry, Delivery
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus
from tests.smtp_server import SMTPServer

HX = {"HX-Request": "true"}


def smtp_env(server: SMTPServer) -> dict[str, str]:
    """What ``app_env`` adds so the app sends through ``server``, a real SMTP server on
    loopback, with two sender threads and small commits."""
    return {**server.config(), "DISPATCH_CONCURRENCY": "2", "DISPATCH_COMMIT_EVERY": "10"}


def login_session(client: FlaskClient, user: User) -> None:
    """Sign in without the login form (for tests that turn CSRF on)."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True


def set_status(message: Message, status: MessageStatus) -> None:
    """Change the row behind the session's back, like another process would."""
    with db.engine.begin() as conn:
        conn.execute(
            Message.__table__.update()
            .where(Message.__table__.c.id == message.id)
            .values(status=status.value)
        )


def batches_of(message: Message) -> list[Batch]:
    return list(
        db.session.scalars(
            sa.select(Batch).where(Batch.message_id == message.id).order_by(Batch.id)
        )
    )


def deliveries_of(message: Message) -> list[Delivery]:
    return list(
        db.session.scalars(
            sa.select(Delivery).where(Delivery.message_id == message.id).order_by(Delivery.id)
        )
    )


def entries_of(batch: Batch) -> list[BatchEntry]:
    return list(db.session.scalars(sa.select(BatchEntry).where(BatchEntry.batch_id == batch.id)))
