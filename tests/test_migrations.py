"""The schema comes only from migrations, and the models must not drift from them."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dashboard.extensions import db


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
    indexes = {i["name"]: i for i in sa.inspect(db.engine).get_indexes("messages")}
    due = indexes["ix_messages_due"]
    assert due["column_names"] == ["send_at"]
    where = due.get("dialect_options", {})
    clause = where.get("sqlite_where")
    clause = str(clause if clause is not None else where.get("postgresql_where"))
    assert "status" in clause and "scheduled" in clause


@pytest.mark.sqlite_only
def test_sqlite_runs_in_wal_with_busy_timeout(app):
    assert db.session.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    assert db.session.execute(sa.text("PRAGMA busy_timeout")).scalar_one() >= 1000
