from __future__ import annotations

from flask import Request, g
from flask_login import LoginManager

from dashboard.auth.models import User
from dashboard.auth.services import token_for
from dashboard.db_types import utcnow
from dashboard.extensions import db

#: ``flask.g`` attribute: the name of the API token the request came with, for the audit log.
TOKEN_NAME = "api_token_name"


def register(login_manager: LoginManager) -> None:
    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None

    @login_manager.request_loader
    def load_user_from_bearer(request: Request) -> User | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not request.path.startswith("/api/"):
            return None
        token = token_for(db.session, header.removeprefix("Bearer ").strip(), utcnow())
        if token is None:
            return None
        setattr(g, TOKEN_NAME, token.name or f"#{token.id}")
        user = token.user
        db.session.commit()  # last_used_at
        return user
