"""Signing in and out: sign-ins live on the server, so a copied cookie dies with them."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from dashboard import create_app
from dashboard.auth.models import LoginSession
from dashboard.auth.services import change_password
from dashboard.extensions import db
from tests.conftest import PASSWORD

PRIVATE = "/account/tokens"


def _signed_in(client: FlaskClient) -> bool:
    response = client.get(PRIVATE)
    assert response.status_code in (200, 302)
    return response.status_code == 200


def _login(client: FlaskClient, email: str = "owner@example.com", remember: bool = False):
    data = {"email": email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def _cookie(client: FlaskClient, name: str) -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def _browser_with(app: Flask, **cookies: str) -> FlaskClient:
    other = app.test_client()
    for name, value in cookies.items():
        other.set_cookie(name, value)
    return other


def test_wrong_password_is_a_form_error(client, owner):
    response = client.post("/login", data={"email": owner.email, "password": "not it"})
    assert response.status_code == 200
    assert "Wrong e-mail or password." in response.get_data(as_text=True)
    assert not _signed_in(client)


def test_sign_in_and_out(client, owner):
    _login(client)
    assert _signed_in(client)
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "You are signed out." in client.get("/login").get_data(as_text=True)
    assert not _signed_in(client)


def test_a_signed_in_user_visiting_login_goes_to_their_events(client, owner):
    _login(client)
    response = client.get("/login")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_session_cookie_replayed_after_logout_is_refused(app, client, owner):
    _login(client)
    stolen = _cookie(client, "session")
    assert _signed_in(_browser_with(app, session=stolen))
    client.post("/logout")
    assert not _signed_in(_browser_with(app, session=stolen))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginSession)) == 0


def test_remember_me_is_a_new_random_token_per_login(app, client, owner):
    _login(client, remember=True)
    first = _cookie(client, "remember_token")
    client.post("/logout")
    _login(client, remember=True)
    second = _cookie(client, "remember_token")
    assert first != second
    assert str(owner.id) not in (first.split("|")[0], second.split("|")[0])
    # The server keeps only a hash of what the cookie carries.
    stored = db.session.scalars(sa.select(LoginSession.token_hash)).all()
    assert second.split("|")[0] not in stored
    assert LoginSession.hash(second.split("|")[0]) in stored


def test_remember_me_signs_a_new_browser_in_until_logout(app, client, owner):
    _login(client, remember=True)
    remember = _cookie(client, "remember_token")
    browser = _browser_with(app, remember_token=remember)
    assert _signed_in(browser)
    client.post("/logout")
    assert not _signed_in(_browser_with(app, remember_token=remember))


def test_without_remember_me_there_is_no_remember_cookie(client, owner):
    _login(client)
    assert client.get_cookie("remember_token") is None


def test_a_password_change_ends_every_sign_in(app, client, owner):
    _login(client, remember=True)
    remember, session = _cookie(client, "remember_token"), _cookie(client, "session")
    change_password(db.session, owner, "a brand new password")
    db.session.commit()
    assert not _signed_in(_browser_with(app, remember_token=remember))
    assert not _signed_in(_browser_with(app, session=session))
    assert not _signed_in(client)


def test_an_old_session_holding_a_user_id_is_signed_out(client, owner):
    """Sessions from before sign-ins were kept carry the bare id; they sign in again."""
    with client.session_transaction() as session:
        session["_user_id"] = str(owner.id)
    assert not _signed_in(client)


def test_cookies_are_secure_httponly_and_samesite_with_https(app_env, owner):
    app = create_app(
        overrides={"WTF_CSRF_ENABLED": False},
        env={**app_env, "PUBLIC_BASE_URL": "https://events.example.org"},
    )
    response = app.test_client().post(
        "/login", data={"email": owner.email, "password": PASSWORD, "remember": "y"}
    )
    cookies = {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}
    for name in ("session", "remember_token"):
        attributes = [part.strip().lower() for part in cookies[name].split(";")]
        assert "secure" in attributes and "httponly" in attributes, cookies[name]
        assert "samesite=lax" in attributes, cookies[name]
