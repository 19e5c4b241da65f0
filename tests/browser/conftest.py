"""Browser tests: the real app in a live server, a real SMTP server, headless Debian Chromium.

One harness for every browser test: one Playwright (sync API, session-scoped browser), a
live server per test with the scheduler polling every second and a real SMTP server, and
pages that fail the test on console errors, page errors, failed requests and HTTP 5xx.

Chromium comes from Debian (``/usr/bin/chromium``), never a Playwright download. Without it
the tests skip with one line on a developer machine, and fail under ``CI=true``.

Screenshots go to ``docs/screenshots/`` with ``UPDATE_SCREENSHOTS=1`` (``make screenshots``),
otherwise to the test's ``tmp_path``, so a normal run never changes the repository.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from dashboard import create_app
from dashboard.audit.services import Actor
from dashboard.auth.models import User
from dashboard.auth.services import create_user
from dashboard.events import guests as guest_list
from dashboard.events import services as event_services
from dashboard.events.models import Guest
from dashboard.extensions import db
from tests.conftest import PASSWORD
from tests.smtp_server import free_port

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
#: How long a page or an assertion waits for something to appear (ms).
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config, items):
    """Every test of this folder is marked ``browser``. Without Chromium they skip with one
    reason line per file, and under CI=true a missing Chromium stops the run instead."""
    ours = [item for item in items if "tests/browser/" in str(item.fspath)]
    for item in ours:
        item.add_marker(pytest.mark.browser)
    if not ours or CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"CI=true but {CHROMIUM} is missing: .ci/run should install chromium"
        )
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} not found: browser tests skipped (apt-get install chromium)"
    )
    for item in ours:
        item.add_marker(skip)


@pytest.fixture
def db_engine() -> str:
    """Browser tests check pages, not database engines: they run once, on SQLite (the
    single-VM default), unless BROWSER_TEST_DATABASE names another engine. This overrides
    the engine parametrization of tests/conftest.py for this folder only."""
    return os.environ.get("BROWSER_TEST_DATABASE", "sqlite")


# --- the live app ------------------------------------------------------------------------


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_app(app_env, smtp_server):
    env = {
        **app_env,
        **smtp_server.config(),
        "SCHEDULER_ENABLED": "on",
        "SCHEDULER_POLL_SECONDS": "1",
        "DISPATCH_RETRY_BASE_SECONDS": "3600",
    }
    app = create_app(env=env)
    app.config["PUBLIC_BASE_URL"] = "http://placeholder"
    yield app
    runner = app.extensions.get("dispatch_scheduler")
    if runner is not None:
        runner.shutdown(wait=True)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live_server(live_app) -> Iterator[LiveServer]:
    server = LiveServer(live_app).start()
    live_app.config["PUBLIC_BASE_URL"] = server.url
    yield server
    server.stop()


@contextmanager
def app_session(live_app) -> Iterator[Session]:
    """The live app's database session, for seeding and checking rows from the test."""
    with live_app.app_context():
        try:
            yield db.session
        finally:
            db.session.remove()


def make_user(live_app, email: str, name: str = "") -> dict[str, Any]:
    """An account in the live app's database, as the ``login`` helper wants it."""
    with app_session(live_app) as session:
        user = create_user(session, email, PASSWORD, name=name)
        session.commit()
        return {"id": user.id, "email": user.email, "password": PASSWORD}


@pytest.fixture
def live_user(live_app):
    """A host account in the live app's database."""
    return make_user(live_app, "host@example.com", name="Hannah Host")


def seed_event(
    live_app,
    owner_id: int,
    guests: Iterable[tuple[str, str, str]] = (),
    *,
    name: str = "Summer Gala",
    venue: str = "Grand Hall",
    timezone: str = "Europe/Berlin",
    days_ahead: int = 30,
) -> int:
    """An event at 19:00 local time (with its four auto-reminders) and ``(name, email, rsvp_status)`` guests."""
    now = datetime.now(UTC)
    local_day = datetime.now(ZoneInfo(timezone)) + timedelta(days=days_ahead)
    starts_at = local_day.replace(hour=19, minute=0, second=0, microsecond=0)
    with app_session(live_app) as session:
        actor = Actor.of(session.get(User, owner_id))
        event = event_services.create_event(
            session,
            actor,
            name=name,
            starts_at=starts_at.astimezone(UTC),
            timezone=timezone,
            venue=venue,
            now=now,
        )
        for guest_name, email, status in guests:
            guest_list.add_guest(
                session,
                event,
                actor=actor,
                now=now,
                name=guest_name,
                email=email,
                rsvp_status=status,
            )
        session.commit()
        return event.id


def guest_token(live_app, event_id: int, email: str) -> str:
    """A guest's personal token (what the RSVP link in their e-mail carries)."""
    with app_session(live_app) as session:
        return session.scalars(
            db.select(Guest.token).where(Guest.event_id == event_id, Guest.email == email)
        ).one()


def wait_until(predicate: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_instance():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


class PageProblems:
    """Console errors and failed requests seen by a page; every test asserts there are none.

    Chromium logs every 4xx answer as a console error ("Failed to load resource"). A test
    that provokes one on purpose (a refused form, a 409) says so with ``allow_status(400)``;
    any other console error, a failed request or a 5xx still fails the test."""

    RESOURCE_ERROR = re.compile(
        r"^Failed to load resource: the server responded with a status of (\d+)"
    )

    def __init__(self, page):
        self.errors: list[str] = []
        self.allowed: set[int] = set()
        self.allowed_texts: list[str] = []
        #: Set when the test is over: a request cut off by closing the page (a frame still
        #: loading) is not a problem of the page.
        self.closing = False
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("requestfailed", self._request_failed)
        page.on(
            "response",
            lambda res: (
                self.errors.append(f"HTTP {res.status}: {res.url}") if res.status >= 500 else None
            ),
        )

    def allow_status(self, *statuses: int) -> None:
        assert all(400 <= status < 500 for status in statuses), "only client errors are expected"
        self.allowed.update(statuses)

    def allow_console(self, text: str) -> None:
        """A console error containing ``text`` is expected (a test provokes it on purpose)."""
        self.allowed_texts.append(text)

    def _request_failed(self, request) -> None:  # type: ignore[no-untyped-def]
        # The browser itself aborts a request still in flight when a form submit navigates
        # away (net::ERR_ABORTED), and closing the page cuts off whatever still loads;
        # every other failure is the app's.
        if not self.closing and "ERR_ABORTED" not in (request.failure or ""):
            self.errors.append(f"request failed: {request.url} {request.failure}")

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        expected = self.RESOURCE_ERROR.match(msg.text)
        if expected and int(expected.group(1)) in self.allowed:
            return
        if any(text in msg.text for text in self.allowed_texts):
            return
        self.errors.append(f"console {msg.type}: {msg.text} ({msg.location.get('url', '')})")


@pytest.fixture
def open_page(browser_instance, live_server):
    """``open_page()``: a page in a fresh browser context (its own cookies: another user,
    or a guest without an account). Every page opened is checked for problems at the end."""
    opened: list[tuple[Any, PageProblems]] = []

    def factory():
        context = browser_instance.new_context(
            base_url=live_server.url, viewport=VIEWPORT, color_scheme="light"
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.problems = PageProblems(page)
        opened.append((context, page.problems))
        return page

    yield factory
    for context, problems in opened:
        problems.closing = True
        context.close()
    errors = [error for _, problems in opened for error in problems.errors]
    assert errors == [], errors


@pytest.fixture
def page(open_page):
    return open_page()


def login(page, user) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(user["email"])
    page.get_by_label("Password").fill(user["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def flash(page, kind: str = "status"):
    """The flashed message of the last action ("status" for success, "alert" for an error)."""
    return page.locator(".flashes").get_by_role(kind)


def recipient_count(page):
    """The live "N guests will receive this" of the compose form (above its submit button)."""
    return page.locator("#compose-form #recipient-count[role=status]")


@pytest.fixture
def screenshot(tmp_path) -> Callable[..., Path]:
    """``screenshot(page, name, around=locator, full_page=True)`` saves ``<name>.png`` (the
    whole page, or the part around one element): into docs/screenshots with
    UPDATE_SCREENSHOTS=1, else into the test's tmp_path."""

    def save(page, name: str, *, around=None, margin: int = 24, full_page: bool = False) -> Path:
        folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        options: dict[str, Any] = {"full_page": full_page}
        if around is not None:
            page.evaluate("window.scrollTo(0, 0)")
            box = around.bounding_box()
            assert box is not None, f"{around} is not visible"
            options = {
                "full_page": True,  # the clip is in page coordinates
                "clip": {
                    "x": max(0, box["x"] - margin),
                    "y": max(0, box["y"] - margin),
                    "width": min(VIEWPORT["width"], box["width"] + 2 * margin),
                    "height": box["height"] + 2 * margin,
                },
            }
        page.screenshot(path=str(path), animations="disabled", caret="hide", **options)
        assert path.stat().st_size > 5_000, f"{path} looks blank"
        return path

    return save
