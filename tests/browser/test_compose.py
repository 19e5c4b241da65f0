"""The compose form shows its modes, in a browser whose own zone differs from the event's:
the button says what it does, "Send at" only counts for "Schedule", the chosen time is
repeated in 24-hour form with its UTC offset and the host's own time, placeholders insert
where the cursor is, and a new event starts in the browser's time zone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    TIMEOUT_MS,
    VIEWPORT,
    PageProblems,
    login,
    recipient_count,
    seed_event,
)

HOST_ZONE = "America/New_York"


@pytest.fixture
def new_york_page(browser_instance, live_server):
    """A page whose browser runs in New York, while the event is in Berlin."""
    context = browser_instance.new_context(
        base_url=live_server.url, viewport=VIEWPORT, timezone_id=HOST_ZONE, color_scheme="light"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.problems = PageProblems(page)
    yield page
    page.problems.closing = True
    context.close()
    assert page.problems.errors == []


def test_compose_modes_time_echo_placeholders_and_browser_zone(new_york_page, live_app, live_user):
    page = new_york_page
    event_id = seed_event(
        live_app, live_user["id"], [("Ann Okafor", "ann@example.org", "attending")]
    )
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")
    expect(recipient_count(page)).to_contain_text("1 guest will receive this.")
    send_at = page.get_by_label("Send at")
    echo = page.locator("#send-at-echo")

    # Draft: the button saves a draft and the send time does not apply.
    expect(page.get_by_role("button", name="Save draft")).to_be_visible()
    expect(send_at).to_be_disabled()
    expect(page.get_by_text(re.compile(r"Europe/Berlin \(UTC\+0[12]:00\)\."))).to_be_visible()

    # Schedule: the time can be chosen and is repeated in 24-hour form, in both zones.
    page.get_by_label("Schedule").check()
    expect(page.get_by_role("button", name="Schedule message")).to_be_visible()
    expect(send_at).to_be_enabled()
    send_at.fill("2031-01-15T18:30")
    expect(echo).to_have_text(
        "Sends Wed 15 Jan 2031, 18:30 Europe/Berlin (UTC+01:00)"
        " = Wed 15 Jan 2031, 12:30 your time (America/New_York, UTC−05:00)."
    )
    send_at.fill("2031-07-15T18:30")  # summer time in both places
    expect(echo).to_contain_text("18:30 Europe/Berlin (UTC+02:00) = Tue 15 Jul 2031, 12:30")

    # Send now: the button says so and the time is out of play.
    page.get_by_label("Send now", exact=True).check()
    expect(page.get_by_role("button", name="Send message now")).to_be_visible()
    expect(send_at).to_be_disabled()
    expect(echo).to_be_hidden()

    # Placeholders insert where the cursor is, and the preview fills them in.
    body = page.get_by_label("Message", exact=True)
    body.fill("Hello , see you.")
    body.evaluate("(el) => el.setSelectionRange(6, 6)")
    page.get_by_role("group", name="Insert a placeholder").get_by_role(
        "button", name="guest_name"
    ).click()
    expect(body).to_have_value("Hello {{guest_name}}, see you.")
    expect(page.locator("#message-preview")).to_contain_text("Hello Ann Okafor, see you.")

    # Saved as a draft, the message keeps the time it was given (greyed out, not lost).
    page.get_by_label("Subject").fill("Doors open")
    page.get_by_label("Save as draft").check()
    page.get_by_role("button", name="Save draft").click()
    row = page.locator("#message-list tr").filter(has_text="Doors open")
    expect(row).to_contain_text("Tue 15 Jul 2031, 18:30")

    # A host who already has an event starts the next one in that event's zone.
    page.goto("/events/new")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")


def test_a_first_event_starts_in_the_browsers_zone(new_york_page, live_user):
    page = new_york_page
    login(page, live_user)
    page.goto("/events/new")
    expect(page.get_by_label("Time zone")).to_have_value(HOST_ZONE)
    page.get_by_label("Time zone").fill("Berlin")
    page.get_by_label("Name").fill("Board dinner")
    page.get_by_label("Starts at").fill("2031-07-15T18:00")
    page.get_by_role("button", name="Create event").click()
    expect(page.get_by_text("Europe/Berlin").first).to_be_visible()


def test_on_a_phone_the_preview_and_count_come_before_the_button(open_page, live_app, live_user):
    """At 390 px the preview sits between the fields and the count with the buttons, so a
    host sees what goes out, and to whom, before saving; at 1280 px it stays beside the form."""
    page = open_page()
    event_id = seed_event(
        live_app, live_user["id"], [("Ann Okafor", "ann@example.org", "attending")]
    )
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")
    page.get_by_label("Subject").fill("Parking")
    preview = page.get_by_role("complementary", name="Preview")
    button = page.get_by_role("button", name="Save draft")
    body = page.get_by_label("Message", exact=True)
    expect(recipient_count(page)).to_contain_text("1 guest will receive this.")

    def box(locator):  # type: ignore[no-untyped-def]
        return locator.bounding_box()

    page.set_viewport_size({"width": 390, "height": 844})
    expect(preview).to_be_visible()
    assert box(body)["y"] < box(preview)["y"] < box(recipient_count(page))["y"] < box(button)["y"]

    page.set_viewport_size({"width": 1280, "height": 900})
    assert box(preview)["x"] > box(button)["x"] + box(button)["width"]
    assert box(preview)["y"] < box(button)["y"]
