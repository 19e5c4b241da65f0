"""Signing in: the login form follows only a local ``next``."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/events/new?from=login", "/events/new?from=login"),
        ("/\\evil.example", "/"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("/%09/evil.example", "/%09/evil.example"),  # percent-encoded: a path on this site
    ],
)
def test_login_follows_only_a_local_next(client, owner, next_url, landing):
    response = client.post(
        "/login",
        query_string={"next": next_url},
        data={"email": owner.email, "password": "correct horse battery"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == landing
