"""Cancelling an event in headless Chromium: the confirm step, its scheduled messages
cancelled on the Communications page, the notice going out, and the guest's RSVP page."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import flash, guest_token, login, seed_event, wait_until

GUESTS = [
    ("Ada Lovelace", "ada@example.org", "attending"),
    ("Ben Okafor", "ben@example.org", "pending"),
    ("Emil Sørensen", "emil@example.org", "declined"),
]


def test_cancel_an_event_from_its_page(page, open_page, live_app, live_user, smtp_server):
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    login(page, live_user)
    page.goto(f"/events/{event_id}")
    page.get_by_role("button", name="Cancel event…").click()

    # The confirm step says what will happen, and nothing has happened yet.
    expect(page.get_by_role("heading", name="Cancel this event?")).to_be_visible()
    expect(page.get_by_text("Its 4 unsent messages")).to_be_visible()
    expect(page.get_by_text("The notice goes to 2 guests")).to_be_visible()
    page.get_by_label("Send a cancellation notice to every guest who has not declined").check()
    page.get_by_role("button", name="Cancel the event").click()

    expect(flash(page)).to_have_text(
        "Summer Gala is cancelled; 4 messages will not be sent. "
        "The cancellation notice is being sent."
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel event…")).to_have_count(0)

    page.get_by_role("navigation", name="Event sections").get_by_role(
        "link", name="Communications"
    ).click()
    tabs = page.get_by_role("navigation", name="Message lists")
    expect(tabs.locator('[data-tab-count="scheduled"]')).to_have_text("0")
    expect(tabs.locator('[data-tab-count="cancelled"]')).to_have_text("4")
    expect(page.get_by_role("region", name="New message").get_by_role("alert")).to_contain_text(
        "This event is cancelled"
    )
    tabs.get_by_role("link", name="Cancelled").click()
    rows = page.locator("#message-list tbody tr")
    expect(rows).to_have_count(4)
    for row in rows.all():
        expect(row.locator(".badge")).to_have_text("Cancelled")
        expect(row.locator(".status-reason")).to_have_text("event cancelled")

    # The notice reaches everyone who has not declined, through the normal dispatch.
    wait_until(lambda: len(smtp_server.received) == 2, what="the notice to be sent")
    assert sorted(smtp_server.recipients()) == ["ada@example.org", "ben@example.org"]

    guest = open_page()
    guest.goto(f"/r/{guest_token(live_app, event_id, 'ada@example.org')}")
    expect(guest.get_by_role("alert")).to_contain_text("This event has been cancelled.")
    expect(guest.get_by_role("button", name="Send my answer")).to_have_count(0)
