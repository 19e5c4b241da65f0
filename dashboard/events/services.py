"""Events, collaborators and guests. Plain functions over a session; the caller commits."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.auth.models import User
from dashboard.errors import ValidationError
from dashboard.events.models import Collaborator, Event, Guest, Role, RsvpStatus
from dashboard.messages.reminders import reschedule_reminders, seed_reminders

EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
MAX_NAME = 200


def valid_timezone(name: str) -> str:
    name = (name or "").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError({"timezone": f"{name!r} is not a known time zone (e.g. Europe/Berlin)"}) from None
    return name


def timezone_choices() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


def parse_starts_at(value: str | datetime, timezone: str) -> datetime:
    """ISO 8601 with offset, or naive, read in the event's time zone. Returns UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationError({"starts_at": f"{value!r} is not a date and time (ISO 8601)"}) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed.astimezone(UTC)


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
) -> Event:
    """The event, its owner row and its auto-reminders, in the caller's transaction."""
    name, venue = _clean_event_fields(name, venue)
    timezone = valid_timezone(timezone)
    event = Event(
        name=name,
        starts_at=parse_starts_at(starts_at, timezone),
        timezone=timezone,
        venue=venue,
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
    moved = new_start != event.starts_at or new_tz != event.timezone
    event.name, event.venue, event.timezone, event.starts_at = new_name, new_venue, new_tz, new_start
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
        raise ValidationError({"email": f"No user with e-mail {email.strip()}; ask an admin to create one."})
    existing = session.scalar(
        sa.select(Collaborator).where(Collaborator.event_id == event.id, Collaborator.user_id == user.id)
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


def remove_collaborator(session: Session, event: Event, collaborator_id: int) -> None:
    collaborator = session.get(Collaborator, collaborator_id)
    if collaborator is None or collaborator.event_id != event.id:
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
        raise ValidationError("An event needs at least one owner.")


# --- guests --------------------------------------------------------------------------


def clean_guest(name: str | None, email: str | None, rsvp_status: str | None) -> tuple[str, str, RsvpStatus]:
    """Validate one guest's fields; raise ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    email = (email or "").strip()
    if not name:
        errors["name"] = "Name is required."
    elif len(name) > MAX_NAME:
        errors["name"] = f"Name is longer than {MAX_NAME} characters."
    if not email:
        errors["email"] = "E-mail is required."
    elif len(email) > 254 or not EMAIL_RE.match(email):
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
    guest = Guest(event_id=event.id, name=name, email=email, email_key=Guest.key_for(email), rsvp_status=status)
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
    guest.name, guest.email, guest.email_key, guest.rsvp_status = name, email, Guest.key_for(email), status
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
