"""``flask create-user``, ``create-token`` and ``set-password``, through Flask's CLI runner."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.auth.models import ApiToken, LoginSession, User
from dashboard.auth.services import find_user
from dashboard.extensions import db


def test_create_user_with_the_password_from_stdin(runner, client):
    result = runner.invoke(
        args=["create-user", " Ada@Example.org ", "--admin", "--name", "Ada"],
        input="a long password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin ada@example.org" in result.output
    user = find_user(db.session, "ada@example.org")
    assert user.is_admin and user.name == "Ada" and user.check_password("a long password")
    signed_in = client.post(
        "/login", data={"email": "ada@example.org", "password": "a long password"}
    )
    assert signed_in.status_code == 302


def test_create_user_refuses_duplicates_and_short_passwords(runner, owner):
    again = runner.invoke(args=["create-user", owner.email], input="a long password\n")
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(args=["create-user", "new@example.com"], input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_create_token_prints_a_working_token_alone_on_the_last_line(runner, client, owner, event):
    result = runner.invoke(args=["create-token", owner.email, "--name", "ci"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip().splitlines()[-1]
    assert raw.startswith("edt_")
    [token] = db.session.scalars(sa.select(ApiToken)).all()
    assert token.name == "ci" and token.token_hash == ApiToken.hash(raw)
    answer = client.get(f"/api/events/{event.id}", headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code == 200


def test_create_token_for_an_unknown_user_fails(runner):
    result = runner.invoke(args=["create-token", "nobody@example.com"])
    assert result.exit_code == 1 and "no user with e-mail nobody@example.com" in result.output


def test_set_password_ends_every_sign_in(runner, client, auth, owner):
    auth.login(owner)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginSession)) == 1
    result = runner.invoke(args=["set-password", owner.email], input="another password\n")
    assert result.exit_code == 0, result.output
    assert "every sign-in of theirs has ended" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginSession)) == 0
    assert client.get("/account/tokens").status_code == 302
    db.session.expire_all()
    assert find_user(db.session, owner.email).check_password("another password")
    short = runner.invoke(args=["set-password", owner.email], input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
