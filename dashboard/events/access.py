"""Who may see or change an event. Invisible events answer 404, never 403 (no id probing)."""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from dashboard.auth.models import User
from dashboard.events.models import Collaborator, Event, Role


class EventAccess(NamedTuple):
    """An event and the role the user holds on it (``event, role = access`` unpacks it)."""

    event: Event
    role: Role

    @property
    def can_edit(self) -> bool:
        return self.role.at_least(Role.EDITOR)

    @property
    def can_manage(self) -> bool:
        return self.role.at_least(Role.OWNER)

    def context(self) -> dict[str, Any]:
        """What every event page's template reads: the event, the role and what it allows."""
        return {
            "event": self.event,
            "role": self.role,
            "can_edit": self.can_edit,
            "can_manage": self.can_manage,
        }


def role_for(session: Session, user: User, event_id: int) -> Role | None:
    if user.is_admin:
        return Role.OWNER
    role = session.scalar(
        sa.select(Collaborator.role).where(
            Collaborator.event_id == event_id, Collaborator.user_id == user.id
        )
    )
    return Role(role) if role is not None else None


def event_access(
    session: Session, user: User, event_id: int, minimum: Role = Role.VIEWER
) -> EventAccess:
    """The event and the user's role on it, read in one query.

    404 if the user may not see the event (or it does not exist), 403 if the role is
    weaker than ``minimum``. Site admins act as owners of every event.
    """
    if user.is_admin:
        event = session.get(Event, event_id)
        role: Role | None = Role.OWNER if event is not None else None
    else:
        row = session.execute(
            sa.select(Event, Collaborator.role)
            .join(Collaborator, Collaborator.event_id == Event.id)
            .where(Event.id == event_id, Collaborator.user_id == user.id)
        ).first()
        event, role = (row[0], Role(row[1])) if row is not None else (None, None)
    if event is None or role is None:
        raise NotFound("No such event.")
    if not role.at_least(minimum):
        raise Forbidden(f"You need the {minimum.value} role on this event to do that.")
    return EventAccess(event, role)


def get_event_for(
    session: Session, user: User, event_id: int, minimum: Role = Role.VIEWER
) -> Event:
    """The event if ``user`` may see it with at least ``minimum``; 404 if invisible, 403 if too weak."""
    return event_access(session, user, event_id, minimum).event


def visible_events(user: User) -> sa.Select[tuple[Event]]:
    stmt = sa.select(Event)
    if not user.is_admin:
        stmt = stmt.join(Collaborator, Collaborator.event_id == Event.id).where(
            Collaborator.user_id == user.id
        )
    return stmt
