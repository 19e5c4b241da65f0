"""Events and guests over JSON: the same services as the pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import url_for
from flask_login import current_user

from dashboard.api import bp, load_body, load_query, validate
from dashboard.api.inputs import (
    EventCreate,
    EventUpdate,
    GuestBulk,
    GuestRow,
    Paging,
)
from dashboard.api.openapi import operation
from dashboard.api.schemas import (
    Event,
    EventPage,
    Guest,
    GuestBulkResult,
    RejectedRow,
)
from dashboard.errors import ValidationError
from dashboard.events import services as events
from dashboard.events.access import get_event_for, visible_events
from dashboard.events.models import Event as EventRow
from dashboard.events.models import Guest as GuestRecord
from dashboard.events.models import Role
from dashboard.extensions import db
from dashboard.web import paginate


def _now() -> datetime:
    return datetime.now(UTC)


@bp.get("/events")
@operation(ok=EventPage, tag="events", query=Paging, errors=(401,))
def list_events() -> EventPage:
    """Events you can see, the latest first."""
    paging = load_query(Paging)
    stmt = visible_events(current_user).order_by(EventRow.starts_at.desc(), EventRow.id.desc())
    return EventPage.model_validate(paginate(stmt, paging.page, paging.per_page))


@bp.post("/events")
@operation(ok=Event, status=201, tag="events", body=EventCreate, errors=(401,))
def create_event() -> tuple[Event, int, dict[str, str]]:
    """Create an event (you become its owner; auto-reminders are seeded)."""
    body = load_body(EventCreate)
    event = events.create_event(
        db.session,
        current_user,
        name=body.name,
        starts_at=body.starts_at,
        timezone=body.timezone or "UTC",
        venue=body.venue,
        now=_now(),
        ends_at=body.ends_at,
        sender_name=body.sender_name,
        reply_to=body.reply_to,
    )
    db.session.commit()
    location = url_for("api.get_event", event_id=event.id)
    return Event.model_validate(event), 201, {"Location": location}


@bp.get("/events/<int:event_id>")
@operation(ok=Event, tag="events")
def get_event(event_id: int) -> Event:
    """One event."""
    return Event.model_validate(get_event_for(db.session, current_user, event_id))


@bp.patch("/events/<int:event_id>")
@operation(ok=Event, tag="events", body=EventUpdate)
def update_event(event_id: int) -> Event:
    """Change an event; editor or owner.

    Moving it moves its still-scheduled reminders.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    changes = load_body(EventUpdate).model_dump(exclude_unset=True)
    events.update_event(db.session, event, now=_now(), actor=current_user, **changes)
    db.session.commit()
    return Event.model_validate(event)


@bp.post("/events/<int:event_id>/guests")
@operation(ok=GuestBulkResult, tag="guests", body=GuestBulk)
def add_guests(event_id: int) -> GuestBulkResult:
    """Add or update guests in bulk (matched by e-mail); editor or owner.

    One transaction; a bad row is reported in `rejected_rows`, the others are saved.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    rows: list[Any] = load_body(GuestBulk).guests
    existing = _guests_by_key(event.id, rows)
    created, updated, rejected, seen = [], [], [], set()
    for index, row in enumerate(rows):
        try:
            guest, was_new = _upsert_guest(event, row, existing, seen)
        except ValidationError as error:
            email = row.get("email") if isinstance(row, dict) else None
            email = email if isinstance(email, str) else None
            rejected.append(RejectedRow(index=index, email=email, errors=error.errors))
            continue
        (created if was_new else updated).append(guest)
    db.session.commit()
    return GuestBulkResult(
        created=len(created),
        updated=len(updated),
        rejected=len(rejected),
        rejected_rows=rejected,
        guests=[Guest.model_validate(guest) for guest in created + updated],
    )


def _guests_by_key(event_id: int, rows: list[Any]) -> dict[str, GuestRecord]:
    keys = {
        GuestRecord.key_for(row["email"])
        for row in rows
        if isinstance(row, dict) and isinstance(row.get("email"), str)
    }
    found: dict[str, GuestRecord] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for guest in db.session.scalars(
            sa.select(GuestRecord).where(
                GuestRecord.event_id == event_id, GuestRecord.email_key.in_(chunk)
            )
        ):
            found[guest.email_key] = guest
    return found


def _upsert_guest(
    event: EventRow, raw: Any, existing: dict[str, GuestRecord], seen: set[str]
) -> tuple[GuestRecord, bool]:
    if not isinstance(raw, dict):
        raise ValidationError({"__all__": "Each guest must be a JSON object."})
    row = validate(GuestRow, raw)
    name, email, _ = events.clean_guest(row.name, row.email, row.rsvp_status)
    key = GuestRecord.key_for(email)
    if key in seen:
        raise ValidationError({"email": f"{email} appears more than once in this request."})
    seen.add(key)
    guest = existing.get(key)
    if guest is None:
        guest = events.add_guest(
            db.session, event, name=name, email=email, rsvp_status=row.rsvp_status
        )
        existing[key] = guest
        return guest, True
    status = row.rsvp_status or guest.rsvp_status  # keep the answer unless given
    events.update_guest(db.session, guest, name=name, email=email, rsvp_status=status)
    return guest, False
