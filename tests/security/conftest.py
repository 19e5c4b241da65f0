"""Fixtures of the security tests."""

from __future__ import annotations

import pytest
from flask import Flask, g


@pytest.fixture(autouse=True)
def _user_loaded_per_request(app: Flask) -> None:
    """The ``app`` fixture keeps one app context, and with it one ``g``, across the test
    client's requests, so Flask-Login would keep the first request's user. A real server
    loads the user from each request's cookies; so do these tests."""

    @app.before_request
    def _forget_the_user() -> None:
        g.pop("_login_user", None)
