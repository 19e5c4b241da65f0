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


def tab_until(page, selector: str, limit: int = 30) -> int:
    """Press Tab until the focused element matches ``selector``; the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"{selector} not reached in {limit} Tabs")


def test_compose_and_send_by_keyboard_only(page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")

    # Skip the header, then reach the subject in a few Tabs.
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert tab_until(page, "#subject") <= 8
    page.keyboard.type("Doors open at 18:00")
    page.keyboard.press("Tab")
    page.keyboard.type("Hi , see you.")
    for _ in range(len(", see you.")):
        page.keyboard.press("ArrowLeft")
    # A placeholder button inserts where the cursor was and gives the focus back.
    tab_until(page, "[data-insert='{{guest_name}}']", limit=3)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Message", exact=True)).to_have_value("Hi {{guest_name}}, see you.")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()

    # The mode with the arrow keys, then the button, which says what it will do.
    tab_until(page, "input[name=mode]:checked")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_label("Send now", exact=True)).to_be_checked()
    tab_until(page, ".compose-submit")
    expect(page.locator(".compose-submit")).to_have_text("Send message now")
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Enter")

    # The Sent tab, scrolled to the new row, which is highlighted.
    page.wait_for_url(re.compile(rf"/events/{event_id}/communications/sent#message-\d+$"))
    expect(page.locator(".flashes")).to_contain_text("“Doors open at 18:00” is being sent.")
    row = page.locator("tr:target")
    expect(row).to_contain_text("Doors open at 18:00")
    expect(row).to_be_in_viewport()

    # Switching tabs (keyboard) shows another list: the flash about the send goes away.
    page.get_by_role("navigation", name="Message lists").get_by_role(
        "link", name=re.compile("^Scheduled")
    ).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/events/{event_id}/communications$"))
    expect(page.locator(".flashes")).to_have_count(0)

    # A row's Send now (keyboard): focus goes to the answer, which links to watch it.
    reminder = page.locator("#message-list tr").filter(has_text="7-day reminder")
    reminder.get_by_role("button", name=re.compile("Send")).focus()
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Enter")
    answer = page.locator("#message-list .flash")
    expect(answer).to_be_focused()
    expect(answer.get_by_role("link", name="Watch it")).to_be_visible()
    answer.get_by_role("link", name="Watch it").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/events/{event_id}/messages/\d+$"))


def test_a_refused_guest_focuses_the_error_and_an_added_one_is_shown(page, live_app, live_user):
    many = [(f"Guest {i:02d}", f"guest{i}@example.org", "pending") for i in range(30)]
    event_id = seed_event(live_app, live_user["id"], many)
    login(page, live_user)
    page.problems.allow_status(400)
    page.goto(f"/events/{event_id}/guests")
    page.get_by_label("Name", exact=True).fill("Zoe Last")
    page.get_by_label("E-mail", exact=True).fill("not an address")
    page.get_by_role("button", name="Add guest").click()
    email = page.get_by_label("E-mail", exact=True)
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    expect(email).to_be_in_viewport()

    email.fill("zoe@example.org")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/events/{event_id}/guests\?page=2#guest-\d+$"))
    row = page.locator("tr:target")
    expect(row).to_contain_text("Zoe Last")
    expect(row).to_be_in_viewport()


def test_the_phone_menu_opens_and_closes_by_keyboard(page, live_user):
    page.set_viewport_size({"width": 390, "height": 800})
    login(page, live_user)
    main_nav = page.get_by_role("navigation", name="Main")
    menu = main_nav.get_by_role("button", name="Menu")
    events = main_nav.get_by_role("link", name="Events", exact=True)
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(events).to_be_hidden()
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(events).to_be_visible()
    expect(main_nav.get_by_role("button", name=re.compile("^Sign out"))).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(events).to_be_hidden()
    expect(menu).to_be_focused()
    # On a desktop the links are simply there.
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(menu).to_be_hidden()
    expect(events).to_be_visible()
