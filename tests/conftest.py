"""Fixtures in the spirit of flaskr: app, client, runner, auth, plus factories and a real SMTP server.

The factories every folder uses live here once (users, events and roles on them, guests,
messages, batches, API tokens, a dispatched message); plain helpers are in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask.testing import FlaskClient
from flask_migrate import upgrade

from dashboard import create_app
from dashboard.audit.services import Actor
from dashboard.auth.models import User
from dashboard.auth.services import create_token, create_user
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
from dashboard.dispatch.poll import Dispatcher
from dashboard.dispatch.scheduler import build_dispatcher
from dashboard.events.models import Collaborator, Event, Guest, Role, RsvpStatus
from dashboard.events.services import create_event
from dashboard.extensions import db
from dashboard.messages.models import Audience, Message, MessageStatus
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
            Actor.of(user or owner),
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


@pytest.fixture
def user_loaded_per_request(app: Flask) -> None:
    """The ``app`` fixture keeps one app context, and with it one ``g``, across the test
    client's requests, so Flask-Login would keep the first request's user and Flask-WTF
    its CSRF token. A real request starts with an empty ``g``; tests of sign-ins, cookies
    and several clients ask for this."""

    def _fresh_g() -> None:
        for name in list(vars(g)):
            g.pop(name)

    app.before_request_funcs.setdefault(None, []).insert(0, _fresh_g)  # before any other


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


# --- an event and the people on it --------------------------------------------------------


@pytest.fixture
def event(make_event) -> Event:
    """Thirty days ahead in Berlin, so it has all four auto-reminders."""
    return make_event()


@pytest.fixture
def add_collaborator(app: Flask) -> Callable[[Event, User, Role], None]:
    """``add_collaborator(event, user, role)`` gives ``user`` that role on ``event``."""

    def factory(event: Event, user: User, role: Role) -> None:
        db.session.add(Collaborator(event_id=event.id, user_id=user.id, role=role))
        db.session.commit()

    return factory


@pytest.fixture
def viewer(make_user, event: Event, add_collaborator) -> User:
    user = make_user("viewer@example.com")
    add_collaborator(event, user, Role.VIEWER)
    return user


@pytest.fixture
def editor(make_user, event: Event, add_collaborator) -> User:
    user = make_user("editor@example.com")
    add_collaborator(event, user, Role.EDITOR)
    return user


@pytest.fixture
def stranger(make_user) -> User:
    """A host with no role on ``event``: every event of ``owner`` is invisible to them."""
    return make_user("stranger@example.com")


@pytest.fixture
def bearer(app: Flask) -> Callable[[User], dict[str, str]]:
    """``bearer(user)`` -> headers carrying a fresh API token of ``user``."""

    def factory(user: User) -> dict[str, str]:
        raw = create_token(db.session, user, "tests")
        db.session.commit()
        return {"Authorization": f"Bearer {raw}"}

    return factory


@dataclass
class GuestMix:
    attending: int = 3
    pending: int = 2
    declined: int = 1
    maybe: int = 4
    unsubscribed_attending: int = 1


@pytest.fixture
def guest_mix(event: Event, make_guests) -> GuestMix:
    """3 attending, 2 pending, 1 declined, 4 maybe, plus 1 unsubscribed attending guest."""
    mix = GuestMix()
    make_guests(event, mix.attending, RsvpStatus.ATTENDING, prefix="att")
    make_guests(event, mix.pending, RsvpStatus.PENDING, prefix="pen")
    make_guests(event, mix.declined, RsvpStatus.DECLINED, prefix="dec")
    make_guests(event, mix.maybe, RsvpStatus.MAYBE, prefix="may")
    make_guests(
        event, mix.unsubscribed_attending, RsvpStatus.ATTENDING, prefix="uns", unsubscribed=True
    )
    return mix


# --- messages, batches and the dispatcher ----------------------------------------------------

SUBJECT = "Hello {{guest_name}}"
BODY = "Dear {{guest_name}},\nsee you at {{event_name}}.\n{{unsubscribe_link}}"


@pytest.fixture
def make_message(app: Flask, owner: User, now: datetime):
    """``make_message(event)`` inserts a message as the dispatcher finds it: scheduled and due
    a second ago (``due=False``: due tomorrow). ``status`` puts it in any other state (a
    draft has no send time), ``send_at`` gives the send time itself."""

    def factory(
        event: Event,
        *,
        audience: Audience = Audience.EVERYONE,
        subject: str = SUBJECT,
        body: str = BODY,
        status: MessageStatus = MessageStatus.SCHEDULED,
        due: bool = True,
        send_at: datetime | None = None,
    ) -> Message:
        if send_at is None and status is not MessageStatus.DRAFT:
            send_at = now - timedelta(seconds=1) if due else now + timedelta(days=1)
        message = Message(
            event_id=event.id,
            audience=audience,
            subject=subject,
            body=body,
            status=status,
            send_at=send_at,
            created_by_id=owner.id,
        )
        db.session.add(message)
        db.session.commit()
        return message

    return factory


@pytest.fixture
def make_batch(app: Flask, now: datetime):
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
def dispatcher(app: Flask) -> Dispatcher:
    return build_dispatcher(app, db.session, worker="test-dispatcher")


@pytest.fixture
def sent_with_failures(dispatcher, make_event, make_guests, make_message, smtp_server):
    """A message dispatched for real: 4 guests got it, 2 were refused with a 550. Needs an
    ``app_env`` that sends through ``smtp_server`` (``tests.helpers.smtp_env``)."""
    event = make_event()
    make_guests(event, 4)
    make_guests(event, 2, prefix="bad")
    smtp_server.handler.rules = {"bad": "550 5.7.1 Recipient refused by policy"}
    message = make_message(event)
    dispatcher.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT_WITH_FAILURES
    [batch] = db.session.scalars(sa.select(Batch).where(Batch.message_id == message.id)).all()
    return event, message, batch
