"""Events, collaborators and guests. Plain functions over a session; the caller commits."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.message_changes import message_states, record_message_changes, reminders_only
from dashboard.audit.services import Actor, changes, record
from dashboard.auth.models import User
from dashboard.errors import Conflict, ValidationError
from dashboard.events import calendar, sender
from dashboard.events.addresses import MAX_NAME
from dashboard.events.models import Collaborator, Event, Guest, Role, RsvpStatus
from dashboard.messages.reminders import reschedule_reminders, seed_reminders
from dashboard.timeutil import parse_local_datetime, wall_time

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_timezone(name: str) -> str:
    """An IANA zone name; a city alone ("Berlin", "new york") stands for its one zone."""
    name = (name or "").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        matches = _zones_named(name)
        if len(matches) == 1:
            return matches[0]
        hint = f"did you mean {' or '.join(matches[:3])}?" if matches else "e.g. Europe/Berlin"
        raise ValidationError({"timezone": f"{name!r} is not a known time zone ({hint})"}) from None
    return name


def _zones_named(name: str) -> list[str]:
    """The zones whose full name or city part is ``name``, ignoring case, spaces for "_"."""
    wanted = "_".join(name.split()).casefold()
    if not wanted:
        return []
    return [
        zone
        for zone in timezone_choices()
        if zone.casefold() == wanted or zone.rsplit("/", 1)[-1].casefold() == wanted
    ]


def timezone_choices() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


def parse_starts_at(value: str | datetime, timezone: str) -> datetime:
    """ISO 8601 with offset, or naive, read in the event's time zone. Returns UTC."""
    return parse_local_datetime(value, timezone, "starts_at")


def local_wall_time(event: Event) -> datetime:
    """The event's start as a naive wall-clock time in its own zone (what a form shows)."""
    return wall_time(event.starts_at, event.tz)


def _clean_event_fields(name: str, venue: str) -> tuple[str, str]:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "The event needs a name."})
    if len(name) > MAX_NAME:
        raise ValidationError({"name": f"At most {MAX_NAME} characters."})
    venue = (venue or "").strip()
    if len(venue) > 300:
        raise ValidationError({"venue": "At most 300 characters."})
    for field, value in (("name", name), ("venue", venue)):
        if "\n" in value or "\r" in value:
            raise ValidationError({field: "Must be a single line (no line breaks)."})
    return name, venue


def create_event(
    session: Session,
    actor: Actor,
    *,
    name: str,
    starts_at: str | datetime,
    timezone: str,
    venue: str,
    now: datetime,
    owner: User | None = None,
    ends_at: str | datetime | None = None,
    sender_name: str = "",
    reply_to: str = "",
) -> Event:
    """The event, its owner row and its auto-reminders, in the caller's transaction.

    The owner is the acting user, or ``owner`` (a command acting for someone).
    """
    if owner is None and actor.user_id is not None:
        owner = session.get(User, actor.user_id)
    if owner is None:
        raise ValueError("an event needs a user as its owner")
    name, venue = _clean_event_fields(name, venue)
    timezone = valid_timezone(timezone)
    start = parse_starts_at(starts_at, timezone)
    times = calendar.timing(start, ends_at, timezone)
    identity = sender.identity(sender_name, reply_to)
    event = Event(
        name=name,
        starts_at=start,
        ends_at=times.ends_at,
        timezone=timezone,
        venue=venue,
        sender_name=identity.sender_name,
        reply_to=identity.reply_to,
        created_by_id=owner.id,
    )
    session.add(event)
    session.add(Collaborator(event=event, user_id=owner.id, role=Role.OWNER))
    session.flush()
    reminders = seed_reminders(session, event, now, created_by=owner)
    session.flush()
    record(
        session,
        actor,
        "event.create",
        now=now,
        event_id=event.id,
        details={**_event_fields(event), "owner": owner.email, "reminders": len(reminders)},
    )
    for reminder in reminders:
        details = {"kind": reminder.kind, "send_at": reminder.send_at}
        ids = {"event_id": event.id, "message_id": reminder.id}
        record(session, actor, "message.create", now=now, **ids, details=details)
    return event


def _event_fields(event: Event) -> dict[str, Any]:
    return {
        "name": event.name,
        "starts_at": event.starts_at.astimezone(event.tz),
        "timezone": event.timezone,
        "venue": event.venue,
        "ends_at": event.ends_at.astimezone(event.tz) if event.ends_at else None,
        "sender_name": event.sender_name,
        "reply_to": event.reply_to,
    }


def update_event(
    session: Session,
    event: Event,
    *,
    now: datetime,
    actor: Actor,
    name: str | None = None,
    starts_at: str | datetime | None = None,
    timezone: str | None = None,
    venue: str | None = None,
    confirm_past: bool = False,
    ends_at: str | datetime | None = None,
    sender_name: str | None = None,
    reply_to: str | None = None,
) -> Event:
    """Change fields; when the start or zone moves, the reminders not yet sent move too.

    Moving the start into the past needs ``confirm_past`` (its unsent reminders are then
    cancelled). A cancelled or archived event cannot be changed (Conflict).
    """
    if event.closed_reason is not None:
        raise Conflict(event.closed_reason)
    new_name, new_venue = _clean_event_fields(
        name if name is not None else event.name, venue if venue is not None else event.venue
    )
    new_tz = valid_timezone(timezone) if timezone is not None else event.timezone
    new_start = _new_start(event, starts_at, timezone, new_tz)
    times = calendar.timing(new_start, ends_at, new_tz, current=event)
    identity = sender.identity(sender_name, reply_to, current=event)
    moved = new_start != event.starts_at or new_tz != event.timezone
    if moved and new_start <= now and not confirm_past:
        raise ValidationError(
            {"confirm_past": _PAST_TEXT.format(when=wall_time(new_start, ZoneInfo(new_tz)))}
        )
    before = _event_fields(event)
    old_start, old_zone = event.starts_at, event.tz
    event.name, event.venue, event.timezone, event.starts_at = (
        new_name,
        new_venue,
        new_tz,
        new_start,
    )
    times.apply(event)
    identity.apply(event)
    session.flush()
    changed = changes(before, _event_fields(event))
    if changed:
        action = "event.move" if moved else "event.edit"
        record(session, actor, action, now=now, event_id=event.id, details={"changes": changed})
    if moved:
        _move_reminders(session, event, actor, now, old_start, old_zone)
    return event


def _move_reminders(
    session: Session,
    event: Event,
    actor: Actor,
    now: datetime,
    old_start: datetime,
    old_zone: ZoneInfo,
) -> None:
    """The reminders follow the event; each one the move re-timed, cancelled or brought back
    is audited from the difference of before and after."""
    reminders = message_states(session, event.id, reminders_only())
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    reschedule_reminders(
        session, event, now, created_by=user, old_start=old_start, old_zone=old_zone
    )
    session.flush()
    reason = "the event moved"
    record_message_changes(
        session, actor, event.id, reminders, reminders_only(), now=now, reason=reason
    )


def _new_start(
    event: Event, starts_at: str | datetime | None, timezone: str | None, new_tz: str
) -> datetime:
    if starts_at is not None:
        return parse_starts_at(starts_at, new_tz)
    if timezone is not None and new_tz != event.timezone:
        # Same wall-clock time, read in the new zone.
        wall = event.starts_at.astimezone(event.tz).replace(tzinfo=None)
        return parse_starts_at(wall, new_tz)
    return event.starts_at


_PAST_TEXT = (
    "The new start, {when:%a %d %b %Y, %H:%M}, has already passed. Moving the event into the "
    "past cancels its unsent reminders: confirm that this is what you want."
)


# --- collaborators -----------------------------------------------------------------


def add_collaborator(
    session: Session, event: Event, email: str, role: Role | str, *, actor: Actor, now: datetime
) -> Collaborator:
    from dashboard.auth.services import find_user

    try:
        role = Role(role)
    except ValueError:
        raise ValidationError({"role": "Role must be owner, editor or viewer."}) from None
    user = find_user(session, email)
    if user is None:
        raise ValidationError(
            {"email": f"No user with e-mail {email.strip()}; ask an admin to create one."}
        )
    existing = session.scalar(
        sa.select(Collaborator).where(
            Collaborator.event_id == event.id, Collaborator.user_id == user.id
        )
    )
    if existing is not None:
        if existing.role is Role.OWNER and role is not Role.OWNER:
            _ensure_another_owner(session, event, existing)
        _record_role(session, actor, existing, role, now)
        existing.role = role
        return existing
    collaborator = Collaborator(event_id=event.id, user_id=user.id, role=role)
    session.add(collaborator)
    session.flush()
    details = {"email": user.email, "role": role}
    record(session, actor, "collaborator.add", now=now, event_id=event.id, details=details)
    return collaborator


def _record_role(
    session: Session, actor: Actor, collaborator: Collaborator, role: Role, now: datetime
) -> None:
    if collaborator.role is role:
        return
    details = {
        "email": collaborator.user.email,
        "changes": changes({"role": collaborator.role}, {"role": role}),
    }
    event_id = collaborator.event_id
    record(session, actor, "collaborator.role", now=now, event_id=event_id, details=details)


def get_collaborator(session: Session, event: Event, collaborator_id: int) -> Collaborator | None:
    collaborator = session.get(Collaborator, collaborator_id)
    if collaborator is None or collaborator.event_id != event.id:
        return None
    return collaborator


def list_collaborators(session: Session, event: Event) -> list[Collaborator]:
    """Owners first, then editors, then viewers; by e-mail within a role."""
    rank = sa.case({Role.OWNER.value: 0, Role.EDITOR.value: 1}, value=Collaborator.role, else_=2)
    return list(
        session.scalars(
            sa.select(Collaborator)
            .join(User, User.id == Collaborator.user_id)
            .where(Collaborator.event_id == event.id)
            .order_by(rank, User.email)
        )
    )


def set_collaborator_role(
    session: Session,
    event: Event,
    collaborator_id: int,
    role: Role | str,
    *,
    actor: Actor,
    now: datetime,
) -> Collaborator:
    """Change one collaborator's role; the last owner cannot step down."""
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError({"role": "Role must be owner, editor or viewer."}) from None
    collaborator = get_collaborator(session, event, collaborator_id)
    if collaborator is None:
        raise ValidationError("No such collaborator on this event.")
    if collaborator.role is Role.OWNER and role is not Role.OWNER:
        _ensure_another_owner(session, event, collaborator)
    _record_role(session, actor, collaborator, role, now)
    collaborator.role = role
    session.flush()
    return collaborator


def remove_collaborator(
    session: Session, event: Event, collaborator_id: int, *, actor: Actor, now: datetime
) -> None:
    collaborator = get_collaborator(session, event, collaborator_id)
    if collaborator is None:
        raise ValidationError("No such collaborator on this event.")
    if collaborator.role is Role.OWNER:
        _ensure_another_owner(session, event, collaborator)
    details = {"email": collaborator.user.email, "role": collaborator.role}
    session.delete(collaborator)
    session.flush()
    record(session, actor, "collaborator.remove", now=now, event_id=event.id, details=details)


def _ensure_another_owner(session: Session, event: Event, leaving: Collaborator) -> None:
    owners = session.scalar(
        sa.select(sa.func.count()).where(
            Collaborator.event_id == event.id,
            Collaborator.role == Role.OWNER,
            Collaborator.id != leaving.id,
        )
    )
    if not owners:
        raise ValidationError(
            "An event needs at least one owner: make someone else an owner first."
        )


# --- guests --------------------------------------------------------------------------


def set_rsvp(session: Session, guest: Guest, status: str) -> Guest:
    try:
        guest.rsvp_status = RsvpStatus(status)
    except ValueError:
        raise ValidationError({"rsvp_status": "Choose attending, maybe or declined."}) from None
    session.flush()
    return guest


def unsubscribe(session: Session, guest: Guest, now: datetime) -> Guest:
    if guest.unsubscribed_at is None:
        guest.unsubscribed_at = now
        session.flush()
    return guest


def guest_by_token(session: Session, token: str) -> Guest | None:
    if not TOKEN_RE.match(token or ""):
        return None  # not one of ours; no query (and no NUL byte sent to the database)
    return session.scalar(sa.select(Guest).where(Guest.token == token))


def guest_counts(session: Session, event_id: int) -> dict[str, int]:
    """Guests on the list per RSVP status, plus ``total`` and ``unsubscribed``, and how many
    were ``removed``, from one aggregate query."""
    counts = {status.value: 0 for status in RsvpStatus}
    listed = Guest.removed_at.is_(None)
    rows = session.execute(
        sa.select(
            Guest.rsvp_status,
            sa.func.count().filter(listed),
            sa.func.count(Guest.unsubscribed_at).filter(listed),
            sa.func.count().filter(~listed),
        )
        .where(Guest.event_id == event_id)
        .group_by(Guest.rsvp_status)
    ).all()
    unsubscribed = removed = 0
    for status, count, unsub, gone in rows:
        counts[RsvpStatus(status).value] = count
        unsubscribed += unsub
        removed += gone
    counts["total"] = sum(counts[s.value] for s in RsvpStatus)
    counts["unsubscribed"] = unsubscribed
    counts["removed"] = removed
    return counts


def guest_totals_by_event(session: Session, event_ids: list[int]) -> dict[int, int]:
    if not event_ids:
        return {}
    rows = session.execute(
        sa.select(Guest.event_id, sa.func.count())
        .where(Guest.event_id.in_(event_ids), Guest.removed_at.is_(None))
        .group_by(Guest.event_id)
    ).all()
    return {event_id: count for event_id, count in rows}
