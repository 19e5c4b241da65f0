"""Fixtures of the security tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _user_per_request(request: pytest.FixtureRequest) -> None:
    """Each request signs in from its own cookies (see the root conftest); tests without
    an app (configuration checks) need no database."""
    if "app" in request.fixturenames:
        request.getfixturevalue("user_loaded_per_request")
