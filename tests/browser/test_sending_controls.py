"""A host in control of a send, in headless Chromium against the live scheduler: pause and
resume a 2,000-guest send from the Sent tab while a slow SMTP server takes it, and "Send me a
test" from the compose form."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from playwright.sync_api import expect

from dashboard.audit.services import Actor
from dashboard.auth.models import User
from dashboard.events.models import Event
from dashboard.messages import services as message_services
from dashboard.messages.models import Audience
from tests.browser.conftest import app_session, login, seed_event, wait_until
from tests.browser.test_batch_logs import assert_no_more_polls, track
from tests.helpers import bulk_guests

GUESTS = 2000


def test_pause_and_resume_a_large_send_from_the_sent_tab(
    page, live_app, live_user, smtp_server, screenshot
):
    smtp_server.handler.delay = 0.02  # a relay that answers in 20 ms: about 10 s for everyone
    event_id = seed_event(live_app, live_user["id"], name="Harbour Festival")
    with app_session(live_app) as session:
        bulk_guests(event_id, GUESTS)
        host = session.get(User, live_user["id"])
        message = message_services.create_message(
            session,
            session.get(Event, event_id),
            Actor.of(host),
            audience=Audience.EVERYONE,
            subject="Ferry times changed",
            body="Hi {{guest_name}}, the 18:00 ferry leaves at 18:30.",
            mode="send_now",
            now=datetime.now(UTC),
        )
        session.commit()
        message_id = message.id
    live_app.extensions["dispatch_scheduler"].wake()

    login(page, live_user)
    page.goto(f"/events/{event_id}/communications/sent")
    row = page.locator(f"#message-{message_id}")
    pause = row.get_by_role("button", name="Pause")
    expect(pause).to_be_visible()
    wait_until(lambda: len(smtp_server.received) >= 100, timeout=30, what="the send under way")
    pause.click()

    expect(row.locator(".paused-note")).to_contain_text(
        re.compile(
            r"Paused by host@example\.com at .+\s+Nothing more goes out until it is resumed"
        ),
        timeout=20_000,
    )
    expect(row.locator(f"#message-status-{message_id}")).to_have_text("Paused")
    at_pause = len(smtp_server.received)
    assert at_pause < GUESTS // 2, "the send finished before the pause"
    polls = track(page, f"/messages/{message_id}/progress")
    assert_no_more_polls(page, polls)  # a paused message waits for a host: no polling
    assert len(smtp_server.received) == at_pause  # and nothing more goes out
    expect(row).to_contain_text(
        f"{at_pause} sent · 0 failed · 0 skipped · {GUESTS} total · {GUESTS - at_pause} pending"
    )
    screenshot(page, "sent-tab-paused", around=row)

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    wait_until(lambda: len(smtp_server.received) >= GUESTS, timeout=90, what="every guest")
    expect(row.locator(f"#message-status-{message_id}")).to_have_text("Sent", timeout=20_000)
    expect(
        row.get_by_role("img", name=f"{GUESTS} sent, 0 failed, 0 skipped of {GUESTS}")
    ).to_be_visible()
    received = Counter(rcpt for item in smtp_server.received for rcpt in item.rcpt_tos)
    assert len(received) == GUESTS and set(received.values()) == {1}


def test_send_me_a_test_from_the_compose_form(page, live_app, live_user, smtp_server):
    event_id = seed_event(
        live_app, live_user["id"], [("Ada Lovelace", "ada@example.org", "attending")]
    )
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")
    page.get_by_label("Subject").fill("Dinner at {{venue}}")
    page.get_by_label("Message", exact=True).fill("Hi {{guest_name}}, RSVP: {{rsvp_link}}")
    page.get_by_text("Send me a test").click()
    page.get_by_label("Send the test to").fill("host@example.com, co@example.org")
    page.get_by_role("button", name="Send test").click()

    result = page.locator("#test-send-result").get_by_role("status")
    expect(result).to_contain_text("“[Test] Dinner at Grand Hall”, filled in as Ada Lovelace")
    expect(result.get_by_role("listitem")).to_have_count(2)
    expect(result.get_by_role("listitem").first).to_contain_text("Accepted host@example.com")
    [mail] = smtp_server.messages_to("host@example.com")
    assert mail["Subject"] == "[Test] Dinner at Grand Hall"
    assert "/r/preview" in mail.get_body(("plain",)).get_content()
    # Nothing was saved: the form still holds the draft, the lists are as they were.
    expect(page.get_by_label("Subject")).to_have_value("Dinner at {{venue}}")

    page.get_by_label("Send the test to").fill("not-an-address")
    page.problems.allow_status(400)
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#test-send-result").get_by_role("alert")).to_have_text(
        "Not an e-mail address: “not-an-address”."
    )
