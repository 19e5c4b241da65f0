"""Plain helpers the tests import; the fixtures are in the conftests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient

from dashboard.auth.models import User
from dashboard.auth.services import start_login
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
    token = start_login(
        db.session, user, remember=False, now=datetime.now(UTC), remember_for=timedelta(days=1)
    )
    db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = token
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


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _executemany) -> None:
        statements.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def bulk_guests(
    event_id: int, n: int, *, name: str = "Guest {i}", email: str = "g{i}@example.org"
) -> None:
    """``n`` guests in one INSERT (the factories add rows one by one; big tests need speed)."""
    from dashboard.events.models import Guest

    db.session.execute(
        sa.insert(Guest),
        [
            {
                "event_id": event_id,
                "name": name.format(i=i),
                "email": email.format(i=i),
                "email_key": email.format(i=i),
                "token": f"token-{event_id}-{i}",
            }
            for i in range(n)
        ],
    )


def query_plan(statement: sa.Executable) -> str:
    """SQLite's EXPLAIN QUERY PLAN of a statement, its values written in, as one line."""
    compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
    return " ".join(
        str(row[-1]) for row in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
    )


def partial_index(table: str, name: str) -> tuple[list[str], str]:
    """An index's columns and its WHERE clause (SQLite's or PostgreSQL's), as inspected."""
    index = {i["name"]: i for i in sa.inspect(db.engine).get_indexes(table)}[name]
    options = index.get("dialect_options", {})
    where = options.get("sqlite_where")
    return index["column_names"], str(
        where if where is not None else options.get("postgresql_where")
    )
