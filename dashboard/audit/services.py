"""Who did it: the actor of a change, and the one function that writes it to the audit log.

Services take an ``Actor`` and call ``record`` in the caller's transaction, so a change
and its audit entry are committed together or not at all.
"""

from __future__ import annotations

import enum
import getpass
from collections.abc import Mapping
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

#: A text longer than this (a message body) is kept cut, with the length it had: the log
#: says what changed and who changed it, it is not a second copy of every version.
MAX_TEXT = 2000


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
    """Write one audit entry in the caller's transaction (``details`` made JSON-ready)."""
    entry = AuditEntry(
        at=now,
        actor=actor.label[:300],
        actor_user_id=actor.user_id,
        action=action,
        event_id=event_id,
        message_id=message_id,
        batch_id=batch_id,
        guest_id=guest_id,
        details=plain(details or {}),
    )
    session.add(entry)
    return entry


def plain(value: Any) -> Any:
    """``value`` as JSON: times in ISO 8601, enums and channels by value, long texts cut."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(getattr(value, "name", value))
    if len(text) > MAX_TEXT:
        return f"{text[:MAX_TEXT]}… ({len(text):,} characters)"
    return text


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"old": ..., "new": ...}}`` for each field of ``after`` whose value differs."""
    return {
        name: {"old": before.get(name), "new": value}
        for name, value in after.items()
        if _comparable(before.get(name)) != _comparable(value)
    }


def _comparable(value: Any) -> Any:
    return value if isinstance(value, str) else plain(value)  # a long text is compared whole
