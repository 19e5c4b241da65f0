"""The guest list in headless Chromium: the search survives Back, each guest has a page with
every message they were sent, and an import preview says what changes."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import login, seed_event

GUESTS = [
    ("Ann Okafor", "ann@example.org", "attending"),
    ("Ben Ito", "ben@example.org", "attending"),
    ("Cleo Okafor", "cleo@example.org", "maybe"),
]


def test_search_survives_back_and_a_guest_page_answers_what_they_got(page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    login(page, live_user)
    page.goto(f"/events/{event_id}/guests")
    search = page.get_by_role("searchbox", name="Search")
    search.fill("okafor")
    expect(page).to_have_url(re.compile(r"\?q=okafor"))
    table = page.locator("#guest-table tbody tr")
    expect(table).to_have_count(2)

    # Away to a guest's page and Back: the box still says what the list is filtered by.
    page.locator("#guest-table").get_by_role("link", name="Ann Okafor", exact=True).click()
    expect(page.get_by_role("heading", name="Ann Okafor <ann@example.org>")).to_be_visible()
    expect(page.get_by_text("Nothing has been sent to Ann Okafor yet.")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?q=okafor"))
    expect(search).to_have_value("okafor")
    expect(table).to_have_count(2)

    # Searches typed in place are steps of the history too: Back restores the list htmx kept
    # and the box says what it is filtered by.
    page.goto(f"/events/{event_id}/guests")
    search.fill("ito")
    expect(page).to_have_url(re.compile(r"\?q=ito"))
    search.fill("okafor")
    expect(page).to_have_url(re.compile(r"\?q=okafor"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?q=ito(&|$)"))
    expect(table).to_have_count(1)
    expect(search).to_have_value("ito")
    page.go_back()
    expect(search).to_have_value("")
    expect(table).to_have_count(3)
