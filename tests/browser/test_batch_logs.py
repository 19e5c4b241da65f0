"""The log pages in headless Chromium: live progress that stops polling by itself, active
search, and "Retry failed" with its confirmation, against the live scheduler and SMTP."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.auth.models import User
from dashboard.events.models import Guest
from dashboard.events.services import create_event
from dashboard.extensions import db
from dashboard.messages.models import Audience, Message, MessageStatus
from tests.browser.conftest import login

pytestmark = [
    pytest.mark.browser,
]


def seed_due_message(live_app, user_id: int, good: int, bad: int) -> tuple[int, int]:
    now = datetime.now(UTC)
    with live_app.app_context():
        user = db.session.get(User, user_id)
        event = create_event(
            db.session,
            user,
            name="Browser Gala",
            starts_at=now + timedelta(days=30),
            timezone="Europe/Berlin",
            venue="Hall",
            now=now,
        )
        db.session.add_all(
            Guest(
                event_id=event.id,
                name=f"{prefix.title()} {i}",
                email=f"{prefix}{i}@example.org",
                email_key=f"{prefix}{i}@example.org",
            )
            for prefix, n in (("guest", good), ("bad", bad))
            for i in range(n)
        )
        message = Message(
            event_id=event.id,
            audience=Audience.EVERYONE,
            subject="Hello {{guest_name}}",
            body="See you at {{event_name}}.",
            status=MessageStatus.SCHEDULED,
            send_at=now - timedelta(seconds=1),
            created_by_id=user.id,
        )
        db.session.add(message)
        db.session.commit()
        return event.id, message.id


def wait_until_sending(live_app, message_id: int) -> None:
    """The live scheduler claims the due message (so the page opens on a running batch)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with live_app.app_context():
            status = db.session.get(Message, message_id).status
            db.session.remove()
        if status is not MessageStatus.SCHEDULED:
            return
        time.sleep(0.05)
    raise AssertionError("the scheduler did not pick the message up")


def test_progress_search_and_retry(page, live_app, live_server, live_user, smtp_server):
    live_app.config["DISPATCH_RATE_PER_SECOND"] = 8.0  # a batch of ~40 takes a few seconds
    smtp_server.handler.rules = {"bad": "550 5.1.1 No such user here"}
    login(page, live_user)
    event_id, message_id = seed_due_message(live_app, live_user["id"], good=36, bad=3)

    wait_until_sending(live_app, message_id)
    polls: list[str] = []
    page.on(
        "request", lambda request: polls.append(request.url) if "/progress" in request.url else None
    )
    page.goto(f"/events/{event_id}/messages/{message_id}")

    # Live: a progress bar with aria values while the batch runs ...
    bar = page.get_by_role("progressbar").first
    bar.wait_for()
    assert int(bar.get_attribute("aria-valuemax")) == 39
    # ... then the final figures, and the polling stops by itself.
    page.locator("#batches .badge.status-completed_with_failures").wait_for(timeout=30_000)
    page.get_by_text("36 sent").first.wait_for()
    time.sleep(0.5)
    settled = len(polls)
    time.sleep(2.5)
    assert len(polls) == settled, polls[settled:]
    assert page.get_by_role("progressbar").count() == 0

    # Drill down, then search actively (no page load) for the failed guests.
    page.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    rows = page.locator("#entries tbody tr")
    assert rows.count() == 39
    page.get_by_label("Search guest name or e-mail").fill("bad")
    page.wait_for_url(re.compile(r"q=bad"))
    rows.nth(2).wait_for()
    page.wait_for_function("document.querySelectorAll('#entries tbody tr').length === 3")
    assert "550 5.1.1 No such user here" in rows.first.inner_text()
    page.get_by_label("Outcome").select_option("sent")
    page.wait_for_function(
        "document.querySelector('#entries-summary').textContent.includes('0 entries')"
    )

    # Retry failed: confirmed first, then the new batch's page.
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Retry failed (3)").click()
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    assert "3 recipient(s)" in dialogs[0]
    page.get_by_role("heading", name=re.compile("Retry failed")).wait_for()
    page.locator(".batch-progress .badge.status-failed").wait_for(timeout=30_000)
    assert page.locator(".batch-progress .fig-failed").inner_text() == "3 failed"
    page.locator("#entries tbody tr").nth(2).wait_for()  # reloaded when the batch finished
    assert page.locator("#entries tbody tr").count() == 3
