"""Fixtures for the Communications page: guest rows as-is, reminders, htmx requests."""

from __future__ import annotations

import pytest
from flask import Flask

from dashboard.events.models import Event, Guest
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind


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
def htmx() -> dict[str, str]:
    return {"HX-Request": "true"}
