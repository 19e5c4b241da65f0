"""The Communications page in headless Chromium: live count and preview, the life of a
message (draft, edit, schedule, cancel), row actions with tab counts, a refused action,
and what a viewer sees."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from dashboard.audit.services import Actor
from dashboard.extensions import db
from dashboard.messages import services as message_services
from dashboard.messages.models import Message, MessageKind
from tests.browser.conftest import app_session, flash, login, make_user, recipient_count, seed_event

GUESTS = [
    ("Ada Lovelace", "ada@example.org", "attending"),
    ("Ben Okafor", "ben@example.org", "attending"),
    ("<i>Carla</i> {{venue}}", "carla@example.org", "maybe"),
    ("Dev Patel", "dev@example.org", "maybe"),
    ("Emil Sørensen", "emil@example.org", "declined"),
    ("Fay Wong", "fay@example.org", "pending"),
]


#: A row's Send now button, whose accessible name names its message.
SEND_NOW = re.compile(r"^Send now: “.+”$")


def communications(page, event_id: int, tab: str | None = None) -> None:
    page.goto(f"/events/{event_id}/communications" + (f"/{tab}" if tab else ""))


def tab_count(page, tab: str):
    return page.locator(f'#message-tabs [data-tab-count="{tab}"]')


def message_row(page, text: str):
    return page.locator("#message-list").get_by_role("row").filter(has_text=text)


def test_compose_with_live_count_and_preview(page, live_app, live_user, screenshot):
    event_id = seed_event(live_app, live_user["id"], GUESTS, name="Garden Party", venue="Backyard")
    login(page, live_user)
    communications(page, event_id)
    count = recipient_count(page)
    preview = page.locator("#message-preview")
    expect(count).to_contain_text("6 guests will receive this.")

    audience = page.get_by_label("Audience")
    for value, text in [
        ("attending", "2 guests will receive this."),
        ("declined", "1 guest will receive this."),
        ("maybe", "2 guests will receive this."),
    ]:
        audience.select_option(value)
        expect(count).to_contain_text(text)

    # The preview renders for a real guest of the audience; their name stays inert text.
    page.get_by_label("Subject").fill("Hi {{guest_name}}")
    page.get_by_label("Message", exact=True).fill(
        "Dear {{guest_name}},\n\nwe meet at {{venue}} on {{event_date}}.\nAnswer here: {{rsvp_link}}"
    )
    expect(preview).to_contain_text("we meet at Backyard on")
    expect(preview).to_contain_text("As <i>Carla</i> {{venue}} <carla@example.org> will see it:")
    expect(preview.locator(".preview-subject")).to_have_text("Subject: Hi <i>Carla</i> {{venue}}")
    expect(preview.locator("i")).to_have_count(0)
    expect(preview).to_contain_text("/r/")  # a personal, absolute RSVP link

    # The audience drives both the count and whose preview it is.
    audience.select_option("attending")
    expect(count).to_contain_text("2 guests will receive this.")
    expect(preview.locator(".preview-subject")).to_have_text("Subject: Hi Ada Lovelace")
    expect(preview).to_contain_text("Dear Ada Lovelace,")
    screenshot(page, "compose-preview", around=page.get_by_role("region", name="New message"))

    page.get_by_label("Message", exact=True).fill("Meet at {{venu}}")
    expect(preview.get_by_role("alert")).to_contain_text("Unknown placeholder {{venu}}")
    page.get_by_label("Message", exact=True).fill("Meet at {{venue}}")
    expect(preview).to_contain_text("Meet at Backyard")

    # Sending now from the form asks first; dismissing it keeps everything as it was.
    page.get_by_label("Send now", exact=True).check()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Send message now").click()
    expect(tab_count(page, "sent")).to_have_text("0")
    assert page.url.endswith(f"/events/{event_id}/communications")


def test_draft_edit_schedule_cancel(page, live_app, live_user, screenshot):
    event_id = seed_event(live_app, live_user["id"], GUESTS[:3])
    tz = ZoneInfo("Europe/Berlin")
    login(page, live_user)
    communications(page, event_id)
    expect(tab_count(page, "scheduled")).to_have_text("4")  # the auto-reminders

    # Save a draft.
    page.get_by_label("Audience").select_option("attending")
    page.get_by_label("Subject").fill("Parking for {{event_name}}")
    page.get_by_label("Message", exact=True).fill("Hi {{guest_name}}, park behind the hall.")
    page.get_by_label("Save as draft").check()
    page.get_by_role("button", name="Save draft").click()
    expect(flash(page)).to_have_text("Draft “Parking for Summer Gala” saved.")
    expect(tab_count(page, "scheduled")).to_have_text("5")
    row = message_row(page, "Parking for")
    expect(row.locator(".badge")).to_have_text("Draft")
    expect(row).to_contain_text("Attending guests")
    expect(row).to_contain_text("Not set")

    # Edit it: the form comes back filled in; change the subject.
    row.get_by_role("button", name="Edit").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Edit message"))).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Parking for {{event_name}}")
    expect(page.get_by_label("Audience")).to_have_value("attending")
    expect(page.locator("#message-preview")).to_contain_text("Parking for Summer Gala")
    page.get_by_label("Subject").fill("Parking: new entrance")
    page.get_by_role("button", name="Save changes").click()
    expect(flash(page)).to_have_text("Draft “Parking: new entrance” updated.")
    row = message_row(page, "Parking: new entrance")
    expect(row.locator(".badge")).to_have_text("Draft")

    # Schedule it, at a local time of the event's zone.
    send_at = (datetime.now(tz) + timedelta(days=2)).replace(hour=18, minute=30)
    row.get_by_role("button", name="Edit").click()
    page.get_by_label("Schedule").check()
    page.get_by_label("Send at").fill(send_at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Save and schedule").click()
    when = send_at.strftime("%a %d %b %Y, 18:30")
    expect(flash(page)).to_have_text(
        f"“Parking: new entrance” is scheduled for {when} {send_at.tzname()}."
    )
    row = message_row(page, "Parking: new entrance")
    expect(row.locator(".badge")).to_have_text("Scheduled")
    expect(row).to_contain_text(when)

    # Cancel it: the question's answers say what they do ("Keep it" changes nothing) ...
    row.get_by_role("button", name="Cancel message").click()
    question = page.get_by_role("dialog")
    expect(question).to_contain_text(
        "Cancel “Parking: new entrance”? It will not be sent; you can restore it as a draft later."
    )
    expect(question.get_by_role("button", name="Keep it")).to_be_focused()
    question.get_by_role("button", name="Keep it").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(row.locator(".badge")).to_have_text("Scheduled")
    # ... "Cancel message" cancels it; then find it in the Cancelled tab.
    row.get_by_role("button", name="Cancel message").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel message").click()
    expect(page.locator("#message-list").get_by_role("status")).to_have_text(
        "“Parking: new entrance” was cancelled."
    )
    expect(tab_count(page, "cancelled")).to_have_text("1")
    expect(tab_count(page, "scheduled")).to_have_text("4")
    expect(message_row(page, "Parking: new entrance")).to_have_count(0)

    page.get_by_role("navigation", name="Message lists").get_by_role(
        "link", name="Cancelled"
    ).click()
    page.wait_for_url(f"**/events/{event_id}/communications/cancelled")
    row = message_row(page, "Parking: new entrance")
    expect(row.locator(".badge")).to_have_text("Cancelled")
    expect(row).to_contain_text(when)
    expect(row.get_by_role("button")).to_have_text(["Restore as draft", "Duplicate"])
    expect(
        page.get_by_role("navigation", name="Message lists").get_by_role("link", name="Cancelled")
    ).to_have_attribute("aria-current", "page")

    # A cancel can be taken back: the message returns as a draft, without a send time.
    row.get_by_role("button", name="Restore as draft").click()
    expect(page.locator("#message-list").get_by_role("status")).to_contain_text(
        "“Parking: new entrance” is a draft again"
    )
    expect(tab_count(page, "cancelled")).to_have_text("0")
    expect(tab_count(page, "scheduled")).to_have_text("5")

    # One message sent now (three guests, no rate limit), then the page as a host sees it.
    communications(page, event_id)
    page.get_by_label("Subject").fill("Welcome drinks at 18:00")
    page.get_by_label("Message", exact=True).fill("Hi {{guest_name}}, see you at {{venue}}!")
    page.get_by_label("Send now", exact=True).check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send message now").click()
    page.wait_for_url(f"**/events/{event_id}/communications/sent#message-*")
    expect(flash(page)).to_have_text("“Welcome drinks at 18:00” is being sent.")
    expect(
        message_row(page, "Welcome drinks").get_by_role(
            "img", name="3 sent, 0 failed, 0 skipped of 3"
        )
    ).to_be_visible()
    communications(page, event_id)
    expect(tab_count(page, "sent")).to_have_text("1")
    expect(message_row(page, "Day-of reminder")).to_be_visible()
    page.get_by_label("Subject").fill("Dress code: {{event_name}}")
    page.get_by_label("Message", exact=True).fill("Hi {{guest_name}}, it is black tie.")
    expect(page.locator("#message-preview")).to_contain_text("it is black tie.")
    screenshot(page, "communications", full_page=True)


def test_row_actions_update_the_list_and_the_tab_counts(page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], GUESTS[:3])
    login(page, live_user)
    communications(page, event_id)
    page.on("dialog", lambda dialog: dialog.accept())

    message_row(page, "Day-of reminder").get_by_role("button", name="Cancel").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel message").click()
    expect(page.get_by_text("“Today: Summer Gala” was cancelled.")).to_be_visible()
    expect(tab_count(page, "cancelled")).to_have_text("1")
    expect(tab_count(page, "scheduled")).to_have_text("3")

    message_row(page, "1-day reminder").get_by_role("button", name=SEND_NOW).click()
    expect(page.get_by_text("is being sent")).to_be_visible()
    expect(tab_count(page, "sent")).to_have_text("1")
    expect(tab_count(page, "scheduled")).to_have_text("2")

    tabs = page.get_by_role("navigation", name="Message lists")
    tabs.get_by_role("link", name="Sent").click()
    page.wait_for_url("**/communications/sent")
    row = message_row(page, "1-day reminder")  # reminders go to the attending guests
    expect(row.get_by_role("img", name="2 sent, 0 failed, 0 skipped of 2")).to_be_visible()
    expect(tabs.get_by_role("link", name="Sent")).to_have_attribute("aria-current", "page")


def test_a_refused_action_shows_its_reason(page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], GUESTS[:3])
    login(page, live_user)
    communications(page, event_id)
    # Another tab cancels the reminder after this page was loaded.
    with app_session(live_app) as session:
        message = session.scalars(
            db.select(Message).where(
                Message.event_id == event_id, Message.kind == MessageKind.REMINDER_7D
            )
        ).one()
        message_services.cancel_message(
            session, message, now=datetime.now(UTC), actor=Actor("another tab")
        )
        session.commit()

    page.problems.allow_status(409)  # the refusal is the point of this test
    page.once("dialog", lambda dialog: dialog.accept())
    message_row(page, "7-day reminder").get_by_role("button", name=SEND_NOW).click()
    alert = page.locator("#message-list").get_by_role("alert")
    expect(alert).to_have_text(
        "This message is cancelled and can no longer be sent. "
        "Only drafts, scheduled and overdue messages can be changed."
    )
    expect(message_row(page, "7-day reminder")).to_have_count(0)  # the list is fresh again
    expect(tab_count(page, "cancelled")).to_have_text("1")
    expect(tab_count(page, "sent")).to_have_text("0")


def test_viewer_sees_no_action_buttons(page, open_page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    viewer = make_user(live_app, "viewer@example.com", name="Vera Viewer")

    # The owner adds the viewer on the Collaborators page.
    login(page, live_user)
    page.goto(f"/events/{event_id}/collaborators")
    form = page.get_by_role("region", name="Add a collaborator")
    form.get_by_label("User's e-mail").fill(viewer["email"])
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Add").click()
    expect(flash(page)).to_have_text("viewer@example.com is now viewer of this event.")

    as_viewer = open_page()
    login(as_viewer, viewer)
    as_viewer.get_by_role("link", name="Summer Gala").click()
    expect(as_viewer.locator("dl.facts").first).to_contain_text("Your roleViewer")
    expect(as_viewer.get_by_role("button", name="Edit event")).to_have_count(0)

    communications(as_viewer, event_id)
    listing = as_viewer.locator("#message-list")
    expect(listing.locator(".message-kind")).to_have_count(4)  # sees everything ...
    for name in ["Edit", SEND_NOW, "Cancel"]:  # ... and can change nothing
        expect(listing.get_by_role("button", name=name)).to_have_count(0)
    expect(as_viewer.get_by_role("button", name="Save draft")).to_have_count(0)
    expect(as_viewer.get_by_text("only the event's editors and owners can save")).to_be_visible()
    # The count and the preview still work for a viewer.
    as_viewer.get_by_label("Audience").select_option("maybe")
    expect(recipient_count(as_viewer)).to_contain_text("2 guests will receive this.")
    as_viewer.get_by_label("Subject").fill("Hello {{guest_name}}")
    expect(as_viewer.locator("#message-preview .preview-subject")).to_have_text(
        "Subject: Hello <i>Carla</i> {{venue}}"
    )

    as_viewer.goto(f"/events/{event_id}/guests")
    expect(as_viewer.locator("#guest-table").get_by_role("row")).to_have_count(7)
    expect(as_viewer.get_by_role("region", name="Add a guest")).to_have_count(0)
    expect(as_viewer.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    expect(as_viewer.get_by_role("link", name=re.compile("^Edit"))).to_have_count(0)


def test_a_slow_server_never_leaves_a_stale_count_or_preview(page, live_app, live_user):
    """Changes made while an answer is on its way are queued, not lost: the count and the
    preview always end on the last audience and the last keystroke (regression: the
    fragments replaced their own element, and htmx drops a request queued on a removed one)."""
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    login(page, live_user)
    communications(page, event_id)

    def slow(ms: int):
        return lambda route: (page.wait_for_timeout(ms), route.continue_())

    page.route("**/recipient-count?*", slow(400))
    page.route("**/preview", slow(600))

    audience = page.get_by_label("Audience")
    audience.select_option("attending")
    audience.select_option("declined")  # while the first count is still on its way
    page.get_by_label("Subject").press_sequentially("Hello {{guest_name}}!", delay=60)

    expect(recipient_count(page)).to_contain_text("1 guest will receive this.")
    expect(page.locator("#message-preview .preview-subject")).to_have_text(
        "Subject: Hello Emil Sørensen!", timeout=15_000
    )
