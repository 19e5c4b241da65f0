"""The lifecycle migration: its CHECK constraints admit the new statuses (and nothing else),
existing events become active, and it goes down and up again on both engines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.messages.models import Message

INSERT_MESSAGE = sa.text(
    "INSERT INTO messages (event_id, kind, audience, channel, subject, body, status, created_at,"
    " updated_at) VALUES (:event, 'custom', :audience, 'email', 's', 'b', :status, :t, :t)"
)


def _insert(conn, event_id: int, status: str, audience: str = "everyone") -> None:
    conn.execute(
        INSERT_MESSAGE,
        {"event": event_id, "status": status, "audience": audience, "t": "2030-01-01"},
    )


def test_the_new_values_pass_the_check_constraints_and_others_do_not(app, event):
    with db.engine.begin() as conn:
        _insert(conn, event.id, "overdue")
        _insert(conn, event.id, "dry_run", audience="not_declined")
    for status, audience in (("stale", "everyone"), ("overdue", "vips")):
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            _insert(conn, event.id, status, audience)
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE events SET status = 'postponed' WHERE id = :id"), {"id": event.id}
        )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 6  # 4 reminders


TABLES = ("events", "guests", "messages", "deliveries", "batches", "batch_entries", "audit_log")


def _counts() -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}


def test_down_to_the_previous_head_and_up_again_keeps_every_row(
    app, event, make_guests, make_message, dispatcher
):
    """SQLite rebuilds ``messages`` and ``events`` for this migration; with foreign keys on,
    a rebuild would cascade-delete the deliveries, batches and guests."""
    make_guests(event, 3)
    make_message(event)
    dispatcher.poll()  # deliveries, a batch and its entries
    with db.engine.begin() as conn:
        _insert(conn, event.id, "overdue")
        conn.execute(
            sa.text("UPDATE events SET status = 'cancelled' WHERE id = :id"), {"id": event.id}
        )
    before = _counts()
    assert before["deliveries"] == 3 and before["batch_entries"] == 3
    db.session.remove()

    downgrade(revision="0006")
    assert _counts() == before
    with db.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("events")}
        statuses = conn.execute(sa.text("SELECT status FROM messages")).scalars().all()
    assert "status" not in columns and "cancelled_at" not in columns
    assert sorted(statuses) == [
        "cancelled",
        "scheduled",
        "scheduled",
        "scheduled",
        "scheduled",
        "sent",
    ]

    upgrade()
    assert _counts() == before
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM events")).scalars().all() == ["active"]
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
