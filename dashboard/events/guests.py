"""The guest list: add (or bring back), edit, remove and restore, search. Plain functions
over a session; the caller commits, and every change writes its audit entry.

A removed guest keeps their row (``removed_at``): they are in no audience or count, their
deliveries and batch entries stay, and their address still belongs to them, so adding it
again brings back the same guest, with what they already received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, changes, record
from dashboard.dispatch.models import Delivery
from dashboard.errors import ValidationError
from dashboard.events.addresses import clean_guest
from dashboard.events.models import Event, Guest, RsvpStatus
from dashboard.messages.models import Message


def find_guest_by_email(session: Session, event_id: int, email: str) -> Guest | None:
    """The guest with this address (removed or not: the address stays theirs)."""
    return session.scalar(
        sa.select(Guest).where(Guest.event_id == event_id, Guest.email_key == Guest.key_for(email))
    )


@dataclass(frozen=True)
class GuestAdded:
    guest: Guest
    #: The address belonged to a removed guest, who is back with the same id and history.
    restored: bool


def add_guest(
    session: Session,
    event: Event,
    *,
    actor: Actor,
    now: datetime,
    name: str,
    email: str,
    rsvp_status: str | None = None,
) -> GuestAdded:
    """A new guest, or a removed guest with this address back on the list (same id, so
    nothing they already received is sent again). Their answer is kept unless given."""
    status_given = bool((rsvp_status or "").strip())
    name, email, status = clean_guest(name, email, rsvp_status)
    existing = find_guest_by_email(session, event.id, email)
    if existing is not None and existing.removed_at is None:
        raise ValidationError({"email": f"{email} is already on the guest list."})
    keep = existing is not None and not status_given
    guest, kind = put_guest(
        session,
        event,
        existing,
        name=name,
        email=email,
        rsvp_status=None if keep else status,
        now=now,
    )
    action = "guest.restore" if kind == "restored" else "guest.add"
    _record_guest(session, actor, action, guest, now, _guest_fields(guest))
    return GuestAdded(guest, restored=kind == "restored")


def put_guest(
    session: Session,
    event: Event,
    existing: Guest | None,
    *,
    name: str,
    email: str,
    rsvp_status: RsvpStatus | None,
    now: datetime,
) -> tuple[Guest, str]:
    """Create, restore or update one guest from clean fields (``rsvp_status`` None: keep
    it, or pending for a new guest); "created", "restored" or "updated".

    No audit entry: ``add_guest`` writes one per guest, a bulk import one with its counts.
    """
    if existing is None:
        guest = Guest(
            event_id=event.id,
            name=name,
            email=email,
            email_key=Guest.key_for(email),
            rsvp_status=rsvp_status or RsvpStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        session.add(guest)
        session.flush()
        return guest, "created"
    kind = "restored" if existing.removed_at is not None else "updated"
    existing.name, existing.email, existing.email_key = name, email, Guest.key_for(email)
    existing.rsvp_status = rsvp_status or existing.rsvp_status
    existing.removed_at = None
    existing.updated_at = now
    session.flush()
    return existing, kind


def update_guest(
    session: Session,
    guest: Guest,
    *,
    actor: Actor,
    now: datetime,
    name: str,
    email: str,
    rsvp_status: str | None,
) -> Guest:
    name, email, status = clean_guest(name, email, rsvp_status)
    if guest.removed_at is not None:
        raise ValidationError(f"{guest.name} was removed from the guest list; restore them first.")
    other = find_guest_by_email(session, guest.event_id, email)
    if other is not None and other.id != guest.id:
        if other.removed_at is not None:
            raise ValidationError(
                {
                    "email": f"{email} belongs to {other.name}, who was removed from the guest "
                    "list; restore them instead."
                }
            )
        raise ValidationError({"email": f"{email} is already on the guest list."})
    before = _guest_fields(guest)
    guest.name, guest.email, guest.email_key, guest.rsvp_status = (
        name,
        email,
        Guest.key_for(email),
        status,
    )
    session.flush()
    changed = changes(before, _guest_fields(guest))
    if changed:
        details = {"name": guest.name, "changes": changed}
        _record_guest(session, actor, "guest.edit", guest, now, details)
    return guest


def _guest_fields(guest: Guest) -> dict[str, Any]:
    return {"name": guest.name, "email": guest.email, "rsvp_status": guest.rsvp_status}


def get_guest(session: Session, event: Event, guest_id: int) -> Guest | None:
    """The guest if it belongs to ``event`` (removed or not); another event's is absent."""
    guest = session.get(Guest, guest_id)
    if guest is None or guest.event_id != event.id:
        return None
    return guest


def remove_guest(session: Session, guest: Guest, *, actor: Actor, now: datetime) -> bool:
    """Take a guest off the list: out of every audience and count from now on, while their
    deliveries and batch entries stay. False if they were removed already."""
    if guest.removed_at is not None:
        return False
    guest.removed_at = now
    session.flush()
    _record_guest(session, actor, "guest.remove", guest, now)
    return True


def restore_guest(session: Session, guest: Guest, *, actor: Actor, now: datetime) -> bool:
    """A removed guest back on the list, as they were. False if they were not removed."""
    if guest.removed_at is None:
        return False
    guest.removed_at = None
    guest.updated_at = now
    session.flush()
    _record_guest(session, actor, "guest.restore", guest, now)
    return True


def _record_guest(
    session: Session,
    actor: Actor,
    action: str,
    guest: Guest,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    details = details or {"name": guest.name, "email": guest.email}
    event_id, guest_id = guest.event_id, guest.id
    record(session, actor, action, now=now, event_id=event_id, guest_id=guest_id, details=details)


def search_guests(
    event_id: int,
    query: str | None = None,
    status: str | None = None,
    removed: bool | None = False,
) -> sa.Select[tuple[Guest]]:
    """Guests of one event whose name or e-mail contains ``query``, optionally of one RSVP status.

    ``removed``: False for the guest list, True for the removed guests only, None for both.
    An unknown ``status`` filters nothing rather than failing: it comes from a URL.
    """
    stmt = sa.select(Guest).where(Guest.event_id == event_id)
    if removed is not None:
        stmt = stmt.where(Guest.removed_at.is_not(None) if removed else Guest.removed_at.is_(None))
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


def page_of(session: Session, guest: Guest, per_page: int) -> int:
    """The page of the guest list (``search_guests`` order, no filter) that shows ``guest``."""
    before = session.scalar(
        sa.select(sa.func.count())
        .select_from(Guest)
        .where(
            Guest.event_id == guest.event_id,
            Guest.removed_at.is_(None),
            sa.or_(Guest.name < guest.name, sa.and_(Guest.name == guest.name, Guest.id < guest.id)),
        )
    )
    return (before or 0) // per_page + 1


def messages_sent_to(session: Session, guest: Guest) -> list[sa.Row[tuple[Delivery, Message]]]:
    """Every message this guest was (or is being) sent, with its delivery, newest first:
    the answer to "did Ann get the reminder?"."""
    return list(
        session.execute(
            sa.select(Delivery, Message)
            .join(Message, Message.id == Delivery.message_id)
            .where(Delivery.guest_id == guest.id)
            .order_by(sa.func.coalesce(Delivery.sent_at, Delivery.created_at).desc(), Delivery.id)
        ).all()
    )
