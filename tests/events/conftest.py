"""Fixtures for the events pages: collaborators in each role, CSV uploads, an HTML helper."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.auth.models import User
from dashboard.events.models import Event, Role
from dashboard.events.services import add_collaborator
from dashboard.extensions import db


@pytest.fixture
def event(make_event) -> Event:
    return make_event()


@pytest.fixture
def add_role(app: Flask) -> Callable[[Event, User, Role], None]:
    def factory(event: Event, user: User, role: Role) -> None:
        add_collaborator(db.session, event, user.email, role)
        db.session.commit()

    return factory


@pytest.fixture
def viewer(make_user, event: Event, add_role) -> User:
    user = make_user("viewer@example.com")
    add_role(event, user, Role.VIEWER)
    return user


@pytest.fixture
def editor(make_user, event: Event, add_role) -> User:
    user = make_user("editor@example.com")
    add_role(event, user, Role.EDITOR)
    return user


@pytest.fixture
def stranger(make_user) -> User:
    """A host with no role on ``event``."""
    return make_user("stranger@example.com")


def csv_upload(text: str | bytes, filename: str = "guests.csv") -> dict[str, object]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return {"file": (io.BytesIO(data), filename)}


def upload_csv(client: FlaskClient, event: Event, text: str | bytes):
    return client.post(
        f"/events/{event.id}/guests/import",
        data=csv_upload(text),
        content_type="multipart/form-data",
    )


def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html
    )
    assert match, f"no hidden field {name!r} in the page"
    return match.group(1)
