"""Browser tests: the real app in a live server, a real SMTP server, headless Debian Chromium.

Chromium comes from Debian (``/usr/bin/chromium``), never a Playwright download. Without it
the tests skip with one line on a developer machine, and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from dashboard import create_app
from dashboard.auth.services import create_user
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
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"CI=true but {CHROMIUM} is missing: .ci/run should install chromium"
        )
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} not found: browser tests skipped (apt-get install chromium)"
    )
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


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


@pytest.fixture
def live_server(live_app) -> Iterator[LiveServer]:
    server = LiveServer(live_app).start()
    live_app.config["PUBLIC_BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture
def live_user(live_app):
    """A host account in the live app's database."""
    with live_app.app_context():
        user = create_user(db.session, "host@example.com", PASSWORD, name="Hannah Host")
        db.session.commit()
        return {"id": user.id, "email": user.email, "password": PASSWORD}


@pytest.fixture(scope="session")
def browser_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


class PageProblems:
    """Console errors and failed requests seen by a page; every test asserts there are none."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on(
            "requestfailed",
            lambda req: self.errors.append(f"request failed: {req.url} {req.failure}"),
        )
        page.on(
            "response",
            lambda res: (
                self.errors.append(f"HTTP {res.status}: {res.url}") if res.status >= 500 else None
            ),
        )


@pytest.fixture
def page(browser_instance, live_server):
    context = browser_instance.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems = PageProblems(page)
    page.problems = problems
    yield page
    context.close()
    assert problems.errors == [], problems.errors


def login(page, user) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(user["email"])
    page.get_by_label("Password").fill(user["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
