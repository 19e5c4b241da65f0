"""Who is calling: a sign-in (session or remember-me cookie), or an API token.

On the API an ``Authorization: Bearer`` header alone decides: a token that does not
authenticate leaves the request anonymous (a 401), whatever cookie came with it, because
the API skips the CSRF check for such requests.
"""

from __future__ import annotations

from flask import Request, g, request
from flask_login import LoginManager

from dashboard.auth.models import User
from dashboard.auth.services import token_for, user_for_login
from dashboard.db_types import utcnow
from dashboard.extensions import db

#: ``flask.g`` attribute: the name of the API token the request came with, for the audit log.
TOKEN_NAME = "api_token_name"


def bearer_token(req: Request) -> str | None:
    """The token of an API request's ``Authorization: Bearer`` header ("" when empty), or
    None when the request has no such header or is not an API request."""
    if not req.path.startswith("/api/"):
        return None
    scheme, _, token = req.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _bearer_user(token: str) -> User | None:
    """The token's user (once per request: Flask-Login may ask twice); its name is kept in
    ``g`` for the audit log."""
    if "_bearer_user" not in g:
        found = token_for(db.session, token, utcnow()) if token else None
        user = None
        if found is not None:
            setattr(g, TOKEN_NAME, found.name or f"#{found.id}")
            user = found.user
            db.session.commit()  # last_used_at
        g._bearer_user = user
    return g._bearer_user


def register(login_manager: LoginManager) -> None:
    @login_manager.user_loader
    def load_user(login_token: str) -> User | None:
        token = bearer_token(request)
        if token is not None:
            return _bearer_user(token)
        return user_for_login(db.session, login_token, utcnow())

    @login_manager.request_loader
    def load_user_from_bearer(req: Request) -> User | None:
        token = bearer_token(req)
        return None if token is None else _bearer_user(token)
