"""The admin views read batches the real dispatcher sent through a real SMTP server; the
stats endpoint is on."""

from __future__ import annotations

import pytest

from tests.helpers import smtp_env

STATS_TOKEN = "stats-token-for-tests-0123456789"


@pytest.fixture
def app_env(app_env, smtp_server):
    """Sends go through a real SMTP server on loopback (as in tests/dispatch)."""
    return {**app_env, **smtp_env(smtp_server), "STATS_TOKEN": STATS_TOKEN}
