"""The Communications page in headless Chromium: live count, preview, tab actions, 409 message.

Skips when Debian's Chromium is missing (fails under CI=true). Marked ``browser``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from dashboard import create_app
from dashboard.auth.services import create_user
from dashboard.events.models import Guest, RsvpStatus
from dashboard.events.services import create_event
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind, MessageStatus
from tests.conftest import PASSWORD
from tests.smtp_server import free_port

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]

pytestmark = [
    pytest.mark.browser,
]


@pytest.fixture
def live(app_env) -> Iterator[dict]:
    """The app in a live server (no scheduler: a send-now stays ``sending``), with one event."""
    app = create_app(env={**app_env, "SCHEDULER_ENABLED": "off"})
    port = free_port()
    app.config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    with app.app_context():
        host = create_user(db.session, "host@example.com", PASSWORD)
        event = create_event(
            db.session,
            host,
            name="Garden <Party>",
            starts_at=datetime.now(UTC) + timedelta(days=30),
            timezone="Europe/Berlin",
            venue="Backyard",
            now=datetime.now(UTC),
        )
        for i, status in enumerate(["attending"] * 3 + ["maybe"] * 2):
            db.session.add(
                Guest(
                    event_id=event.id,
                    name=f"<i>Guest</i> {i}",
                    email=f"g{i}@example.org",
                    email_key=f"g{i}@example.org",
                    rsvp_status=RsvpStatus(status),
                )
            )
        db.session.commit()
        event_id = event.id
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"app": app, "url": f"http://127.0.0.1:{port}", "event_id": event_id}
    server.shutdown()
    thread.join(timeout=5)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def page(live, browser_instance):
    browser = browser_instance
    if True:
        context = browser.new_context(base_url=live["url"], viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on(
            "response",
            lambda res: (
                errors.append(f"HTTP {res.status} {res.url}") if res.status >= 500 else None
            ),
        )
        page.goto("/login")
        page.get_by_label("E-mail").fill("host@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/")
        yield page
        context.close()
        assert errors == []


def test_compose_with_live_count_and_preview(page, live):
    page.goto(f"/events/{live['event_id']}/communications")
    count = page.locator("#recipient-count")
    assert "5 guests will receive this" in count.inner_text()

    page.get_by_label("Audience").select_option("maybe")
    page.wait_for_function(
        "document.querySelector('#recipient-count').innerText.includes('2 guests')"
    )

    page.get_by_label("Subject").fill("Hi {{guest_name}}")
    page.get_by_label("Message", exact=True).fill("Meet at {{venue}}")
    preview = page.locator("#message-preview")
    preview.get_by_text("Meet at Backyard").wait_for()
    assert "Subject: Hi <i>Guest</i> 3" in preview.inner_text()  # escaped: shown as text
    assert preview.locator("i").count() == 0

    page.get_by_label("Message", exact=True).fill("Meet at {{venu}}")
    preview.get_by_text("Unknown placeholder {{venu}}").wait_for()

    page.get_by_label("Message", exact=True).fill("Meet at {{venue}}")
    page.get_by_label("Save as draft").check()
    page.get_by_role("button", name="Save message").click()
    page.get_by_text("Draft “Hi {{guest_name}}” saved.").wait_for()
    assert page.locator('[data-tab-count="scheduled"]').inner_text() == "5"

    # Send now from the form asks first; dismissing keeps everything as it was.
    page.get_by_label("Subject").fill("Right now")
    page.get_by_label("Message", exact=True).fill("Go!")
    page.get_by_label("Send now").check()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Save message").click()
    assert page.locator('[data-tab-count="sent"]').inner_text() == "0"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Save message").click()
    page.get_by_text("“Right now” is being sent.").wait_for()
    assert page.locator('[data-tab-count="sent"]').inner_text() == "1"


def test_row_actions_update_the_list_and_the_tab_counts(page, live):
    page.goto(f"/events/{live['event_id']}/communications")
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator("tr", has_text="Day-of reminder")
    row.get_by_role("button", name="Cancel").click()
    page.get_by_text("“Today: {{event_name}}” was cancelled.").wait_for()
    page.wait_for_function(
        "document.querySelector('[data-tab-count=\"cancelled\"]').innerText === '1'"
    )
    assert page.locator('[data-tab-count="scheduled"]').inner_text() == "3"

    page.locator("tr", has_text="1-day reminder").get_by_role("button", name="Send now").click()
    page.get_by_text("is being sent").wait_for()
    page.wait_for_function("document.querySelector('[data-tab-count=\"sent\"]').innerText === '1'")

    page.get_by_role("link", name="Sent").click()
    page.wait_for_url("**/communications/sent")
    page.locator("#message-list").get_by_text("1-day reminder").wait_for()
    assert page.locator('#message-tabs a[aria-current="page"]').inner_text().startswith("Sent")


def test_a_refused_action_shows_its_reason(page, live):
    page.goto(f"/events/{live['event_id']}/communications")
    with live["app"].app_context():  # the scheduler claims it after the page was loaded
        message = db.session.scalar(
            db.select(Message).where(Message.kind == MessageKind.REMINDER_7D)
        )
        message.status = MessageStatus.SENDING
        db.session.commit()
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="7-day reminder").get_by_role("button", name="Cancel").click()
    page.get_by_text("This message is sending and can no longer be cancelled.").wait_for()
    assert page.get_by_role("alert").first.is_visible()
