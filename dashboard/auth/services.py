"""Users and API tokens. Plain functions over a session; the caller commits."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.auth.models import ApiToken, User


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
    user = find_user(session, email)
    if user is None or not user.check_password(password):
        return None
    return user


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
