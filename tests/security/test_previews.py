"""Previews never show a guest's personal link: a viewer could answer or unsubscribe for them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.events.models import Guest, RsvpStatus
from dashboard.extensions import db

LINKS = "RSVP: {{rsvp_link}} Stop: {{unsubscribe_link}}"


def _tokens(event) -> list[str]:
    return list(db.session.scalars(sa.select(Guest.token).where(Guest.event_id == event.id)))


def test_the_compose_preview_shows_inert_links(client, auth, event, viewer, make_guests):
    make_guests(event, 3)
    auth.login(viewer)
    text = client.post(
        f"/events/{event.id}/communications/preview",
        data={"audience": "everyone", "subject": "Hi {{guest_name}}", "body": LINKS},
    ).get_data(as_text=True)
    assert "RSVP: http://dashboard.test/r/preview Stop: http://dashboard.test/u/preview" in text
    assert not [token for token in _tokens(event) if token in text]


def test_the_message_page_sample_shows_inert_links(
    client, auth, event, viewer, make_guests, make_message
):
    make_guests(event, 3)
    message = make_message(event, body=LINKS, due=False)
    auth.login(viewer)
    text = client.get(f"/events/{event.id}/messages/{message.id}").get_data(as_text=True)
    assert "http://dashboard.test/u/preview" in text
    assert not [token for token in _tokens(event) if token in text]


@pytest.mark.parametrize("path", ["/r/preview", "/u/preview"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_preview_links_lead_to_a_page_that_changes_nothing(
    client, event, make_guests, path, method
):
    make_guests(event, 2)
    response = client.open(path, method=method, data={"rsvp_status": "attending"})
    assert response.status_code == 200
    assert "This is a preview link" in response.get_data(as_text=True)
    db.session.expire_all()
    guests = db.session.scalars(sa.select(Guest).where(Guest.event_id == event.id)).all()
    assert all(g.rsvp_status is RsvpStatus.PENDING and not g.unsubscribed for g in guests)
