"""Events and guests over JSON: the same services as the pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, request, url_for
from flask_login import current_user
from werkzeug.exceptions import NotFound

from dashboard.api import bp, load_body, load_query, validate
from dashboard.api.inputs import (
    EventCancel,
    EventCreate,
    EventQuery,
    EventUpdate,
    GuestBulk,
    GuestQuery,
    GuestRow,
)
from dashboard.api.openapi import operation
from dashboard.api.schemas import (
    Derived,
    Event,
    EventEnded,
    EventPage,
    Guest,
    GuestBulkResult,
    GuestPage,
    RejectedRow,
)
from dashboard.audit.current import current_actor
from dashboard.audit.services import record
from dashboard.dispatch import scheduler
from dashboard.errors import ValidationError
from dashboard.events import addresses, lifecycle
from dashboard.events import guests as guest_list
from dashboard.events import services as events
from dashboard.events.access import get_event_for, visible_events
from dashboard.events.models import Event as EventRow
from dashboard.events.models import Guest as GuestRecord
from dashboard.events.models import Role
from dashboard.extensions import db
from dashboard.web import MAX_SEARCH, paginate

#: What an event's status can refuse, on top of the usual errors.
LIFECYCLE_ERRORS = (401, 403, 404, 409)


def _now() -> datetime:
    return datetime.now(UTC)


@bp.get("/events")
@operation(ok=EventPage, tag="events", query=EventQuery, errors=(401,))
def list_events() -> EventPage:
    """Events you can see, the latest first (`status` keeps only some: active, archived...)."""
    query = load_query(EventQuery)
    stmt = visible_events(current_user).order_by(EventRow.starts_at.desc(), EventRow.id.desc())
    if query.status:
        stmt = stmt.where(EventRow.status.in_([s.value for s in query.status]))
    return EventPage.model_validate(paginate(stmt, query.page, query.per_page))


@bp.post("/events")
@operation(ok=Event, status=201, tag="events", body=EventCreate, errors=(401,))
def create_event() -> tuple[Event, int, dict[str, str]]:
    """Create an event (you become its owner; auto-reminders are seeded)."""
    body = load_body(EventCreate)
    event = events.create_event(
        db.session,
        current_actor(),
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
@operation(ok=Event, tag="events", body=EventUpdate, errors=LIFECYCLE_ERRORS)
def update_event(event_id: int) -> Event:
    """Change an event; editor or owner.

    Moving it moves its reminders that have not gone out (same days before the event, same
    time of day); moving it into the past needs `confirm_past: true` and cancels them. A
    cancelled or archived event cannot be changed (409).
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    changes = load_body(EventUpdate).model_dump(exclude_unset=True)
    events.update_event(db.session, event, now=_now(), actor=current_actor(), **changes)
    db.session.commit()
    return Event.model_validate(event)


@bp.get("/events/<int:event_id>/guests")
@operation(ok=GuestPage, tag="guests", query=GuestQuery)
def list_guests(event_id: int) -> GuestPage:
    """The guest list, by name; `include_removed=1` adds the removed guests.

    `q` searches the name or e-mail.
    """
    event = get_event_for(db.session, current_user, event_id)
    query = load_query(GuestQuery)
    removed = None if query.include_removed else False
    stmt = guest_list.search_guests(event.id, query.q.strip()[:MAX_SEARCH], removed=removed)
    return GuestPage.model_validate(paginate(stmt, query.page, query.per_page))


@bp.delete("/events/<int:event_id>/guests/<int:guest_id>")
@operation(ok=Guest, tag="guests")
def remove_guest(event_id: int, guest_id: int) -> Guest:
    """Remove a guest from the list; editor or owner.

    The guest leaves every audience and count; what they were sent stays in the history.
    Adding the address again (bulk add) brings them back with the same id. Removing a
    removed guest changes nothing.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    guest = guest_list.get_guest(db.session, event, guest_id)
    if guest is None:
        raise NotFound("No such guest on this event.")
    guest_list.remove_guest(db.session, guest, actor=current_actor(), now=_now())
    db.session.commit()
    return Guest.model_validate(guest)


def _ended(ended: lifecycle.Ended) -> EventEnded:
    notice = ended.notice.id if ended.notice is not None else None
    row = Derived(ended.event, cancelled_messages=len(ended.cancelled), notice_message_id=notice)
    return EventEnded.model_validate(row)


@bp.post("/events/<int:event_id>/cancel")
@operation(ok=EventEnded, tag="events", body=EventCancel, errors=LIFECYCLE_ERRORS)
def cancel_event(event_id: int) -> EventEnded:
    """Cancel an event; owner.

    Its draft, scheduled and overdue messages are cancelled (`status_reason` "event
    cancelled"), guests can no longer change their RSVP, and nothing more is sent for it.
    With `notify` a notice goes through dispatch to every guest who has not declined
    (refused with 400 when nobody would receive it). The body may be left out.
    """
    event = get_event_for(db.session, current_user, event_id, Role.OWNER)
    body = load_body(EventCancel) if request.get_data() else EventCancel()
    ended = lifecycle.cancel_event(
        db.session, event, current_actor(), now=_now(), **body.model_dump(exclude_none=True)
    )
    db.session.commit()
    if ended.notice is not None:
        scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]
    return _ended(ended)


@bp.post("/events/<int:event_id>/archive")
@operation(ok=EventEnded, tag="events", errors=LIFECYCLE_ERRORS)
def archive_event(event_id: int) -> EventEnded:
    """Archive an event; owner.

    It leaves the default lists of the pages, stays readable, and nothing more is sent for
    it; its draft, scheduled and overdue messages are cancelled. Refused (409) while a
    message is being sent.
    """
    event = get_event_for(db.session, current_user, event_id, Role.OWNER)
    ended = lifecycle.archive_event(db.session, event, current_actor(), now=_now())
    db.session.commit()
    return _ended(ended)


@bp.post("/events/<int:event_id>/unarchive")
@operation(ok=Event, tag="events", errors=LIFECYCLE_ERRORS)
def unarchive_event(event_id: int) -> Event:
    """Bring an archived event back (cancelled again if it had been cancelled); owner."""
    event = get_event_for(db.session, current_user, event_id, Role.OWNER)
    lifecycle.unarchive_event(db.session, event, current_actor(), now=_now())
    db.session.commit()
    return Event.model_validate(event)


@bp.delete("/events/<int:event_id>")
@operation(ok=None, status=204, tag="events", errors=LIFECYCLE_ERRORS)
def delete_event(event_id: int) -> Response:
    """Delete an event with its guests and unsent messages; owner.

    Refused (409, with why) once any of its messages has been sent: archive it instead.
    """
    event = get_event_for(db.session, current_user, event_id, Role.OWNER)
    lifecycle.delete_event(db.session, event, current_actor(), now=_now())
    db.session.commit()
    return Response(status=204)


@bp.post("/events/<int:event_id>/guests")
@operation(ok=GuestBulkResult, tag="guests", body=GuestBulk)
def add_guests(event_id: int) -> GuestBulkResult:
    """Add or update guests in bulk (matched by e-mail); editor or owner.

    One transaction; a bad row is reported in `rejected_rows`, the others are saved. The
    address of a removed guest brings that guest back (`restored`), with the same id.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    rows: list[Any] = load_body(GuestBulk).guests
    existing = _guests_by_key(event.id, rows)
    now = _now()
    done: dict[str, list[GuestRecord]] = {"created": [], "restored": [], "updated": []}
    rejected, seen = [], set()
    for index, row in enumerate(rows):
        try:
            guest, kind = _upsert_guest(event, row, existing, seen, now)
        except ValidationError as error:
            email = row.get("email") if isinstance(row, dict) else None
            email = email if isinstance(email, str) else None
            rejected.append(RejectedRow(index=index, email=email, errors=error.errors))
            continue
        done[kind].append(guest)
    counts = {kind: len(guests) for kind, guests in done.items()}
    if any(counts.values()):
        details = {"source": "api", **counts, "rejected": len(rejected)}
        record(
            db.session, current_actor(), "guest.import", now=now, event_id=event.id, details=details
        )
    db.session.commit()
    return GuestBulkResult(
        **counts,
        rejected=len(rejected),
        rejected_rows=rejected,
        guests=[Guest.model_validate(guest) for guests in done.values() for guest in guests],
    )


def _guests_by_key(event_id: int, rows: list[Any]) -> dict[str, GuestRecord]:
    keys = {
        addresses.email_key(row["email"])
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
    event: EventRow, raw: Any, existing: dict[str, GuestRecord], seen: set[str], now: datetime
) -> tuple[GuestRecord, str]:
    """Create, restore or update one row's guest: "created", "restored" or "updated"."""
    if not isinstance(raw, dict):
        raise ValidationError({"__all__": "Each guest must be a JSON object."})
    row = validate(GuestRow, raw)
    name, email, _ = addresses.clean_guest(row.name, row.email, row.rsvp_status)
    key = GuestRecord.key_for(email)
    if key in seen:
        raise ValidationError({"email": f"{email} appears more than once in this request."})
    seen.add(key)
    guest, kind = guest_list.put_guest(
        db.session,
        event,
        existing.get(key),
        name=name,
        email=email,
        rsvp_status=row.rsvp_status,  # None keeps an existing guest's answer
        now=now,
    )
    existing[key] = guest
    return guest, kind
