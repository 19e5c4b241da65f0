"""Who did it: the actor of a change, and the one function that writes it to the audit log.

Services take an ``Actor`` and call ``record`` in the caller's transaction, so a change
and its audit entry are committed together or not at all.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from dashboard.audit.models import AuditEntry

if TYPE_CHECKING:
    from dashboard.auth.models import User


@dataclass(frozen=True)
class Actor:
    """Who acts: ``label`` in words, and the user behind it when there is one."""

    label: str
    user_id: int | None = None

    @classmethod
    def of(cls, user: User | None, token_name: str | None = None) -> Actor:
        """A signed-in user, or an API token's user and the token's name."""
        if user is None:
            return SCHEDULER
        label = f"{user.email} (token {token_name})" if token_name else user.email
        return cls(label, user.id)

    @classmethod
    def cli(cls, command: str, user: User | None = None) -> Actor:
        """A CLI command: ``--as EMAIL`` names the user, else the operating-system user."""
        if user is not None:
            return cls(f"cli:{command} as {user.email}", user.id)
        return cls(f"cli:{command} ({_os_user()})")


SCHEDULER = Actor("scheduler")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    now: datetime,
    event_id: int | None = None,
    message_id: int | None = None,
    batch_id: int | None = None,
    guest_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry in the caller's transaction."""
    entry = AuditEntry(
        at=now,
        actor=actor.label,
        actor_user_id=actor.user_id,
        action=action,
        event_id=event_id,
        message_id=message_id,
        batch_id=batch_id,
        guest_id=guest_id,
        details=details or {},
    )
    session.add(entry)
    return entry
