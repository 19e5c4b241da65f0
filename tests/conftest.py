"""Fixtures in the spirit of flaskr: app, client, runner, auth, plus factories and a real SMTP server."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.auth.models import User
from dashboard.auth.services import create_user
from dashboard.events.models import Event, Guest, RsvpStatus
from dashboard.events.services import create_event
from dashboard.extensions import db
from tests.pg import PostgresCluster, find_bin_dir
from tests.smtp_server import SMTPServer

PASSWORD = "correct horse battery"

BASE_ENV = {
    "APP_ENV": "testing",
    "SECRET_KEY": "test-secret-key-not-for-production",
    "PUBLIC_BASE_URL": "http://dashboard.test",
    "MAIL_TRANSPORT": "log",
    "SCHEDULER_ENABLED": "false",
    "DISPATCH_RETRY_BASE_SECONDS": "0",
}


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing():
    """scrypt costs ~75 ms a call; the suite hashes thousands of passwords."""
    import dashboard.auth.models as auth_models

    original = auth_models.PASSWORD_METHOD
    auth_models.PASSWORD_METHOD = "pbkdf2:sha256:1000"
    yield
    auth_models.PASSWORD_METHOD = original


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    """Close the pooled connections of every app a test built (live servers, subprocess
    helpers), so no connection outlives its test database."""
    yield
    for engines in list(db._app_engines.values()):  # Flask-SQLAlchemy's registry
        for engine in engines.values():
            engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file built by the Alembic migrations; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    app = create_app(env={**BASE_ENV, "DATABASE_URL": f"sqlite:///{path}"})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _engines() -> list[str]:
    """Engines the database-touching tests run on (TEST_DATABASES=sqlite,postgresql)."""
    raw = os.environ.get("TEST_DATABASES", "sqlite,postgresql")
    return [name.strip() for name in raw.split(",") if name.strip()]


ENGINES = _engines()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test checks something only SQLite has")


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A throw-away PostgreSQL server with a migrated template database."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but the PostgreSQL server is not installed (.ci/run installs it)")
        pytest.skip(
            "PostgreSQL server not installed: PostgreSQL variants skipped (apt-get install postgresql)"
        )
    cluster = PostgresCluster(bin_dir).start()
    try:
        cluster.execute("CREATE DATABASE dashboard_template")
        app = create_app(env={**BASE_ENV, "DATABASE_URL": cluster.url("dashboard_template")})
        with app.app_context():
            upgrade()
            db.engine.dispose()
        yield cluster
    finally:
        cluster.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Database tests run once per engine; ``sqlite_only`` ones only on SQLite."""
    if "db_engine" not in metafunc.fixturenames:
        return
    closest = metafunc._arg2fixturedefs["db_engine"][-1]
    if closest.func is not db_engine.__wrapped__:  # type: ignore[attr-defined]
        return  # a folder or module chose its engine by overriding the fixture
    if metafunc.definition.get_closest_marker("sqlite_only"):
        engines = [name for name in ENGINES if name == "sqlite"]
    else:
        engines = ENGINES
    metafunc.parametrize("db_engine", engines, indirect=True)


@pytest.fixture
def db_engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(db_engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database built by the migrations: a copy of the SQLite template file, or a
    PostgreSQL database cloned from the migrated template."""
    if db_engine == "sqlite":
        template = request.getfixturevalue("migrated_template")
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    name = f"test_{uuid.uuid4().hex[:12]}"
    cluster.execute(f"CREATE DATABASE {name} TEMPLATE dashboard_template")
    yield cluster.url(name)
    cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def app_env(database_url: str) -> dict[str, str]:
    """The environment the app is built from; tests may add to it before using ``app``."""
    return {**BASE_ENV, "DATABASE_URL": database_url}


@pytest.fixture
def app_overrides() -> dict[str, Any]:
    return {"WTF_CSRF_ENABLED": False}


@pytest.fixture
def app(app_env: dict[str, str], app_overrides: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(overrides=app_overrides, env=app_env)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def make_user(app: Flask):
    counter = {"n": 0}

    def factory(email: str | None = None, *, admin: bool = False, name: str = "") -> User:
        counter["n"] += 1
        user = create_user(
            db.session,
            email or f"user{counter['n']}@example.com",
            PASSWORD,
            name=name,
            is_admin=admin,
        )
        db.session.commit()
        return user

    return factory


@pytest.fixture
def owner(make_user) -> User:
    return make_user("owner@example.com", name="Olivia Owner")


@pytest.fixture
def make_event(app: Flask, owner: User, now: datetime):
    def factory(
        name: str = "Summer Gala",
        *,
        starts_at: datetime | None = None,
        timezone: str = "Europe/Berlin",
        venue: str = "Grand Hall",
        user: User | None = None,
    ) -> Event:
        event = create_event(
            db.session,
            user or owner,
            name=name,
            starts_at=starts_at or now + timedelta(days=30),
            timezone=timezone,
            venue=venue,
            now=now,
        )
        db.session.commit()
        return event

    return factory


@pytest.fixture
def make_guests(app: Flask):
    """``make_guests(event, n, status="attending")`` inserts n guests in one statement."""

    def factory(
        event: Event,
        n: int,
        status: RsvpStatus | str = RsvpStatus.PENDING,
        *,
        prefix: str = "guest",
        unsubscribed: bool = False,
    ) -> list[Guest]:
        start = db.session.query(Guest).filter_by(event_id=event.id).count()
        stamp = datetime.now(UTC) if unsubscribed else None
        guests = [
            Guest(
                event_id=event.id,
                name=f"{prefix.title()} {start + i}",
                email=f"{prefix}{start + i}@example.org",
                email_key=f"{prefix}{start + i}@example.org",
                rsvp_status=RsvpStatus(status),
                unsubscribed_at=stamp,
            )
            for i in range(n)
        ]
        db.session.add_all(guests)
        db.session.commit()
        return guests

    return factory


class AuthActions:
    def __init__(self, client: FlaskClient):
        self._client = client

    def login(self, user: User | str = "owner@example.com", password: str = PASSWORD):
        email = user if isinstance(user, str) else user.email
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server on a free loopback port; ``.received`` holds what arrived."""
    server = SMTPServer().start()
    yield server
    server.stop()
