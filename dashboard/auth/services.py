"""Users, sign-ins and API tokens. Plain functions over a session; the caller commits."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard.auth import models
from dashboard.auth.models import ApiToken, LoginSession, User


class AuthError(ValueError):
    """A user-facing problem (duplicate user, unknown e-mail, weak password)."""


MIN_PASSWORD_LENGTH = 8


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalize_email(email)))


def create_user(
    session: Session, email: str, password: str, *, name: str = "", is_admin: bool = False
) -> User:
    email = normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise AuthError(f"{email!r} is not an e-mail address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if find_user(session, email) is not None:
        raise AuthError(f"a user with e-mail {email} already exists")
    user = User(email=email, name=name.strip(), is_admin=is_admin)
    user.set_password(password)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user whose e-mail and password these are. An unknown e-mail costs the same
    password hash as a known one, so the time of the answer does not tell which it was."""
    user = find_user(session, email)
    if user is None:
        check_password_hash(_stand_in_hash(models.PASSWORD_METHOD), password)
        return None
    return user if user.check_password(password) else None


@cache
def _stand_in_hash(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def change_password(session: Session, user: User, password: str) -> None:
    """Set a new password and end every sign-in of the user (a copied cookie dies with it)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    user.set_password(password)
    end_all_logins(session, user)


# --- sign-ins ----------------------------------------------------------------------------

#: How long a sign-in without "Keep me signed in" lasts.
SIGN_IN_FOR = timedelta(hours=12)
LOGIN_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{40,64}$")


def start_login(
    session: Session, user: User, *, remember: bool, now: datetime, remember_for: timedelta
) -> str:
    """Record a new sign-in of ``user`` and return its token (for Flask-Login's cookies)."""
    session.execute(sa.delete(LoginSession).where(LoginSession.expires_at <= now))
    raw = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            user_id=user.id,
            token_hash=LoginSession.hash(raw),
            remember=remember,
            created_at=now,
            expires_at=now + (remember_for if remember else SIGN_IN_FOR),
        )
    )
    session.flush()
    user.login_token = raw  # type: ignore[attr-defined]
    return raw


def user_for_login(session: Session, raw: str, now: datetime) -> User | None:
    """The user of a sign-in that has not ended or expired."""
    if not LOGIN_TOKEN_RE.match(raw or ""):
        return None  # not one of ours (an id from before sign-ins were kept): sign in again
    user = session.scalar(
        sa.select(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(LoginSession.token_hash == LoginSession.hash(raw), LoginSession.expires_at > now)
    )
    if user is not None:
        user.login_token = raw  # type: ignore[attr-defined]
    return user


def end_login(session: Session, raw: str) -> None:
    session.execute(
        sa.delete(LoginSession).where(LoginSession.token_hash == LoginSession.hash(raw))
    )


def end_all_logins(session: Session, user: User) -> None:
    session.execute(sa.delete(LoginSession).where(LoginSession.user_id == user.id))


def create_token(session: Session, user: User, name: str = "") -> str:
    """Store the hash of a fresh token and return the token itself (shown once)."""
    raw = ApiToken.generate()
    session.add(ApiToken(user=user, name=name, token_hash=ApiToken.hash(raw)))
    session.flush()
    return raw


def user_for_token(session: Session, raw: str, now: datetime) -> User | None:
    token = token_for(session, raw, now)
    return token.user if token is not None else None


def token_for(session: Session, raw: str, now: datetime) -> ApiToken | None:
    """The token ``raw`` stands for (its last use noted), or None."""
    token = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(raw)))
    if token is not None:
        token.last_used_at = now
    return token


def generate_password() -> str:
    return secrets.token_urlsafe(12)
