"""The actor of the current request: the signed-in user, or an API token's user and name."""

from __future__ import annotations

from flask import g
from flask_login import current_user

from dashboard.audit.services import Actor
from dashboard.auth.loaders import TOKEN_NAME


def current_actor() -> Actor:
    """Who the request acts as (routes hand it to services); only for signed-in requests."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if not user.is_authenticated:
        raise RuntimeError("current_actor() needs a signed-in user")
    return Actor.of(user, g.get(TOKEN_NAME))
