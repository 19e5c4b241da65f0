"""API tokens: made and revoked on /account/tokens, and a Bearer header alone says who calls."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from dashboard.auth.models import ApiToken
from dashboard.auth.services import create_token
from dashboard.extensions import db
from tests.helpers import login_session


def _tokens_of(user) -> list[ApiToken]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)))


def test_create_a_token_shown_once_and_usable(client, auth, owner, event):
    auth.login(owner)
    page = client.post("/account/tokens", data={"name": "deploy script"}).get_data(as_text=True)
    raw = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    [token] = _tokens_of(owner)
    assert token.name == "deploy script" and token.token_hash == ApiToken.hash(raw)
    assert raw not in client.get("/account/tokens").get_data(as_text=True)  # shown once
    client.post("/logout")
    answer = client.get(f"/api/events/{event.id}", headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code == 200


def test_revoke_own_token_but_not_another_users(client, auth, owner, make_user):
    other = make_user("other@example.com")
    mine, theirs = create_token(db.session, owner, "mine"), create_token(db.session, other, "x")
    db.session.commit()
    [my_token], [their_token] = _tokens_of(owner), _tokens_of(other)
    auth.login(owner)
    refused = client.post(f"/account/tokens/{their_token.id}/revoke")
    assert refused.status_code == 404
    assert [t.id for t in _tokens_of(other)] == [their_token.id]
    done = client.post(f"/account/tokens/{my_token.id}/revoke")
    assert done.status_code == 302 and done.headers["Location"] == "/account/tokens"
    assert _tokens_of(owner) == []
    assert client.get("/api/events", headers={"Authorization": f"Bearer {mine}"}).status_code == 401
    assert theirs  # still valid: nothing of the other user changed


# --- a Bearer header never falls back to the cookie ---------------------------------------


class TestBearerWithACookie:
    @pytest.fixture
    def app_overrides(self):
        return {"WTF_CSRF_ENABLED": True}

    @pytest.mark.parametrize(
        "header", ["Bearer edt_not-a-token", "Bearer ", "bearer edt_nope", "BEARER  edt_x"]
    )
    def test_a_bearer_that_does_not_authenticate_is_401_despite_the_cookie(
        self, client, owner, event, header
    ):
        login_session(client, owner)
        assert client.get(f"/api/events/{event.id}").status_code == 200  # the cookie works
        headers = {"Authorization": header}
        read = client.get(f"/api/events/{event.id}", headers=headers)
        assert read.status_code == 401
        write = client.patch(f"/api/events/{event.id}", json={"name": "Hijacked"}, headers=headers)
        assert write.status_code == 401
        db.session.expire_all()
        assert event.name == "Summer Gala"

    def test_a_valid_bearer_acts_as_its_own_user_not_the_cookies(
        self, client, owner, stranger, event, bearer
    ):
        login_session(client, owner)
        as_stranger = bearer(stranger)
        assert client.get(f"/api/events/{event.id}", headers=as_stranger).status_code == 404
        write = client.patch(f"/api/events/{event.id}", json={"name": "X"}, headers=as_stranger)
        assert write.status_code == 404

    def test_pages_ignore_an_authorization_header(self, client, owner, event):
        login_session(client, owner)
        page = client.get(f"/events/{event.id}", headers={"Authorization": "Bearer edt_nope"})
        assert page.status_code == 200
