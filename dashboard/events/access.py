"""Who may see or change an event. Invisible events answer 404, never 403 (no id probing)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from dashboard.auth.models import User
from dashboard.events.models import Collaborator, Event, Role


def role_for(session: Session, user: User, event_id: int) -> Role | None:
    if user.is_admin:
        return Role.OWNER
    role = session.scalar(
        sa.select(Collaborator.role).where(
            Collaborator.event_id == event_id, Collaborator.user_id == user.id
        )
    )
    return Role(role) if role is not None else None


def get_event_for(
    session: Session, user: User, event_id: int, minimum: Role = Role.VIEWER
) -> Event:
    """The event if ``user`` may see it with at least ``minimum``; 404 if invisible, 403 if too weak."""
    event = session.get(Event, event_id)
    role = role_for(session, user, event_id) if event is not None else None
    if event is None or role is None:
        raise NotFound("No such event.")
    if not role.at_least(minimum):
        raise Forbidden(f"You need the {minimum.value} role on this event to do that.")
    return event


def visible_events(user: User) -> sa.Select[tuple[Event]]:
    stmt = sa.select(Event)
    if not user.is_admin:
        stmt = stmt.join(Collaborator, Collaborator.event_id == Event.id).where(
            Collaborator.user_id == user.id
        )
    return stmt
