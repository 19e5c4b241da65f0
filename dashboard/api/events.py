"""Events and guests over JSON: the same services as the pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify, url_for
from flask_login import current_user

from dashboard.api import bp, json_body, reject_unknown
from dashboard.api.openapi import PAGE_PARAMS, document, operation, page_of, schema
from dashboard.api.serializers import event_json, guest_json
from dashboard.errors import ValidationError
from dashboard.events import services as events
from dashboard.events.access import get_event_for, visible_events
from dashboard.events.models import Event, Guest, Role
from dashboard.extensions import db
from dashboard.web import page_args, paginate

EVENT_FIELDS = {"name", "starts_at", "timezone", "venue"}
GUEST_FIELDS = {"name", "email", "rsvp_status"}
MAX_BULK_GUESTS = 10_000


def _now() -> datetime:
    return datetime.now(UTC)


def _text_fields(data: dict[str, Any], names: set[str]) -> dict[str, str]:
    """The given fields, each required to be a string (numbers and lists are refused)."""
    bad = {n: "Must be a string." for n in names if n in data and not isinstance(data[n], str)}
    if bad:
        raise ValidationError(bad)
    return {n: data[n] for n in names if n in data}


@bp.get("/events")
def list_events() -> Response:
    page, per_page = page_args()
    stmt = visible_events(current_user).order_by(Event.starts_at.desc(), Event.id.desc())
    return jsonify(paginate(stmt, page, per_page).as_json(event_json))


@bp.post("/events")
def create_event() -> tuple[Response, int, dict[str, str]]:
    data = json_body()
    reject_unknown(data, EVENT_FIELDS)
    fields = _text_fields(data, EVENT_FIELDS)
    missing = {n: "Required." for n in ("name", "starts_at") if not fields.get(n, "").strip()}
    if missing:
        raise ValidationError(missing)
    event = events.create_event(
        db.session,
        current_user,
        name=fields["name"],
        starts_at=fields["starts_at"],
        timezone=fields.get("timezone") or "UTC",
        venue=fields.get("venue", ""),
        now=_now(),
    )
    db.session.commit()
    location = url_for("api.get_event", event_id=event.id)
    return jsonify(event_json(event)), 201, {"Location": location}


@bp.get("/events/<int:event_id>")
def get_event(event_id: int) -> Response:
    return jsonify(event_json(get_event_for(db.session, current_user, event_id)))


@bp.patch("/events/<int:event_id>")
def update_event(event_id: int) -> Response:
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    data = json_body()
    reject_unknown(data, EVENT_FIELDS)
    fields = _text_fields(data, EVENT_FIELDS)
    events.update_event(db.session, event, now=_now(), actor=current_user, **fields)  # type: ignore[arg-type]
    db.session.commit()
    return jsonify(event_json(event))


@bp.post("/events/<int:event_id>/guests")
def add_guests(event_id: int) -> Response:
    """Bulk add or update by e-mail, in one transaction; bad rows are reported, not fatal."""
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    data = json_body()
    reject_unknown(data, {"guests"})
    rows = data.get("guests")
    if not isinstance(rows, list):
        raise ValidationError({"guests": "A list of guest objects is required."})
    if len(rows) > MAX_BULK_GUESTS:
        raise ValidationError({"guests": f"At most {MAX_BULK_GUESTS:,} guests per request."})

    existing = _guests_by_key(event.id, rows)
    created, updated, rejected, seen = [], [], [], set()
    for index, row in enumerate(rows):
        try:
            guest, was_new = _upsert_guest(event, row, existing, seen)
        except ValidationError as error:
            email = row.get("email") if isinstance(row, dict) else None
            rejected.append(
                {
                    "index": index,
                    "email": email if isinstance(email, str) else None,
                    "errors": error.errors,
                }
            )
            continue
        (created if was_new else updated).append(guest)
    db.session.commit()
    return jsonify(
        {
            "created": len(created),
            "updated": len(updated),
            "rejected": len(rejected),
            "rejected_rows": rejected,
            "guests": [guest_json(g) for g in created + updated],
        }
    )


def _guests_by_key(event_id: int, rows: list[Any]) -> dict[str, Guest]:
    keys = {
        Guest.key_for(row["email"])
        for row in rows
        if isinstance(row, dict) and isinstance(row.get("email"), str)
    }
    found: dict[str, Guest] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for guest in db.session.scalars(
            sa.select(Guest).where(Guest.event_id == event_id, Guest.email_key.in_(chunk))
        ):
            found[guest.email_key] = guest
    return found


def _upsert_guest(
    event: Event, row: Any, existing: dict[str, Guest], seen: set[str]
) -> tuple[Guest, bool]:
    if not isinstance(row, dict):
        raise ValidationError({"__all__": "Each guest must be a JSON object."})
    unknown = sorted(set(row) - GUEST_FIELDS - {"id", "unsubscribed"})
    if unknown:
        raise ValidationError({name: "Unknown field." for name in unknown})
    fields = _text_fields(row, GUEST_FIELDS)
    name, email, _ = events.clean_guest(
        fields.get("name"), fields.get("email"), fields.get("rsvp_status")
    )
    key = Guest.key_for(email)
    if key in seen:
        raise ValidationError({"email": f"{email} appears more than once in this request."})
    seen.add(key)
    guest = existing.get(key)
    if guest is None:
        guest = events.add_guest(
            db.session, event, name=name, email=email, rsvp_status=fields.get("rsvp_status")
        )
        existing[key] = guest
        return guest, True
    status = fields.get("rsvp_status") or guest.rsvp_status.value  # keep the answer unless given
    events.update_guest(db.session, guest, name=name, email=email, rsvp_status=status)
    return guest, False


# --- OpenAPI ---------------------------------------------------------------------

schema(
    "Event",
    {
        "type": "object",
        "required": ["id", "name", "starts_at", "timezone", "venue"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "starts_at": {
                "type": "string",
                "format": "date-time",
                "description": "With the event's offset.",
            },
            "timezone": {"type": "string", "example": "Europe/Berlin"},
            "venue": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
)
schema(
    "EventInput",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "starts_at": {
                "type": "string",
                "description": "ISO 8601; without an offset it is read in `timezone`.",
                "example": "2030-06-01T18:00",
            },
            "timezone": {"type": "string", "description": "IANA name; default UTC on create."},
            "venue": {"type": "string", "maxLength": 300},
        },
    },
)
schema(
    "Guest",
    {
        "type": "object",
        "required": ["id", "name", "email", "rsvp_status", "unsubscribed"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "rsvp_status": {
                "type": "string",
                "enum": ["attending", "pending", "declined", "maybe"],
            },
            "unsubscribed": {"type": "boolean"},
        },
    },
)
schema(
    "GuestBulkInput",
    {
        "type": "object",
        "required": ["guests"],
        "properties": {
            "guests": {
                "type": "array",
                "maxItems": MAX_BULK_GUESTS,
                "items": {
                    "type": "object",
                    "required": ["name", "email"],
                    "properties": {
                        "name": {"type": "string"},
                        "email": {"type": "string"},
                        "rsvp_status": {
                            "type": "string",
                            "enum": ["attending", "pending", "declined", "maybe"],
                            "description": "Default pending for new guests; kept for existing ones.",
                        },
                    },
                },
            }
        },
    },
)
schema(
    "GuestBulkResult",
    {
        "type": "object",
        "required": ["created", "updated", "rejected", "rejected_rows"],
        "properties": {
            "created": {"type": "integer"},
            "updated": {"type": "integer"},
            "rejected": {"type": "integer"},
            "rejected_rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "email": {"type": ["string", "null"]},
                        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
            "guests": {"type": "array", "items": {"$ref": "#/components/schemas/Guest"}},
        },
    },
)

document(
    "/api/events",
    "get",
    operation(
        "Events you can see", tag="events", ok=page_of("Event"), query=PAGE_PARAMS, errors=(401,)
    ),
)
document(
    "/api/events",
    "post",
    operation(
        "Create an event (you become its owner; auto-reminders are seeded)",
        tag="events",
        body="EventInput",
        ok="Event",
        status=201,
        errors=(400, 401),
    ),
)
document(
    "/api/events/{event_id}",
    "get",
    operation("One event", tag="events", ok="Event", errors=(401, 403, 404)),
)
document(
    "/api/events/{event_id}",
    "patch",
    operation(
        "Change an event (moving it moves its still-scheduled reminders); editor or owner",
        tag="events",
        body="EventInput",
        ok="Event",
    ),
)
document(
    "/api/events/{event_id}/guests",
    "post",
    operation(
        "Add or update guests in bulk (matched by e-mail); editor or owner",
        tag="guests",
        body="GuestBulkInput",
        ok="GuestBulkResult",
    ),
)
