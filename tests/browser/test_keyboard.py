"""Keyboard and screen-reader use in headless Chromium: the skip link, a focus ring that can be
seen (3:1 against the page), Space on links that look like buttons, focus kept in the page
after a row action, and live parts that are not re-announced on every refresh."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import login, seed_event

GUESTS = [
    ("Ann Okafor", "ann@example.org", "attending"),
    ("Ben Ito", "ben@example.org", "attending"),
]

CONTRAST = """(el) => {
    const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
        const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const style = getComputedStyle(el);
    let back = "rgb(255, 255, 255)";
    for (let node = el.parentElement; node; node = node.parentElement) {
        const color = getComputedStyle(node).backgroundColor;
        if (color && !color.endsWith(", 0)") && color !== "transparent") { back = color; break; }
    }
    const [a, b] = [lum(rgb(style.outlineColor)), lum(rgb(back))].sort((x, y) => y - x);
    return {width: parseFloat(style.outlineWidth), style: style.outlineStyle,
            ratio: (a + 0.05) / (b + 0.05)};
}"""


def test_skip_link_focus_ring_and_space_on_button_links(page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    login(page, live_user)
    page.goto(f"/events/{event_id}")

    # The first Tab reaches "Skip to content"; following it puts the next Tab inside the page.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")

    # Whatever has the keyboard focus shows a ring of at least 3:1 against the page.
    ring = page.evaluate(CONTRAST, page.evaluate_handle("document.activeElement"))
    assert ring["style"] != "none" and ring["width"] >= 2, ring
    assert ring["ratio"] >= 3, ring
    edit = page.get_by_role("button", name="Edit event")
    edit.focus()
    ring = page.evaluate(CONTRAST, edit.element_handle())
    assert ring["ratio"] >= 3 and ring["width"] >= 2, ring

    # A link that says it is a button is pressed with Space, as a button is.
    page.keyboard.press("Space")
    page.wait_for_url(f"**/events/{event_id}/edit")


def test_live_parts_are_not_live_regions(page, live_app, live_user):
    """The preview, the guest table and the message list refresh themselves; as live regions
    a screen reader would read them again on every keystroke or poll. What matters is said
    once by the page's announcer."""
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")
    for part in ("#message-list", "#message-preview"):
        expect(page.locator(part)).to_have_count(1)
        assert page.locator(part).evaluate("(el) => el.closest('[aria-live]') === null"), part

    page.goto(f"/events/{event_id}/guests")
    assert page.locator("#guest-table").evaluate("(el) => el.closest('[aria-live]') === null")
    page.get_by_role("searchbox", name="Search").fill("okafor")
    expect(page.locator("#announcer")).to_have_text(re.compile(r"1 of 2 guests match"))
