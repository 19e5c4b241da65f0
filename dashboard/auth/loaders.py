from __future__ import annotations

from flask import Request
from flask_login import LoginManager

from dashboard.auth.models import User
from dashboard.auth.services import user_for_token
from dashboard.db_types import utcnow
from dashboard.extensions import db


def register(login_manager: LoginManager) -> None:
    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None

    @login_manager.request_loader
    def load_user_from_bearer(request: Request) -> User | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not request.path.startswith("/api/"):
            return None
        user = user_for_token(db.session, header.removeprefix("Bearer ").strip(), utcnow())
        if user is not None:
            db.session.commit()  # last_used_at
        return user
