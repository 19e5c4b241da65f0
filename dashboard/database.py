"""Engine-level settings: SQLite gets WAL, a busy timeout and foreign keys on every connection."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

_configured = False


def configure_engine_events() -> None:
    global _configured
    if _configured:
        return
    _configured = True

    @event.listens_for(Engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        timeout = 15000
        if has_app_context():
            timeout = int(current_app.config.get("SQLITE_BUSY_TIMEOUT_MS", timeout))
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={timeout}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def is_postgres(session: Session) -> bool:
    """The session's engine, for the few statements whose best form differs by engine."""
    return session.get_bind().dialect.name == "postgresql"


def dialect_insert(dialect: str):  # type: ignore[no-untyped-def]
    """The ``insert`` of the engine's dialect, the one that has ON CONFLICT."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_ignoring_duplicates(session: Session, model: type, keys: list[str]):  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT (keys) DO NOTHING on SQLite and PostgreSQL alike."""
    insert = dialect_insert(session.get_bind().dialect.name)
    return insert(model).on_conflict_do_nothing(index_elements=keys)


def count_by(session: Session, column: Any, *where: sa.ColumnElement[bool]) -> dict[Any, int]:
    """How many rows have each value of ``column`` (one GROUP BY); absent values are absent."""
    rows = session.execute(sa.select(column, sa.func.count()).where(*where).group_by(column))
    return {value: n for value, n in rows.all()}
