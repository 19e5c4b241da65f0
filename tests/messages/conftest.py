"""Fixtures for the Communications page and the messages API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.auth.models import User
from dashboard.auth.services import create_token
from dashboard.events.models import Collaborator, Event, Guest, RsvpStatus
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind, MessageStatus
from dashboard.messages.services import create_message


@pytest.fixture
def event(make_event, now: datetime) -> Event:
    """Thirty days ahead in Berlin, so it has all four auto-reminders."""
    return make_event(starts_at=now + timedelta(days=30))


@pytest.fixture
def add_collaborator(app: Flask, make_user):
    def factory(event: Event, role: str, email: str | None = None) -> User:
        user = make_user(email)
        db.session.add(Collaborator(event_id=event.id, user_id=user.id, role=role))
        db.session.commit()
        return user

    return factory


@pytest.fixture
def editor(event: Event, add_collaborator) -> User:
    return add_collaborator(event, "editor", "editor@example.com")


@pytest.fixture
def viewer(event: Event, add_collaborator) -> User:
    return add_collaborator(event, "viewer", "viewer@example.com")


@pytest.fixture
def stranger(make_user) -> User:
    """A host of nothing we use: every event of ``owner`` is invisible to them."""
    return make_user("stranger@example.com")


@dataclass
class GuestMix:
    attending: int = 3
    pending: int = 2
    declined: int = 1
    maybe: int = 4
    unsubscribed_attending: int = 1


@pytest.fixture
def guest_mix(event: Event, make_guests) -> GuestMix:
    """3 attending, 2 pending, 1 declined, 4 maybe, plus 1 unsubscribed attending guest."""
    mix = GuestMix()
    make_guests(event, mix.attending, RsvpStatus.ATTENDING, prefix="att")
    make_guests(event, mix.pending, RsvpStatus.PENDING, prefix="pen")
    make_guests(event, mix.declined, RsvpStatus.DECLINED, prefix="dec")
    make_guests(event, mix.maybe, RsvpStatus.MAYBE, prefix="may")
    make_guests(
        event, mix.unsubscribed_attending, RsvpStatus.ATTENDING, prefix="uns", unsubscribed=True
    )
    return mix


@pytest.fixture
def add_guest_row(app: Flask):
    """Insert a guest row as-is (e.g. a legacy import with an unusable address)."""

    def factory(event: Event, name: str, email: str, status: str = "attending") -> Guest:
        guest = Guest(
            event_id=event.id, name=name, email=email, email_key=email.lower(), rsvp_status=status
        )
        db.session.add(guest)
        db.session.commit()
        return guest

    return factory


@pytest.fixture
def make_message(app: Flask, owner: User, now: datetime):
    def factory(
        event: Event,
        *,
        subject: str = "Hello {{guest_name}}",
        body: str = "See you at {{venue}}.",
        audience: str = "everyone",
        mode: str = "draft",
        send_at: datetime | None = None,
        status: MessageStatus | None = None,
    ) -> Message:
        message = create_message(
            db.session,
            event,
            owner,
            audience=audience,
            channel="email",
            subject=subject,
            body=body,
            mode=mode,
            send_at=send_at,
            now=now,
        )
        if status is not None:  # as if dispatch (or the scheduler) had moved it on
            message.status = status
        db.session.commit()
        return message

    return factory


def set_status(message: Message, status: MessageStatus) -> None:
    """Change the row behind the session's back, like another process would."""
    with db.engine.begin() as conn:
        conn.execute(
            Message.__table__.update()
            .where(Message.__table__.c.id == message.id)
            .values(status=status.value)
        )


def reminder_kinds(event: Event) -> list[MessageKind]:
    return [
        m.kind
        for m in db.session.scalars(
            db.select(Message)
            .where(Message.event_id == event.id, Message.kind != MessageKind.CUSTOM)
            .order_by(Message.send_at)
        )
    ]


@pytest.fixture
def bearer(app: Flask):
    """``bearer(user)`` -> headers carrying a fresh API token of ``user``."""

    def factory(user: User) -> dict[str, str]:
        raw = create_token(db.session, user, "tests")
        db.session.commit()
        return {"Authorization": f"Bearer {raw}"}

    return factory


@pytest.fixture
def htmx() -> dict[str, str]:
    return {"HX-Request": "true"}


def login_session(client: FlaskClient, user: User) -> None:
    """Sign in without the login form (for tests that turn CSRF on)."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
