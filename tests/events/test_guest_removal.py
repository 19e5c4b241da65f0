"""Removing a guest is soft: they leave every audience and count, their history stays, and
adding their address again brings back the same guest (so nothing is sent to them twice).
Sends go through a real SMTP server on loopback."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor
from dashboard.dispatch import recipients
from dashboard.dispatch.models import BatchStatus, Delivery, DeliveryStatus, Outcome
from dashboard.events import guests as guest_list
from dashboard.events.models import Guest, RsvpStatus
from dashboard.events.services import guest_counts, guest_totals_by_event
from dashboard.extensions import db
from dashboard.messages.audience import count_recipients, sample_guest
from dashboard.messages.models import Audience, MessageStatus
from tests.events.conftest import upload_csv
from tests.helpers import HX, batches_of, deliveries_of, entries_of, set_status, smtp_env

ACTOR = Actor("tests")


@pytest.fixture
def app_env(app_env, smtp_server):
    """A real SMTP server, and chunks of two deliveries so a batch takes several commits."""
    return {**app_env, **smtp_env(smtp_server), "DISPATCH_COMMIT_EVERY": "2"}


def remove(guest: Guest, now) -> None:
    guest_list.remove_guest(db.session, guest, actor=ACTOR, now=now)
    db.session.commit()


def test_a_removed_guest_keeps_what_they_were_sent_and_leaves_every_count(
    client, auth, dispatcher, event, make_guests, make_message, smtp_server, now
):
    guests = make_guests(event, 4, RsvpStatus.ATTENDING)
    message = make_message(event)
    dispatcher.poll()
    [batch] = batches_of(message)
    gone = guests[1]

    auth.login()
    response = client.post(f"/events/{event.id}/guests/{gone.id}/remove")
    assert response.status_code == 302

    # The history: the batch still has its 4 rows and says 4 sent, with the name and address.
    db.session.expire_all()
    assert [d.guest_id for d in deliveries_of(message)] == [g.id for g in guests]
    assert len(entries_of(batch)) == 4 == batch.total == batch.sent
    page = client.get(f"/events/{event.id}/batches/{batch.id}").get_data(as_text=True)
    assert page.count('<tr class="entry-sent">') == 4
    assert f"<td>{gone.name}</td>" in page and f"<td>{gone.email}</td>" in page
    delivery = next(d for d in deliveries_of(message) if d.guest_id == gone.id)
    detail = client.get(f"/events/{event.id}/deliveries/{delivery.id}").get_data(as_text=True)
    assert "was removed from the guest list" in detail and gone.email in detail

    # Out of every count and audience: the lists, the live count, the preview, dispatch.
    assert guest_counts(db.session, event.id)["total"] == 3
    assert guest_counts(db.session, event.id)["removed"] == 1
    assert guest_totals_by_event(db.session, [event.id]) == {event.id: 3}
    assert count_recipients(db.session, event.id, Audience.EVERYONE).in_audience == 3
    guest_list.remove_guest(db.session, guests[0], actor=ACTOR, now=now)
    assert sample_guest(db.session, event.id, Audience.EVERYONE).id == guests[2].id
    db.session.rollback()
    listed = client.get(f"/events/{event.id}/guests").get_data(as_text=True)
    assert gone.email not in listed and re.search(r">Removed <strong>1</strong>", listed)
    removed = client.get(f"/events/{event.id}/guests?rsvp=removed", headers=HX)
    assert gone.email in removed.get_data(as_text=True)
    assert "Restore" in removed.get_data(as_text=True)

    again = make_message(event)
    dispatcher.poll()
    assert [d.guest_id for d in deliveries_of(again)] == [guests[0].id, guests[2].id, guests[3].id]
    assert smtp_server.recipients().count(gone.email) == 1  # only the first message


def test_adding_the_address_again_brings_back_the_same_guest_and_sends_nothing_twice(
    client, auth, dispatcher, event, make_guests, make_message, smtp_server, now
):
    """A send interrupted after one guest got it: remove that guest, add them back, resume."""
    first, *others = make_guests(event, 3, RsvpStatus.ATTENDING)
    message = make_message(event)
    recipients.materialize(db.session, message, now)
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.message_id == message.id, Delivery.guest_id == first.id)
        .values(status=DeliveryStatus.SENT, attempts=1, sent_at=now)
    )
    db.session.commit()
    set_status(message, MessageStatus.SENDING)  # its worker died: nobody holds it
    remove(first, now)

    auth.login()
    response = client.post(
        f"/events/{event.id}/guests",
        data={"name": "First Again", "email": first.email.upper(), "rsvp_status": "attending"},
        follow_redirects=True,
    )
    assert "is back on the guest list, with their history" in response.get_data(as_text=True)
    db.session.expire_all()
    back = db.session.scalars(sa.select(Guest).where(Guest.event_id == event.id)).all()
    assert len(back) == 3
    restored = db.session.get(Guest, first.id)
    assert (restored.removed_at, restored.name) == (None, "First Again")

    dispatcher.poll()  # takes the message over and resumes it
    assert sorted(smtp_server.recipients()) == sorted(g.email for g in others)
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    assert Counter(d.status for d in deliveries_of(message)) == {DeliveryStatus.SENT: 3}


def test_a_guest_removed_while_the_batch_sends_is_skipped_and_the_totals_equal_the_rows(
    app, dispatcher, event, make_guests, make_message, smtp_server, now
):
    guests = make_guests(event, 6, RsvpStatus.ATTENDING)
    last = guests[-1]
    last_id = last.id
    message = make_message(event)
    engine = db.engine
    recorded = smtp_server.handler.handle_DATA

    async def remove_the_last_guest_at_the_first_mail(server, session, envelope):
        if not smtp_server.received:  # the first chunk is on the wire; the last is not claimed
            with Session(engine) as other:
                guest_list.remove_guest(other, other.get(Guest, last_id), actor=ACTOR, now=now)
                other.commit()
        return await recorded(server, session, envelope)

    smtp_server.handler.handle_DATA = remove_the_last_guest_at_the_first_mail
    dispatcher.poll()

    [batch] = batches_of(message)
    entries = entries_of(batch)
    assert batch.status is BatchStatus.COMPLETED
    assert len(entries) == batch.total == batch.sent + batch.failed + batch.skipped == 6
    assert (batch.sent, batch.skipped) == (5, 1)
    [skip] = [e for e in entries if e.outcome is Outcome.SKIPPED]
    assert skip.reason == "removed from the guest list"
    assert last.email not in smtp_server.recipients()
    kept = next(d for d in deliveries_of(message) if d.guest_id == last.id)
    assert (kept.status, kept.name, kept.email) == (DeliveryStatus.SKIPPED, last.name, last.email)


def test_the_removed_list_restores_a_guest_and_refuses_to_edit_them(
    client, auth, event, make_guests, now
):
    guest = make_guests(event, 2)[0]
    remove(guest, now)
    auth.login()
    assert client.get(f"/events/{event.id}/guests/{guest.id}/edit").status_code == 404
    again = client.post(f"/events/{event.id}/guests/{guest.id}/remove", follow_redirects=True)
    assert "was already removed" in again.get_data(as_text=True)
    empty = client.get(f"/events/{event.id}/guests?rsvp=removed&q=nobody").get_data(as_text=True)
    assert "No guests match" in empty

    response = client.post(f"/events/{event.id}/guests/{guest.id}/restore")
    assert response.status_code == 302 and response.location.endswith("rsvp=removed")
    db.session.expire_all()
    assert db.session.get(Guest, guest.id).removed_at is None
    assert guest_counts(db.session, event.id)["total"] == 2
    none_left = client.get(f"/events/{event.id}/guests?rsvp=removed").get_data(as_text=True)
    assert "No guest has been removed from the list" in none_left


def test_a_removed_address_cannot_be_taken_by_another_guest(client, auth, event, make_guests, now):
    gone, other = make_guests(event, 2)
    remove(gone, now)
    auth.login()
    response = client.post(
        f"/events/{event.id}/guests/{other.id}/edit",
        data={"name": other.name, "email": gone.email, "rsvp_status": "pending"},
    )
    assert response.status_code == 400
    assert "who was removed from the guest list; restore them instead" in response.get_data(
        as_text=True
    )


def test_a_csv_import_restores_removed_guests_with_their_id(client, auth, event, make_guests, now):
    gone, stays = make_guests(event, 2)
    remove(gone, now)
    auth.login()
    csv = f"name,email\n{gone.name},{gone.email}\n{stays.name},{stays.email}\nNew,new@example.org\n"
    preview = upload_csv(client, event, csv).get_data(as_text=True)
    assert re.search(r'id="count-restored">1<', preview)
    assert "Import 2 guests" in preview  # the restored one and the new one
    token = re.search(r'name="token"[^>]*value="([^"]*)"', preview).group(1)
    done = client.post(
        f"/events/{event.id}/guests/import/confirm", data={"token": token}, follow_redirects=True
    )
    assert "1 created, 1 restored, 0 updated, 1 unchanged, 0 rejected" in done.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert db.session.get(Guest, gone.id).removed_at is None
    assert guest_counts(db.session, event.id)["total"] == 3


def test_the_rsvp_page_of_a_removed_guest_is_gone_but_unsubscribe_still_works(
    client, event, make_guests, now
):
    guest = make_guests(event, 1)[0]
    remove(guest, now + timedelta(seconds=1))
    assert client.get(f"/r/{guest.token}").status_code == 404
    assert client.post(f"/u/{guest.token}").status_code == 200
    db.session.expire_all()
    assert db.session.get(Guest, guest.id).unsubscribed
