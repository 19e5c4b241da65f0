"""Events and guests in headless Chromium: create an event through the form and find its
four auto-reminders, add guests through the guests page, and a guest's RSVP link."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.conftest import flash, guest_token, login, recipient_count, seed_event

REMINDER_LABELS = ["7-day reminder", "3-day last call", "1-day reminder", "Day-of reminder"]


def test_create_event_shows_its_four_reminders(page, live_user):
    login(page, live_user)
    page.get_by_role("button", name="Create your first event").click()
    expect(page.get_by_role("heading", name="New event")).to_be_visible()

    starts = (datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(days=30)).replace(
        hour=19, minute=30
    )
    page.get_by_label("Name").fill("Autumn Gala")
    page.get_by_label("Starts at").fill(starts.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Venue").fill("Grand Hall")
    page.get_by_role("button", name="Create event").click()

    expect(flash(page)).to_have_text("Created Autumn Gala.")
    expect(page.get_by_role("heading", name="Autumn Gala", level=1)).to_be_visible()
    expect(page.locator("dl.facts").first).to_contain_text(starts.strftime("%d %b %Y, 19:30"))

    page.get_by_role("navigation", name="Event sections").get_by_role(
        "link", name="Communications"
    ).click()
    page.wait_for_url(re.compile(r"/events/\d+/communications$"))
    tabs = page.get_by_role("navigation", name="Message lists")
    expect(tabs.get_by_role("link", name="Scheduled")).to_have_attribute("aria-current", "page")
    expect(tabs.locator('[data-tab-count="scheduled"]')).to_have_text("4")

    listing = page.locator("#message-list")
    expect(listing.locator(".message-kind")).to_have_count(4)
    assert sorted(listing.locator(".message-kind").all_inner_texts()) == sorted(REMINDER_LABELS)
    assert "reminder_" not in listing.inner_text()  # friendly labels, never slugs
    for label in REMINDER_LABELS:
        row = listing.get_by_role("row").filter(has_text=label)
        expect(row.locator(".badge")).to_have_text("Scheduled")
    # Reminders go out at 09:00 in the event's zone; the day-of one then too (event at 19:30).
    seven_days = (starts - timedelta(days=7)).strftime("%a %d %b %Y, 09:00")
    expect(listing.get_by_role("row").filter(has_text="7-day reminder")).to_contain_text(seven_days)


def test_add_guests_through_the_form(page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], name="Winter Ball")
    login(page, live_user)
    page.goto(f"/events/{event_id}/guests")
    expect(page.get_by_text("No guests yet.")).to_be_visible()

    form = page.get_by_role("region", name="Add a guest")
    for name, email, rsvp in [
        ("Ada Lovelace", "ada@example.org", "Attending"),
        ("Ben Okafor", "ben@example.org", "Maybe"),
        ("Chloé Dupont", "chloe@example.org", "Pending"),
    ]:
        form.get_by_label("Name").fill(name)
        form.get_by_label("E-mail").fill(email)
        form.get_by_label("RSVP").select_option(label=rsvp)
        form.get_by_role("button", name="Add guest").click()
        expect(flash(page)).to_have_text(f"Added {name} <{email}>.")
        row = page.locator("#guest-table").get_by_role("row").filter(has_text=email)
        expect(row).to_contain_text(name)
        expect(row).to_contain_text(rsvp)

    counts = page.get_by_role("list", name="Guests by RSVP")
    expect(counts.get_by_role("link", name="All")).to_have_text(re.compile(r"All\s+3"))
    expect(counts.get_by_role("link", name="Attending")).to_have_text(re.compile(r"Attending\s+1"))

    # The same address twice is refused (400) with the reason next to the field.
    page.problems.allow_status(400)
    form.get_by_label("Name").fill("Ada Again")
    form.get_by_label("E-mail").fill("ADA@example.org")
    form.get_by_role("button", name="Add guest").click()
    expect(form.get_by_text("is already on the guest list")).to_be_visible()
    expect(page.locator("#guest-table").get_by_role("row")).to_have_count(4)  # header + 3

    # The guests are the audience of the Communications page at once.
    page.goto(f"/events/{event_id}/communications")
    expect(recipient_count(page)).to_contain_text("3 guests will receive this.")
    page.get_by_label("Audience").select_option("attending")
    expect(recipient_count(page)).to_contain_text("1 guest will receive this.")


def test_removing_a_guest_asks_first(page, live_app, live_user):
    event_id = seed_event(
        live_app,
        live_user["id"],
        [
            ("Ada Lovelace", "ada@example.org", "attending"),
            ("Ben Okafor", "ben@example.org", "maybe"),
        ],
    )
    login(page, live_user)
    page.goto(f"/events/{event_id}/guests")
    table = page.locator("#guest-table")
    dialogs: list[str] = []

    def answer(accept: bool):
        def handle(dialog):
            dialogs.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handle

    # Dismissed: nothing is sent, Ada stays.
    page.once("dialog", answer(accept=False))
    page.get_by_role("button", name="Remove Ada Lovelace").click()
    assert dialogs == [
        "Remove Ada Lovelace <ada@example.org> from the guest list? They will receive no "
        "further messages; what they were sent stays in the history."
    ]
    expect(table.get_by_role("row").filter(has_text="ada@example.org")).to_have_count(1)

    # Accepted: the whole guests page comes back (boosted), with the flash and without Ada.
    page.once("dialog", answer(accept=True))
    page.get_by_role("button", name="Remove Ada Lovelace").click()
    expect(flash(page)).to_have_text(
        "Removed Ada Lovelace from the guest list. What they were sent stays in the history; "
        "adding their address again brings them back."
    )
    expect(table.get_by_role("row").filter(has_text="ada@example.org")).to_have_count(0)
    expect(table.get_by_role("row").filter(has_text="ben@example.org")).to_have_count(1)
    expect(page.get_by_role("region", name="Add a guest")).to_be_visible()
    assert page.url.endswith(f"/events/{event_id}/guests")
    assert len(dialogs) == 2

    # The removed list brings her back, as she was.
    page.get_by_role("link", name="Removed 1").click()
    expect(table.get_by_role("row").filter(has_text="ada@example.org")).to_have_count(1)
    page.get_by_role("button", name="Restore Ada Lovelace").click()
    expect(flash(page)).to_have_text("Ada Lovelace is back on the guest list.")
    expect(table).to_contain_text("No guest has been removed from the list.")
    page.get_by_role("link", name="All 2").click()
    expect(table.get_by_role("row").filter(has_text="ada@example.org")).to_have_count(1)


def test_rsvp_link_changes_the_attending_count(page, open_page, live_app, live_user):
    event_id = seed_event(
        live_app,
        live_user["id"],
        [
            ("Ada Lovelace", "ada@example.org", "attending"),
            ("Ben Okafor", "ben@example.org", "attending"),
            ("Chloé Dupont", "chloe@example.org", "pending"),
            ("Dev Patel", "dev@example.org", "pending"),
        ],
    )
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")
    count = recipient_count(page)
    audience = page.get_by_label("Audience")
    audience.select_option("attending")
    expect(count).to_contain_text("2 guests will receive this.")

    # The guest, without an account, follows the personal link from their e-mail.
    guest = open_page()
    guest.goto(f"/r/{guest_token(live_app, event_id, 'chloe@example.org')}")
    expect(guest.get_by_role("heading", name="Summer Gala")).to_be_visible()
    expect(guest.get_by_text("Hello Chloé Dupont,")).to_be_visible()
    expect(guest.get_by_role("button", name="Sign out")).to_have_count(0)
    guest.get_by_label("Yes, I will attend").check()
    guest.get_by_role("button", name="Send my answer").click()
    expect(guest.get_by_role("heading", name="Thank you, Chloé Dupont!")).to_be_visible()
    expect(guest.get_by_role("status")).to_contain_text("Your answer is saved: Attending.")

    # The host's page counts the new answer as soon as the audience is asked again.
    audience.select_option("pending")
    expect(count).to_contain_text("1 guest will receive this.")
    audience.select_option("attending")
    expect(count).to_contain_text("3 guests will receive this.")
    page.get_by_label("Subject").fill("See you, {{guest_name}}")
    expect(page.locator("#message-preview")).to_contain_text("Subject: See you, Ada Lovelace")


def test_unknown_rsvp_link_is_a_plain_not_found(page):
    page.problems.allow_status(404)
    response = page.goto("/r/not-a-real-token")
    assert response is not None and response.status == 404
    expect(page.get_by_text("This link is not valid (any more).")).to_be_visible()
