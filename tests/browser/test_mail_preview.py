"""The compose preview in headless Chromium: the HTML e-mail in a sandboxed frame where no
script runs and links lead nowhere, and a "Text version" tab with the text part."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import login, seed_event

GUESTS = [("<b>Ann</b>", "ann@example.org", "attending")]
BODY = (
    "Hi {{guest_name}},\n\n**Welcome** to {{event_name}}! "
    '<script>parent.postMessage("ran", "*")</script>\n\n[Answer here]({{rsvp_link}})'
)


def test_the_preview_frame_runs_no_script_and_the_text_tab_shows_the_text_part(
    page, live_app, live_user
):
    event_id = seed_event(live_app, live_user["id"], GUESTS, name="Garden Party")
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")
    page.evaluate(
        "window.__messages = []; addEventListener('message', (e) => __messages.push(e.data))"
    )

    # The frame's document, as served (its own policy included), with a script added: the
    # sandbox and the policy must both keep it from running.
    def add_script(route):
        served = route.fetch()
        body = served.text().replace(
            "</body>", '<script>parent.postMessage("ran", "*")</script></body>'
        )
        route.fulfill(response=served, body=body)

    page.route(re.compile(r".*/communications/preview/mail$"), add_script)
    page.problems.allow_console("Blocked script execution")
    page.get_by_label("Subject").fill("For {{guest_name}}")
    page.get_by_label("Message", exact=True).fill(BODY)

    preview = page.locator("#message-preview")
    mail = page.frame_locator("#message-preview iframe")
    expect(mail.locator("body")).to_contain_text("Hi <b>Ann</b>,")
    expect(mail.locator("body")).to_contain_text('<script>parent.postMessage("ran", "*")</script>')
    expect(mail.locator("b")).to_have_count(0)
    expect(mail.locator("strong")).to_have_text("Welcome")
    iframe = preview.locator("iframe")
    assert iframe.get_attribute("sandbox") == ""
    page.wait_for_timeout(300)
    assert page.evaluate("window.__messages") == []

    # Links are inert: the frame stays where it is.
    frame = page.frame(name="preview-mail")
    assert frame is not None and frame.url.endswith("/preview/mail")
    mail.get_by_text("I'll be there").click()
    mail.get_by_text("Answer here").click()
    page.wait_for_timeout(300)
    assert frame.url.endswith("/preview/mail")
    expect(mail.get_by_text("Can't come")).to_be_visible()

    # The text version is the e-mail's text part.
    text_tab = preview.get_by_role("tab", name="Text version")
    text_tab.click()
    text = preview.get_by_role("tabpanel")
    expect(text).to_be_visible()
    expect(text).to_contain_text("Hi <b>Ann</b>,")
    expect(text).to_contain_text("Answer here (http://127.0.0.1:")
    expect(text).to_contain_text("Your answer: http://127.0.0.1:")
    expect(iframe).to_be_hidden()
    # Keyboard: arrow keys move between the tabs.
    text_tab.press("ArrowLeft")
    expect(preview.get_by_role("tab", name="E-mail")).to_be_focused()
    expect(iframe).to_be_visible()

    # A mistake hides the e-mail; once fixed, the same frame shows it again.
    page.get_by_label("Message", exact=True).fill("Oops {{nope}}")
    expect(preview.get_by_role("alert")).to_contain_text("Unknown placeholder {{nope}}")
    page.get_by_label("Message", exact=True).fill(BODY)
    expect(mail.locator("strong")).to_have_text("Welcome")
    expect(preview.locator("iframe")).to_be_visible()

    # The chosen tab survives the live refresh of the preview.
    preview.get_by_role("tab", name="Text version").click()
    page.get_by_label("Message", exact=True).fill("Changed for {{guest_name}}.")
    expect(preview.get_by_role("tabpanel")).to_contain_text("Changed for <b>Ann</b>.")
    expect(preview.get_by_role("tab", name="Text version")).to_have_attribute(
        "aria-selected", "true"
    )
    assert page.evaluate("window.__messages") == []
