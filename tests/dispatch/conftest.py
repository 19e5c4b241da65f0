from __future__ import annotations

import pytest

from tests.helpers import smtp_env


@pytest.fixture
def app_env(app_env, smtp_server):
    """Dispatch tests send through a real SMTP server on loopback."""
    return {**app_env, **smtp_env(smtp_server)}
