"""Events, collaborators and guests. Plain functions over a session; the caller commits."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.auth.models import User
from dashboard.errors import ValidationError
from dashboard.events import calendar, sender
from dashboard.events.models import Collaborator, Event, Guest, Role, RsvpStatus
from dashboard.messages.reminders import reschedule_reminders, seed_reminders
from dashboard.timeutil import parse_local_datetime, wall_time

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
MAX_NAME = 200
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def valid_timezone(name: str) -> str:
    name = (name or "").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            {"timezone": f"{name!r} is not a known time zone (e.g. Europe/Berlin)"}
        ) from None
    return name


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
    return name, venue


def create_event(
    session: Session,
    actor: User,
    *,
    name: str,
    starts_at: str | datetime,
    timezone: str,
    venue: str,
    now: datetime,
    ends_at: str | datetime | None = None,
    sender_name: str = "",
    reply_to: str = "",
) -> Event:
    """The event, its owner row and its auto-reminders, in the caller's transaction."""
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
        created_by_id=actor.id,
    )
    session.add(event)
    session.add(Collaborator(event=event, user_id=actor.id, role=Role.OWNER))
    session.flush()
    seed_reminders(session, event, now, created_by=actor)
    session.flush()
    return event


def update_event(
    session: Session,
    event: Event,
    *,
    now: datetime,
    actor: User | None = None,
    name: str | None = None,
    starts_at: str | datetime | None = None,
    timezone: str | None = None,
    venue: str | None = None,
    ends_at: str | datetime | None = None,
    sender_name: str | None = None,
    reply_to: str | None = None,
) -> Event:
    """Change fields; when the start or zone moves, still-scheduled reminders move too."""
    new_name, new_venue = _clean_event_fields(
        name if name is not None else event.name, venue if venue is not None else event.venue
    )
    new_tz = valid_timezone(timezone) if timezone is not None else event.timezone
    if starts_at is not None:
        new_start = parse_starts_at(starts_at, new_tz)
    elif timezone is not None and new_tz != event.timezone:
        # Same wall-clock time, read in the new zone.
        wall = event.starts_at.astimezone(event.tz).replace(tzinfo=None)
        new_start = parse_starts_at(wall, new_tz)
    else:
        new_start = event.starts_at
    times = calendar.timing(new_start, ends_at, new_tz, current=event)
    identity = sender.identity(sender_name, reply_to, current=event)
    moved = new_start != event.starts_at or new_tz != event.timezone
    event.name, event.venue, event.timezone, event.starts_at = (
        new_name,
        new_venue,
        new_tz,
        new_start,
    )
    times.apply(event)
    identity.apply(event)
    session.flush()
    if moved:
        reschedule_reminders(session, event, now, created_by=actor)
        session.flush()
    return event


# --- collaborators -----------------------------------------------------------------


def add_collaborator(session: Session, event: Event, email: str, role: Role | str) -> Collaborator:
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
        existing.role = role
        return existing
    collaborator = Collaborator(event_id=event.id, user_id=user.id, role=role)
    session.add(collaborator)
    session.flush()
    return collaborator


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
    session: Session, event: Event, collaborator_id: int, role: Role | str
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
    collaborator.role = role
    session.flush()
    return collaborator


def remove_collaborator(session: Session, event: Event, collaborator_id: int) -> None:
    collaborator = get_collaborator(session, event, collaborator_id)
    if collaborator is None:
        raise ValidationError("No such collaborator on this event.")
    if collaborator.role is Role.OWNER:
        _ensure_another_owner(session, event, collaborator)
    session.delete(collaborator)
    session.flush()


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


def clean_guest(
    name: str | None, email: str | None, rsvp_status: str | None
) -> tuple[str, str, RsvpStatus]:
    """Validate one guest's fields; raise ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    email = (email or "").strip()
    if not name:
        errors["name"] = "Name is required."
    elif _has_control_characters(name):
        errors["name"] = "Name contains control characters."
    elif len(name) > MAX_NAME:
        errors["name"] = f"Name is longer than {MAX_NAME} characters."
    if not email:
        errors["email"] = "E-mail is required."
    elif len(email) > 254 or not EMAIL_RE.match(email) or _has_control_characters(email):
        errors["email"] = f"{email!r} is not a valid e-mail address."
    raw_status = (rsvp_status or "pending").strip().lower()
    try:
        status = RsvpStatus(raw_status)
    except ValueError:
        errors["rsvp_status"] = (
            f"{raw_status!r} is not an RSVP status (attending, pending, declined, maybe)."
        )
        status = RsvpStatus.PENDING
    if errors:
        raise ValidationError(errors)
    return name, email, status


def _has_control_characters(value: str) -> bool:
    return CONTROL_RE.search(value) is not None


def find_guest_by_email(session: Session, event_id: int, email: str) -> Guest | None:
    return session.scalar(
        sa.select(Guest).where(Guest.event_id == event_id, Guest.email_key == Guest.key_for(email))
    )


def add_guest(
    session: Session, event: Event, *, name: str, email: str, rsvp_status: str | None = None
) -> Guest:
    name, email, status = clean_guest(name, email, rsvp_status)
    if find_guest_by_email(session, event.id, email) is not None:
        raise ValidationError({"email": f"{email} is already on the guest list."})
    guest = Guest(
        event_id=event.id,
        name=name,
        email=email,
        email_key=Guest.key_for(email),
        rsvp_status=status,
    )
    session.add(guest)
    session.flush()
    return guest


def update_guest(
    session: Session, guest: Guest, *, name: str, email: str, rsvp_status: str | None
) -> Guest:
    name, email, status = clean_guest(name, email, rsvp_status)
    other = find_guest_by_email(session, guest.event_id, email)
    if other is not None and other.id != guest.id:
        raise ValidationError({"email": f"{email} is already on the guest list."})
    guest.name, guest.email, guest.email_key, guest.rsvp_status = (
        name,
        email,
        Guest.key_for(email),
        status,
    )
    session.flush()
    return guest


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


def get_guest(session: Session, event: Event, guest_id: int) -> Guest | None:
    """The guest if it belongs to ``event``; another event's guest is treated as absent."""
    guest = session.get(Guest, guest_id)
    if guest is None or guest.event_id != event.id:
        return None
    return guest


def remove_guest(session: Session, guest: Guest) -> None:
    """Delete a guest (their deliveries go with them, by the foreign key's cascade)."""
    session.delete(guest)
    session.flush()


def guest_by_token(session: Session, token: str) -> Guest | None:
    if not TOKEN_RE.match(token or ""):
        return None  # not one of ours; no query (and no NUL byte sent to the database)
    return session.scalar(sa.select(Guest).where(Guest.token == token))


def search_guests(
    event_id: int, query: str | None = None, status: str | None = None
) -> sa.Select[tuple[Guest]]:
    """Guests of one event whose name or e-mail contains ``query``, optionally of one RSVP status.

    An unknown ``status`` filters nothing rather than failing: it comes from a URL.
    """
    stmt = sa.select(Guest).where(Guest.event_id == event_id)
    query = (query or "").strip()
    if query:
        stmt = stmt.where(
            sa.or_(
                Guest.name.icontains(query, autoescape=True),
                Guest.email.icontains(query, autoescape=True),
            )
        )
    if status == "unsubscribed":
        stmt = stmt.where(Guest.unsubscribed_at.is_not(None))
    elif status in RsvpStatus._value2member_map_:
        stmt = stmt.where(Guest.rsvp_status == RsvpStatus(status))
    return stmt.order_by(Guest.name, Guest.id)


def guest_counts(session: Session, event_id: int) -> dict[str, int]:
    """Guests per RSVP status, plus ``total`` and ``unsubscribed``, from one aggregate query."""
    counts = {status.value: 0 for status in RsvpStatus}
    rows = session.execute(
        sa.select(
            Guest.rsvp_status,
            sa.func.count(),
            sa.func.count(Guest.unsubscribed_at),
        )
        .where(Guest.event_id == event_id)
        .group_by(Guest.rsvp_status)
    ).all()
    unsubscribed = 0
    for status, count, unsub in rows:
        counts[RsvpStatus(status).value] = count
        unsubscribed += unsub
    counts["total"] = sum(counts[s.value] for s in RsvpStatus)
    counts["unsubscribed"] = unsubscribed
    return counts


def guest_totals_by_event(session: Session, event_ids: list[int]) -> dict[int, int]:
    if not event_ids:
        return {}
    rows = session.execute(
        sa.select(Guest.event_id, sa.func.count())
        .where(Guest.event_id.in_(event_ids))
        .group_by(Guest.event_id)
    ).all()
    return {event_id: count for event_id, count in rows}
