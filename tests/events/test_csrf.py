"""With CSRF on (as in production): forms without a token are refused, one-click unsubscribe is not."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from dashboard.events.models import Guest
from dashboard.extensions import db
from tests.helpers import login_session


@pytest.fixture
def app_overrides():
    return {}


def token_from(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def guest_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Guest))


def test_csrf_is_on(app):
    assert app.config.get("WTF_CSRF_ENABLED", True)


@pytest.mark.parametrize(
    "url",
    [
        "/events/new",
        "/events/{event}/edit",
        "/events/{event}/guests",
        "/events/{event}/collaborators",
        "/events/{event}/guests/import",
        "/events/{event}/guests/import/confirm",
    ],
)
def test_post_without_token_is_refused(client, event, owner, url):
    login_session(client, owner)
    response = client.post(url.format(event=event.id), data={"name": "X", "email": "x@example.org"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert guest_count() == 0


def test_post_with_the_form_token_or_htmx_header_works(client, event, owner):
    login_session(client, owner)
    url = f"/events/{event.id}/guests"
    token = token_from(client.get(url).get_data(as_text=True))
    ok = client.post(url, data={"csrf_token": token, "name": "A", "email": "a@example.org"})
    assert ok.status_code == 302
    via_header = client.post(
        url, data={"name": "B", "email": "b@example.org"}, headers={"X-CSRFToken": token}
    )
    assert via_header.status_code == 302
    assert guest_count() == 2


def test_rsvp_needs_a_token(client, event, make_guests):
    guest = make_guests(event, 1)[0]
    assert client.post(f"/r/{guest.token}", data={"rsvp_status": "attending"}).status_code == 400
    token = token_from(client.get(f"/r/{guest.token}").get_data(as_text=True))
    response = client.post(
        f"/r/{guest.token}", data={"rsvp_status": "attending", "csrf_token": token}
    )
    assert response.status_code == 200


def test_one_click_unsubscribe_needs_no_token(client, event, make_guests):
    guest = make_guests(event, 1)[0]
    response = client.post(
        f"/u/{guest.token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert guest.unsubscribed
