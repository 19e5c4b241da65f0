"""Fixtures of the sign-in tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _user_per_request(user_loaded_per_request) -> None:
    """Each request signs in from its own cookies (see the root conftest)."""
