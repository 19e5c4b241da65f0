"""Sending and its logs in headless Chromium, against the live scheduler and a real SMTP
server that rejects some recipients: live progress that stops polling by itself, the batch
drill-down with its filters and search, and "Retry failed" with its confirmation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from dashboard.audit.services import Actor
from dashboard.auth.models import User
from dashboard.events.models import Guest
from dashboard.events.services import create_event
from dashboard.messages.models import Audience, Message, MessageStatus
from tests.browser.conftest import (
    app_session,
    flash,
    login,
    recipient_count,
    seed_event,
    wait_until,
)

REJECTED = "550 5.7.1 Recipient refused by policy"


def guests(good: int, bad: int) -> list[tuple[str, str, str]]:
    """``good`` guests the SMTP server accepts, ``bad`` ones whose address it rejects."""
    return [
        (f"{prefix.title()} Guest {i}", f"{prefix}{i}@example.org", "attending")
        for prefix, n in (("good", good), ("bad", bad))
        for i in range(n)
    ]


def track(page, fragment: str) -> list[str]:
    """The URLs the page requests that contain ``fragment``, as they happen."""
    seen: list[str] = []
    page.on(
        "request", lambda request: seen.append(request.url) if fragment in request.url else None
    )
    return seen


def assert_no_more_polls(page, polls: list[str], quiet_ms: int = 2_000) -> None:
    settled = len(polls)
    page.wait_for_timeout(quiet_ms)
    assert len(polls) == settled, f"still polling: {polls[settled:]}"


def test_send_now_progress_failed_entries_and_retry(
    page, live_app, live_user, smtp_server, screenshot
):
    live_app.config["DISPATCH_RATE_PER_SECOND"] = 5.0  # 12 recipients: about two seconds
    smtp_server.handler.rules = {"bad": REJECTED}
    event_id = seed_event(live_app, live_user["id"], guests(good=9, bad=3), name="Harbour Party")
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")
    polls = track(page, "/progress")

    # Compose and send now (confirmed): the Sent tab shows the message sending.
    page.get_by_label("Subject").fill("Doors open at 18:00")
    page.get_by_label("Message", exact=True).fill("Hi {{guest_name}}, see you at {{venue}}.")
    expect(recipient_count(page)).to_contain_text("12 guests will receive this.")
    page.get_by_label("Send now", exact=True).check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send message now").click()
    page.wait_for_url(f"**/events/{event_id}/communications/sent#message-*")
    expect(flash(page)).to_have_text("“Doors open at 18:00” is being sent.")
    row = page.locator("#message-list").get_by_role("row").filter(has_text="Doors open")

    # Live: a progress bar with aria values while the batch runs ...
    bar = row.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuemax", "12")
    # ... up to the final figures: every recipient has an outcome (100%), and polling stops.
    progress = row.locator(".message-progress")
    expect(progress.get_by_role("img", name="9 sent, 3 failed, 0 skipped of 12")).to_be_visible(
        timeout=20_000
    )
    expect(progress).to_contain_text("9 sent · 3 failed · 0 skipped · 12 total")
    expect(row.locator(".badge")).to_have_text("Sent with failures")  # once, in its column
    expect(row.get_by_role("progressbar")).to_have_count(0)
    assert progress.get_attribute("hx-trigger") is None
    assert progress.get_attribute("hx-get") is None
    assert polls, "the row never polled its progress"
    assert_no_more_polls(page, polls)

    # Open the message, then its batch, and filter the failed entries.
    row.get_by_role("link", name="Doors open at 18:00").click()
    expect(page.get_by_role("heading", name="Doors open at 18:00")).to_be_visible()
    batches = page.locator("#batches")
    expect(batches.get_by_role("row").filter(has_text="Send now")).to_contain_text(
        "Sent now by host@example.com"
    )
    batches.get_by_role("link", name=re.compile(r"^#\d+$")).click()
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Batch #\d+: Send now$"))).to_be_visible()
    entries = page.locator("#entries tbody tr")
    expect(entries).to_have_count(12)
    page.get_by_label("Outcome").select_option("failed")
    page.wait_for_url(re.compile(r"outcome=failed"))
    expect(page.locator("#entries-summary")).to_have_text("3 entries · failed")
    expect(entries).to_have_count(3)
    for i in range(3):
        expect(entries.nth(i)).to_contain_text(REJECTED)
        expect(entries.nth(i)).to_contain_text("@example.org")
        expect(entries.nth(i).locator(".badge")).to_have_text("Failed")
    assert all("bad" in text for text in entries.locator("td:nth-child(2)").all_inner_texts())
    screenshot(page, "batch-drilldown", full_page=True)

    # The mailbox is fixed: retry the failed ones (confirmed) and watch the retry batch finish.
    smtp_server.handler.rules = {}
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    # A 550 is a permanent failure: it is offered only on purpose, after a fix.
    expect(page.get_by_role("button", name="Retry failed (")).to_have_count(0)
    page.once("dialog", accept)
    page.get_by_role("button", name="Retry permanent failures too (3)").click()
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    assert "again to the 3 recipient(s) whose address was refused" in dialogs[0]
    expect(
        page.get_by_role("heading", name=re.compile(r"^Batch #\d+: Retry failed$"))
    ).to_be_visible()
    expect(page.locator(".started-by")).to_contain_text("Retry failed by host@example.com")
    expect(page.get_by_text("Started by Retry failed")).to_have_count(0)
    status = page.get_by_role("region", name="Progress")
    expect(status.locator(".badge").first).to_have_text("Completed", timeout=20_000)
    expect(status).to_contain_text("3 sent · 0 failed · 0 skipped · 3 total")
    expect(entries).to_have_count(3)  # reloaded when the batch finished
    expect(page.locator("#entries-summary")).to_have_text("3 entries")
    for i in range(3):
        expect(entries.nth(i).locator(".badge")).to_have_text("Sent")
    expect(page.get_by_role("button", name=re.compile("^Retry failed"))).to_have_count(0)
    delivered = {rcpt for received in smtp_server.received for rcpt in received.rcpt_tos}
    assert {f"bad{i}@example.org" for i in range(3)} <= delivered
    assert len(delivered) == 12


def seed_due_message(live_app, user_id: int, good: int, bad: int) -> tuple[int, int]:
    """A message whose send time has just passed: the live scheduler claims it."""
    now = datetime.now(UTC)
    with app_session(live_app) as session:
        user = session.get(User, user_id)
        event = create_event(
            session,
            Actor.of(user),
            name="Browser Gala",
            starts_at=now + timedelta(days=30),
            timezone="Europe/Berlin",
            venue="Hall",
            now=now,
        )
        session.add_all(
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
        session.add(message)
        session.commit()
        return event.id, message.id


def message_status(live_app, message_id: int) -> MessageStatus:
    with app_session(live_app) as session:
        return session.get(Message, message_id).status


def test_scheduled_send_progress_search_and_retry(
    page, live_app, live_server, live_user, smtp_server
):
    live_app.config["DISPATCH_RATE_PER_SECOND"] = 8.0  # 20 recipients: about two seconds
    smtp_server.handler.rules = {"bad": REJECTED}
    login(page, live_user)
    event_id, message_id = seed_due_message(live_app, live_user["id"], good=17, bad=3)
    wait_until(
        lambda: message_status(live_app, message_id) is not MessageStatus.SCHEDULED,
        what="the scheduler to pick the message up",
    )
    polls = track(page, "/progress")
    page.goto(f"/events/{event_id}/messages/{message_id}")

    # Live: a progress bar with aria values while the batch runs ...
    bar = page.get_by_role("progressbar").first
    expect(bar).to_have_attribute("aria-valuemax", "20")
    # ... then the final figures, and the polling stops by itself.
    expect(page.locator("#batches .badge.status-completed_with_failures")).to_be_visible(
        timeout=20_000
    )
    expect(page.get_by_text("17 sent").first).to_be_visible()
    expect(page.get_by_role("progressbar")).to_have_count(0)
    expect(page.locator("#batches")).to_contain_text("scheduler")  # who started it
    assert_no_more_polls(page, polls)

    # Drill down, then search actively (no page load) for the failed guests.
    page.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    rows = page.locator("#entries tbody tr")
    expect(rows).to_have_count(20)
    page.get_by_label("Search guest name or e-mail").fill("bad")
    page.wait_for_url(re.compile(r"q=bad"))
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(REJECTED)
    page.get_by_label("Outcome").select_option("sent")
    expect(page.locator("#entries-summary")).to_contain_text("0 entries")
    expect(page.get_by_text("No entries match.")).to_be_visible()

    # Retry failed while the mailbox still refuses them: confirmed, then the new batch fails.
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Retry permanent failures too (3)").click()
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    assert "3 recipient(s)" in dialogs[0]
    expect(page.get_by_role("heading", name=re.compile("Retry failed"))).to_be_visible()
    expect(page.locator(".batch-progress .badge.status-failed")).to_be_visible(timeout=20_000)
    expect(page.locator(".batch-progress .fig-failed")).to_have_text("3 failed")
    expect(rows).to_have_count(3)  # reloaded when the batch finished
