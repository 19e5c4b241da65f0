"""The schema comes only from migrations, and the models must not drift from them."""

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from dashboard import create_app
from dashboard.admin.retention import cleanup_logs
from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor, record
from dashboard.dispatch import recipients
from dashboard.dispatch.models import BatchStatus
from dashboard.events.models import Event
from dashboard.extensions import db
from tests.conftest import BASE_ENV
from tests.helpers import partial_index


def test_models_match_migrations(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_drift_is_detected(app):
    """The check above can fail: a column added only to the model shows up as a diff."""
    table = db.metadata.tables["guests"]
    extra = sa.Column("phone_drift_probe", sa.String(20))
    table.append_column(extra)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    finally:
        table._columns.remove(extra)
    assert any("phone_drift_probe" in str(item) for item in diff)


def test_partial_index_on_due_messages(app):
    """The poll's partial index exists on both engines."""
    columns, clause = partial_index("messages", "ix_messages_due")
    assert columns == ["send_at"]
    assert "status" in clause and "scheduled" in clause


def test_the_guest_count_triggers_survive_every_migration(app):
    """The kept guest counts live in triggers on ``guests``; a later migration that rebuilds
    the table (SQLite's batch mode copies it to a new one) drops them silently, and the
    recipient count would drift from the guest list. Recreate them in such a migration."""
    if db.engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'guests'"
        expected = {"guest_counts_insert", "guest_counts_delete", "guest_counts_update"}
    else:
        query = (
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'guests'::regclass AND NOT tgisinternal"
        )
        expected = {"guest_counts"}
    assert set(db.session.execute(sa.text(query)).scalars()) == expected


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_with_busy_timeout(app):
    assert db.session.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    assert db.session.execute(sa.text("PRAGMA busy_timeout")).scalar_one() >= 1000


# --- ids are never reused; migration 0008 keeps every row ----------------------------------

#: The tables whose ids people see (in links, alerts, the API); none may hand an id out twice.
NEVER_REUSED = ("events", "guests", "messages", "batches", "deliveries", "audit_log")


def _max_ids() -> dict[str, int]:
    return {
        table: db.session.scalar(sa.text(f"SELECT max(id) FROM {table}")) for table in NEVER_REUSED
    }


def test_ids_are_never_reused_once_every_row_is_deleted(
    app, make_event, make_guests, make_message, make_batch, now
):
    """The retention job can delete every batch; an event's removal takes its messages,
    guests and deliveries. The next rows must not get the old ids (old links would open them)."""

    def fill() -> None:
        event = make_event()
        make_guests(event, 2)
        message = make_message(event)
        recipients.materialize(db.session, message, now)
        make_batch(message, status=BatchStatus.COMPLETED, finished_at=now - timedelta(days=400))
        record(db.session, Actor("tests"), "event.edit", now=now, event_id=event.id)
        db.session.commit()

    fill()
    first = _max_ids()
    cleanup_logs(db.session, now, 180)
    db.session.execute(sa.delete(Event))  # messages, guests and deliveries go with it
    db.session.execute(sa.delete(AuditEntry))
    db.session.commit()
    assert all(value is None for value in _max_ids().values())

    fill()
    for table, before in first.items():
        lowest = db.session.scalar(sa.text(f"SELECT min(id) FROM {table}"))
        assert lowest > before, f"{table} gave out id {lowest} again"


@pytest.mark.sqlite_only
def test_sqlite_tables_use_autoincrement(app):
    for table in NEVER_REUSED:
        sql = db.session.scalar(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"),
            {"t": table},
        )
        assert "AUTOINCREMENT" in sql, table


@pytest.fixture
def empty_database_url(db_engine, tmp_path, request):
    """A database with no schema at all, for upgrading step by step."""
    if db_engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"empty_{uuid.uuid4().hex[:12]}"
    cluster.execute(f"CREATE DATABASE {name}")
    yield cluster.url(name)
    cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _insert(conn, table: str, **values) -> int:
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id"
    return conn.execute(sa.text(sql), values).scalar_one()


def _fill_0006(conn) -> None:
    """Rows as the app at revision 0006 writes them: an event with guests, a message sent
    to them in one batch, and an audit entry; a second event with a draft."""
    t = datetime(2026, 11, 1, 9, 0)
    user = _insert(
        conn, "users", email="o@x.org", name="O", password_hash="x", is_admin=False, created_at=t
    )
    for n in range(2):
        event = _insert(
            conn,
            "events",
            name=f"Gala {n}",
            starts_at=t,
            timezone="UTC",
            venue="",
            created_by_id=user,
            created_at=t,
            updated_at=t,
        )
        message = _insert(
            conn,
            "messages",
            event_id=event,
            kind="custom",
            audience="everyone",
            channel="email",
            subject="Hi",
            body="Hello",
            status="sent" if n == 0 else "draft",
            created_by_id=user,
            created_at=t,
            updated_at=t,
        )
        if n:
            continue
        batch = _insert(
            conn,
            "batches",
            message_id=message,
            trigger="schedule",
            initiated_label="scheduler",
            status="completed",
            dry_run=False,
            total=3,
            sent=3,
            failed=0,
            skipped=0,
            started_at=t,
            finished_at=t,
        )
        for i in range(3):
            guest = _insert(
                conn,
                "guests",
                event_id=event,
                name=f"Guest {i}",
                email=f"g{i}@x.org",
                email_key=f"g{i}@x.org",
                rsvp_status="attending",
                token=f"token-{i}",
                created_at=t,
                updated_at=t,
            )
            delivery = _insert(
                conn,
                "deliveries",
                message_id=message,
                guest_id=guest,
                email=f"g{i}@x.org",
                status="sent",
                dry_run=False,
                attempts=1,
                sent_at=t,
                created_at=t,
                updated_at=t,
            )
            _insert(
                conn,
                "batch_entries",
                batch_id=batch,
                delivery_id=delivery,
                outcome="sent",
                processed_at=t,
            )
        _insert(conn, "audit_log", at=t, actor="scheduler", action="batch.start", details="{}")


def _snapshot(conn) -> dict[str, object]:
    tables = (*NEVER_REUSED, "users", "batch_entries", "collaborators")
    inspector = sa.inspect(conn)
    return {
        "rows": {
            table: conn.execute(sa.text(f"SELECT id FROM {table} ORDER BY id")).scalars().all()
            for table in tables
        },
        "indexes": {
            table: sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            )
            for table in tables
        },
        "foreign_keys": {
            table: sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    fk["options"].get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            )
            for table in tables
        },
        "checks": {
            table: sorted(c["name"] for c in inspector.get_check_constraints(table))
            for table in tables
        },
    }


def test_0008_converts_a_filled_0006_database_without_losing_a_row(empty_database_url):
    app = create_app(env={**BASE_ENV, "DATABASE_URL": empty_database_url})
    with app.app_context():
        upgrade(revision="0006")
        with db.engine.begin() as conn:
            _fill_0006(conn)
            before = _snapshot(conn)
        upgrade(revision="0008")
        with db.engine.connect() as conn:
            after = _snapshot(conn)
            names = conn.execute(sa.text("SELECT name FROM deliveries ORDER BY id")).scalars()
            assert list(names) == ["Guest 0", "Guest 1", "Guest 2"]  # filled from the guests
            if conn.dialect.name == "sqlite":
                assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []
        assert after == before  # every row with its id, every index, key and CHECK kept

        with db.engine.connect() as conn:  # the constraints still hold
            for bad in (
                "UPDATE messages SET status = 'bogus'",
                "UPDATE deliveries SET guest_id = 999999",
            ):
                with pytest.raises(sa.exc.IntegrityError), conn.begin():
                    conn.execute(sa.text(bad))
        with db.engine.begin() as conn:  # and the newest id is never handed out again
            newest = conn.execute(sa.text("SELECT max(id) FROM batches")).scalar_one()
            conn.execute(sa.text("DELETE FROM batches WHERE id = :id"), {"id": newest})
            message = conn.execute(sa.text("SELECT min(id) FROM messages")).scalar_one()
            again = _insert(
                conn,
                "batches",
                message_id=message,
                trigger="send_now",
                initiated_label="x",
                status="running",
                dry_run=False,
                total=0,
                sent=0,
                failed=0,
                skipped=0,
                started_at=datetime(2026, 12, 1),
            )
            assert again > newest

        downgrade(revision="0006")  # and back, still without losing a row
        with db.engine.connect() as conn:
            rows = _snapshot(conn)["rows"]
        assert rows["deliveries"] == before["rows"]["deliveries"]
        assert rows["guests"] == before["rows"]["guests"]
        db.engine.dispose()
