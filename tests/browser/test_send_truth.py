"""Sending says who it goes to: the compose form's send-now question names the rendered
subject, the count and who is left out, and follows the audience as the host changes it."""

from __future__ import annotations

from playwright.sync_api import expect

from dashboard.extensions import db
from dashboard.messages.models import Message
from tests.browser.conftest import app_session, login, recipient_count, seed_event

GUESTS = [
    ("Ada Lovelace", "ada@example.org", "attending"),
    ("Ben Okafor", "ben@example.org", "attending"),
    ("Carla Diaz", "carla@example.org", "attending"),
    ("Dev Patel", "dev@example.org", "maybe"),
]


def test_send_now_question_names_subject_count_and_who_is_left_out(page, live_app, live_user):
    event_id = seed_event(live_app, live_user["id"], GUESTS, name="Summer Gala")
    with app_session(live_app) as session:  # one attending guest has unsubscribed
        session.execute(
            db.text("UPDATE guests SET unsubscribed_at = CURRENT_TIMESTAMP WHERE email = :e"),
            {"e": "carla@example.org"},
        )
        session.commit()
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications")

    page.get_by_label("Audience").select_option("attending")
    expect(recipient_count(page)).to_contain_text("2 guests will receive this.")
    page.get_by_label("Subject").fill("Parking for {{event_name}}, {{guest_name}}")
    page.get_by_label("Message", exact=True).fill("Park behind the hall.")
    page.get_by_label("Send now", exact=True).check()

    questions: list[str] = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    # The form's own submit button (its label may follow the chosen mode).
    page.locator("#compose-form button[type=submit]").first.click()
    expect(page.get_by_label("Subject")).to_be_visible()
    assert questions == [
        "Send “Parking for Summer Gala, {{guest_name}}” to 2 attending guests now? "
        "1 unsubscribed is left out. This cannot be undone."
    ]
    with app_session(live_app) as session:  # dismissed: nothing was saved or sent
        assert (
            session.scalar(
                db.select(db.func.count())
                .select_from(Message)
                .where(Message.subject.like("Parking%"))
            )
            == 0
        )
