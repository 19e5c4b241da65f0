"""An event's life: cancel (with a notice to everyone who has not declined), archive and
bring back, delete while nothing was sent; through the API and the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.dispatch.models import DeliveryStatus
from dashboard.events.models import Event, EventStatus, Guest, RsvpStatus
from dashboard.extensions import db
from dashboard.messages.models import Audience, Message, MessageStatus
from tests.api.openapi_check import answers_match_the_document  # noqa: F401 (autouse)
from tests.helpers import deliveries_of


def api(event, tail: str = "") -> str:
    return f"/api/events/{event.id}{tail}"


def statuses(event) -> dict[int, tuple[MessageStatus, str | None]]:
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(Message.id, Message.status, Message.status_reason).where(
            Message.event_id == event.id
        )
    )
    return {row.id: (row.status, row.status_reason) for row in rows}


@pytest.fixture
def guests(event, make_guests):
    make_guests(event, 2, RsvpStatus.ATTENDING, prefix="att")
    make_guests(event, 1, RsvpStatus.MAYBE, prefix="may")
    make_guests(event, 1, RsvpStatus.PENDING, prefix="pen")
    make_guests(event, 2, RsvpStatus.DECLINED, prefix="dec")


# --- cancel --------------------------------------------------------------------------------


def test_cancel_with_a_notice_to_everyone_who_has_not_declined(
    client, auth, event, owner, guests, make_message, dispatcher, now
):
    draft = make_message(event, status=MessageStatus.DRAFT)
    overdue = make_message(event, status=MessageStatus.OVERDUE)
    auth.login(owner)
    response = client.post(api(event, "/cancel"), json={"notify": True})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled" and body["cancelled_at"] is not None
    assert body["cancelled_messages"] == 6  # the four reminders, the draft, the overdue one
    notice = db.session.get(Message, body["notice_message_id"])
    assert (notice.audience, notice.status) == (Audience.NOT_DECLINED, MessageStatus.SENDING)
    assert notice.subject == "Cancelled: {{event_name}}"

    found = statuses(event)
    assert found.pop(notice.id)[0] is MessageStatus.SENDING
    assert set(found.values()) == {(MessageStatus.CANCELLED, "event cancelled")}
    assert draft.id in found and overdue.id in found

    dispatcher.poll()
    sent = {d.email for d in deliveries_of(notice) if d.status is DeliveryStatus.SENT}
    assert sent == {"att0@example.org", "att1@example.org", "may2@example.org", "pen3@example.org"}
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "event.cancel"))
    assert entry.actor == owner.email and entry.details["cancelled_messages"] == 6

    # Cancelled is final: a second cancel, an edit, a new message are refused with why.
    assert client.post(api(event, "/cancel")).status_code == 409
    moved = client.patch(api(event), json={"venue": "Elsewhere"})
    assert moved.status_code == 409 and "cancelled" in moved.get_json()["error"]
    new = client.post(
        api(event, "/messages"), json={"audience": "everyone", "subject": "Hi", "body": "Hi"}
    )
    assert new.status_code == 409


def test_cancel_needs_no_body_and_a_notice_for_nobody_is_refused(
    client, auth, event, owner, make_guests
):
    make_guests(event, 2, RsvpStatus.DECLINED)
    auth.login(owner)
    refused = client.post(api(event, "/cancel"), json={"notify": True, "subject": "Off"})
    assert refused.status_code == 400
    assert refused.get_json()["fields"]["notify"].startswith("No guest would receive this")
    assert db.session.get(Event, event.id).status is EventStatus.ACTIVE  # nothing changed
    assert set(statuses(event).values()) == {(MessageStatus.SCHEDULED, None)}

    done = client.post(api(event, "/cancel"))
    assert done.status_code == 200 and "notice_message_id" not in done.get_json()


def test_only_owners_cancel_archive_or_delete(client, auth, event, editor, viewer, stranger):
    for user, status in ((editor, 403), (viewer, 403), (stranger, 404)):
        auth.login(user)
        for method, tail in (("post", "/cancel"), ("post", "/archive"), ("delete", "")):
            assert getattr(client, method)(api(event, tail)).status_code == status
        auth.logout()
    assert db.session.get(Event, event.id).status is EventStatus.ACTIVE


def test_the_rsvp_page_of_a_cancelled_event_says_so_and_refuses_changes(
    client, auth, event, owner, make_guests
):
    [guest] = make_guests(event, 1, RsvpStatus.ATTENDING)
    auth.login(owner)
    assert client.post(f"/events/{event.id}/cancel", data={}).status_code == 303
    auth.logout()
    page = client.get(f"/r/{guest.token}").get_data(as_text=True)
    assert "This event has been cancelled." in page and "Send my answer" not in page
    answer = client.post(f"/r/{guest.token}", data={"rsvp_status": "declined"})
    assert answer.status_code == 409
    assert db.session.get(Guest, guest.id).rsvp_status is RsvpStatus.ATTENDING


def test_the_cancel_page_asks_first_then_cancels(client, auth, event, owner, guests):
    auth.login(owner)
    page = client.get(f"/events/{event.id}/cancel").get_data(as_text=True)
    assert "Its 4 unsent messages" in page
    assert "The notice goes to 4 guests" in page
    assert db.session.get(Event, event.id).status is EventStatus.ACTIVE  # asking changes nothing

    done = client.post(
        f"/events/{event.id}/cancel", data={"notify": "y", "subject": "", "body": ""}
    )
    assert done.status_code == 400  # an empty notice is refused on the form
    assert "A subject is required." in done.get_data(as_text=True)

    done = client.post(f"/events/{event.id}/cancel", follow_redirects=True, data={})
    html = done.get_data(as_text=True)
    assert "Summer Gala is cancelled; 4 messages will not be sent." in html
    assert "This event was cancelled on" in html


# --- archive ------------------------------------------------------------------------------


def test_archive_hides_the_event_keeps_it_readable_and_sends_nothing(
    client, auth, event, owner, guests, make_message
):
    sent = make_message(event, status=MessageStatus.SENT)
    auth.login(owner)
    archived = client.post(api(event, "/archive"))
    assert archived.status_code == 200
    assert archived.get_json()["status"] == "archived"
    assert archived.get_json()["cancelled_messages"] == 4

    index = client.get("/").get_data(as_text=True)
    assert "Summer Gala" not in index and 'Archived <span class="badge">1</span>' in index
    assert "Summer Gala" in client.get("/?show=archived").get_data(as_text=True)
    assert client.get(f"/events/{event.id}").status_code == 200
    assert client.get(f"/events/{event.id}/communications/sent").status_code == 200
    assert [e["id"] for e in client.get("/api/events?status=archived").get_json()["items"]] == [
        event.id
    ]
    assert client.get("/api/events?status=active").get_json()["total"] == 0

    retry = client.post(api(event, f"/messages/{sent.id}/retry-failed"))
    assert retry.status_code == 409
    new = client.post(
        api(event, "/messages"), json={"audience": "everyone", "subject": "Hi", "body": "Hi"}
    )
    assert new.status_code == 409 and "archived" in new.get_json()["error"]

    back = client.post(api(event, "/unarchive"))
    assert back.status_code == 200 and back.get_json()["status"] == "active"
    assert "Summer Gala" in client.get("/").get_data(as_text=True)


def test_archive_waits_for_a_send_in_progress(client, auth, event, owner, make_message):
    make_message(event, status=MessageStatus.SENDING, subject="Big news")
    auth.login(owner)
    refused = client.post(api(event, "/archive"))
    assert refused.status_code == 409
    assert refused.get_json()["error"] == (
        "“Big news” is being sent; archive the event once it has finished."
    )
    page = client.post(f"/events/{event.id}/archive")
    assert page.status_code == 409 and "is being sent" in page.get_data(as_text=True)


# --- delete ---------------------------------------------------------------------------------


def test_delete_an_event_nothing_was_sent_for(client, auth, event, owner, guests):
    auth.login(owner)
    assert client.delete(api(event)).status_code == 204
    assert db.session.get(Event, event.id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Guest)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "event.delete"))
    assert entry.event_id == event.id and entry.details["name"] == "Summer Gala"


def test_an_event_with_a_sent_message_cannot_be_deleted(
    client, auth, event, owner, guests, make_message, dispatcher
):
    make_message(event)
    dispatcher.poll()
    auth.login(owner)
    refused = client.delete(api(event))
    assert refused.status_code == 409
    assert refused.get_json()["error"] == (
        "“Summer Gala” cannot be deleted: 1 of its messages has been sent, and their log is "
        "kept. Archive the event instead."
    )
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "Delete event" not in page and "archive it instead" in page
    assert client.post(f"/events/{event.id}/delete").status_code == 409
    assert db.session.get(Event, event.id) is not None


def test_the_event_page_deletes_with_a_confirmation(client, auth, event, owner):
    auth.login(owner)
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert 'data-confirm="Delete “Summer Gala” with its guests and messages?' in page
    done = client.post(f"/events/{event.id}/delete", follow_redirects=True)
    assert "Summer Gala was deleted." in done.get_data(as_text=True)
    assert client.get(f"/events/{event.id}").status_code == 404


def test_event_json_has_status_and_cancelled_at(client, auth, event, owner, now):
    auth.login(owner)
    body = client.get(api(event)).get_json()
    assert (body["status"], body["cancelled_at"]) == ("active", None)
    later = client.post(api(event, "/cancel")).get_json()["cancelled_at"]
    assert later.endswith(("+01:00", "+02:00"))  # in the event's zone, like starts_at
    assert client.get(api(event)).get_json()["cancelled_at"] == later
    assert now - timedelta(minutes=1) < db.session.get(Event, event.id).cancelled_at
