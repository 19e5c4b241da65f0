"""Guest-facing pages: RSVP and unsubscribe by personal token, no account needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.events.models import RsvpStatus
from dashboard.events.public import rsvp_url, unsubscribe_url
from dashboard.extensions import db


@pytest.fixture
def guest(make_event, make_guests):
    event = make_event(
        "Summer Gala",
        starts_at=datetime(2031, 7, 15, 16, 0, tzinfo=UTC),
        timezone="Europe/Berlin",
        venue="Grand Hall",
    )
    return make_guests(event, 1)[0]


def test_links_keep_their_shape(guest):
    assert rsvp_url("http://x.test/", guest.token) == f"http://x.test/r/{guest.token}"
    assert unsubscribe_url("http://x.test", guest.token) == f"http://x.test/u/{guest.token}"


def test_rsvp_page_shows_the_event_in_its_zone(client, guest):
    response = client.get(f"/r/{guest.token}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Summer Gala" in page and "Grand Hall" in page
    assert "Tue 15 Jul 2031, 18:00 CEST" in page
    assert "Sign out" not in page and "API tokens" not in page
    for value in ("attending", "maybe", "declined"):
        assert f'value="{value}"' in page
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("answer", ["attending", "maybe", "declined"])
def test_guest_changes_their_answer(client, guest, answer):
    response = client.post(f"/r/{guest.token}", data={"rsvp_status": answer})
    assert response.status_code == 200
    assert "Thank you" in response.get_data(as_text=True)
    db.session.expire_all()
    assert guest.rsvp_status is RsvpStatus(answer)


@pytest.mark.parametrize("answer", ["", "pending", "<b>"])
def test_bad_answer_is_a_form_error(client, guest, answer):
    response = client.post(f"/r/{guest.token}", data={"rsvp_status": answer})
    assert response.status_code == 400
    db.session.expire_all()
    assert guest.rsvp_status is RsvpStatus.PENDING


def test_unsubscribe_asks_then_records(client, guest):
    page = client.get(f"/u/{guest.token}")
    assert page.status_code == 200
    assert '<button type="submit">Unsubscribe</button>' in page.get_data(as_text=True)
    db.session.expire_all()
    assert guest.unsubscribed_at is None  # GET changes nothing
    done = client.post(f"/u/{guest.token}")
    assert done.status_code == 200
    assert "You are unsubscribed" in done.get_data(as_text=True)
    db.session.expire_all()
    first = guest.unsubscribed_at
    assert first is not None
    client.post(f"/u/{guest.token}")
    db.session.expire_all()
    assert guest.unsubscribed_at == first  # idempotent: the first time stays
    assert "You are unsubscribed" in client.get(f"/u/{guest.token}").get_data(as_text=True)


def test_one_click_unsubscribe(client, guest):
    response = client.post(
        f"/u/{guest.token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert guest.unsubscribed


@pytest.mark.parametrize("path", ["/r/", "/u/"])
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("token", ["nope", "x" * 300, "%00"])
def test_unknown_token_gets_a_friendly_404(client, guest, path, method, token):
    response = client.open(path + token, method=method, data={"rsvp_status": "attending"})
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "This link is not valid" in page
    assert "<html" in page
    db.session.expire_all()
    assert guest.rsvp_status is RsvpStatus.PENDING and not guest.unsubscribed
