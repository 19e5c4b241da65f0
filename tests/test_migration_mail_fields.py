"""The migration that gives events their end and sender identity and messages their
calendar flag fills the rows that already exist, on both engines."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from dashboard import create_app
from dashboard.extensions import db
from tests.conftest import BASE_ENV


@pytest.fixture
def empty_url(db_engine: str, tmp_path: Path, request: pytest.FixtureRequest):
    """A database without any schema yet."""
    if db_engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"empty_{uuid.uuid4().hex[:12]}"
    cluster.execute(f"CREATE DATABASE {name}")
    yield cluster.url(name)
    cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_existing_events_end_two_hours_later_and_reminders_attach_the_invitation(empty_url):
    """Also: no row is lost on the way (rebuilding a table on SQLite would cascade)."""
    app = create_app(env={**BASE_ENV, "DATABASE_URL": empty_url})
    with app.app_context():
        upgrade(revision="0006")
        stamp = datetime(2030, 3, 31, 0, 30, 15, 123456)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO events (id, name, starts_at, timezone, venue, created_at,"
                    " updated_at) VALUES (1, 'Old', :t, 'Europe/Berlin', '', :t, :t)"
                ),
                {"t": stamp},
            )
            for kind in ("custom", "reminder_1d"):
                conn.execute(
                    sa.text(
                        "INSERT INTO messages (event_id, kind, audience, channel, subject, body,"
                        " status, created_at, updated_at) VALUES (1, :kind, 'everyone', 'email',"
                        " 's', 'b', 'scheduled', :t, :t)"
                    ),
                    {"kind": kind, "t": stamp},
                )
        upgrade()
        with db.engine.connect() as conn:
            event = conn.execute(
                sa.text(
                    "SELECT starts_at, ends_at, sender_name, reply_to, calendar_sequence FROM events"
                )
            ).one()
            flags = dict(conn.execute(sa.text("SELECT kind, attach_calendar FROM messages")).all())
        downgrade(revision="0006")  # and back, losing no row
        with db.engine.connect() as conn:
            kept = conn.execute(
                sa.text("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM messages)")
            ).one()
            columns = {c["name"] for c in sa.inspect(conn).get_columns("events")}
        db.engine.dispose()
    assert tuple(kept) == (1, 2) and "ends_at" not in columns
    ends = (
        event.ends_at
        if isinstance(event.ends_at, datetime)
        else datetime.fromisoformat(event.ends_at)
    )
    starts = (
        event.starts_at
        if isinstance(event.starts_at, datetime)
        else datetime.fromisoformat(event.starts_at)
    )
    assert (ends - starts).total_seconds() == pytest.approx(7200, abs=0.001)
    assert (event.sender_name, event.reply_to, event.calendar_sequence) == ("", "", 0)
    assert {kind: bool(flag) for kind, flag in flags.items()} == {
        "custom": False,
        "reminder_1d": True,
    }
