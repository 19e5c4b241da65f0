"""Migration 0011 (pause, resume, stop, hold): its CHECK constraints admit the new values and
nothing else, and it goes down to 0009 and up again on a filled database, both engines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from dashboard.audit.services import Actor
from dashboard.dispatch import control
from dashboard.extensions import db

TABLES = ("events", "guests", "messages", "deliveries", "batches", "batch_entries", "audit_log")


def _counts() -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}


@pytest.mark.parametrize(
    ("sql", "good", "bad"),
    [
        ("UPDATE messages SET status = :v", ("paused", "stopped"), "halted"),
        ("UPDATE deliveries SET status = :v", ("cancelled",), "stopped"),
        ("UPDATE batches SET status = :v", ("paused", "stopped"), "cancelled"),
        ("UPDATE batches SET trigger = :v", ("stop",), "pause"),
        ("UPDATE batch_entries SET outcome = :v", ("cancelled",), "stopped"),
    ],
)
def test_the_new_values_pass_the_checks_and_others_do_not(
    sql, good, bad, app, event, make_guests, make_message, dispatcher
):
    make_guests(event, 1)
    make_message(event)
    dispatcher.poll()  # a delivery, a batch and an entry to write on
    for value in good:
        with db.engine.begin() as conn:
            conn.execute(sa.text(sql), {"v": value})
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(sa.text(sql), {"v": bad})


def test_down_to_0009_and_up_again_keeps_every_row_and_sends_nothing_held_back(
    app, event, make_guests, make_message, dispatcher, now
):
    make_guests(event, 4)
    paused = make_message(event, subject="Paused")
    paused.hold_after = 1
    stopped = make_message(event, subject="Stopped")
    stopped.hold_after = 1
    db.session.commit()
    dispatcher.poll()  # both send one, then hold
    db.session.refresh(stopped)
    control.stop(db.session, stopped, Actor("host@example.com"), now, dispatcher.settings.lease)
    db.session.commit()
    before = _counts()
    db.session.remove()

    downgrade(revision="0009")
    assert _counts() == before
    with db.engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT subject, status FROM messages")).all())
        outcomes = conn.execute(sa.text("SELECT DISTINCT outcome FROM batch_entries")).scalars()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("messages")}
    assert (statuses["Paused"], statuses["Stopped"]) == ("cancelled", "cancelled")
    assert sorted(outcomes) == ["sent", "skipped"]
    assert not columns & {"hold_after", "held_at", "paused_at", "paused_by", "final_cancelled"}

    upgrade()
    assert _counts() == before
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            sql = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name IN ('messages', 'batches')")
            ).scalars()
            assert all("AUTOINCREMENT" in text for text in sql)
