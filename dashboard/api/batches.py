"""JSON API of the batch logs: a message's batches, one batch, its entries, retry failed.

Registered on the one API blueprint by importing this module (see ``dashboard/api``).
Every call authenticates (session or ``Authorization: Bearer <token>``, else 401; the
blueprint also checks it, and the CSRF token of session writes) and resolves the batch through an event the caller may see (else 404, invariant 11).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, jsonify, request, url_for
from flask_login import current_user
from werkzeug.exceptions import BadRequest, Unauthorized

from dashboard.api import bp
from dashboard.api.serializers import batch_json, entry_json
from dashboard.db_types import utcnow
from dashboard.dispatch import scheduler, services
from dashboard.dispatch.models import Batch
from dashboard.dispatch.queries import (
    ENTRIES_PER_PAGE,
    EntryFilter,
    batch_entries,
    message_of_event,
    visible_batch,
)
from dashboard.errors import Conflict
from dashboard.events.access import get_event_for
from dashboard.events.models import Role
from dashboard.extensions import db
from dashboard.web import MAX_SEARCH, Page, json_error, page_args, paginate, search_arg


def require_user() -> None:
    """401 (JSON) unless a session or a valid Bearer token identifies a user."""
    if not current_user.is_authenticated:
        raise Unauthorized("Sign in, or send Authorization: Bearer <API token>.")


@bp.get("/events/<int:event_id>/messages/<int:message_id>/batches")
def message_batches(event_id: int, message_id: int) -> Response:
    """The batches of one message, newest first (paginated)."""
    require_user()
    event = get_event_for(db.session, current_user, event_id)
    message = message_of_event(db.session, event, message_id)
    stmt = sa.select(Batch).where(Batch.message_id == message.id).order_by(Batch.id.desc())
    page = paginate(stmt, *page_args())
    now = utcnow()
    return jsonify(page.as_json(lambda batch: batch_json(batch, now)))


@bp.get("/batches/<int:batch_id>")
def batch_show(batch_id: int) -> Response:
    require_user()
    batch, event = visible_batch(db.session, current_user, batch_id)
    return jsonify({**batch_json(batch, utcnow()), "event_id": event.id})


@bp.get("/batches/<int:batch_id>/entries")
def batch_entries_list(batch_id: int) -> Response:
    """Entries of one batch in processing order; ``status`` filters by outcome, ``q`` searches."""
    require_user()
    batch, _event = visible_batch(db.session, current_user, batch_id)
    raw = request.args.get("status") or EntryFilter.ALL.value
    try:
        entry_filter = EntryFilter(raw)
    except ValueError:
        raise BadRequest(
            f"Unknown status {raw[:40]!r}; use one of "
            + ", ".join(f.value for f in EntryFilter)
            + "."
        ) from None
    page_no, per_page = page_args(ENTRIES_PER_PAGE)
    rows, total = batch_entries(
        db.session,
        batch.id,
        entry_filter,
        search_arg(),
        limit=per_page,
        offset=(page_no - 1) * per_page,
    )
    return jsonify(Page(rows, page_no, per_page, total).as_json(entry_json))


@bp.post("/events/<int:event_id>/messages/<int:message_id>/retry-failed")
def message_retry_failed(event_id: int, message_id: int) -> Response:
    """Queue a retry batch of the failed deliveries (editor or owner); 409 when refused."""
    require_user()  # session writes also need X-CSRFToken (the blueprint's before_request)
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = message_of_event(db.session, event, message_id)
    actor = current_user._get_current_object()  # type: ignore[attr-defined]
    try:
        batch = services.retry_failed(db.session, message, actor, utcnow())
    except Conflict as error:
        db.session.rollback()
        return json_error(409, str(error))
    db.session.commit()
    scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]
    response = jsonify(batch_json(batch, utcnow()))
    response.status_code = 202
    response.headers["Location"] = url_for("api.batch_show", batch_id=batch.id)
    return response


# --- OpenAPI (merged into the document by dashboard/api/openapi.py) ---------------------

_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "A human-readable message."}},
}
_COUNTS: dict[str, Any] = {
    "type": "object",
    "required": ["total", "sent", "failed", "skipped"],
    "properties": {
        name: {"type": "integer", "minimum": 0} for name in ("total", "sent", "failed", "skipped")
    },
    "description": "sent + failed + skipped = total once the batch has finished "
    "(skipped includes dry-run outcomes).",
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "message_id",
        "trigger",
        "initiated_by",
        "status",
        "counts",
        "started_at",
        "finished_at",
        "error",
    ],
    "properties": {
        "id": {"type": "integer"},
        "message_id": {"type": "integer"},
        "event_id": {"type": "integer", "description": "Only on GET /api/batches/{bid}."},
        "trigger": {
            "type": "string",
            "enum": ["schedule", "send_now", "retry", "retry_failed", "resume", "send_one"],
        },
        "trigger_label": {"type": "string"},
        "initiated_by": {
            "type": "string",
            "description": 'The e-mail of the user who started it, or "scheduler".',
        },
        "status": {
            "type": "string",
            "enum": ["running", "completed", "completed_with_failures", "failed", "interrupted"],
        },
        "dry_run": {"type": "boolean"},
        "counts": _COUNTS,
        "started_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "heartbeat_at": {"type": ["string", "null"], "format": "date-time"},
        "error": {"type": ["string", "null"]},
        "progress": {
            "type": "object",
            "description": "Only while running.",
            "properties": {
                "done": {"type": "integer"},
                "percent": {"type": "integer"},
                "eta_seconds": {"type": ["number", "null"]},
            },
        },
    },
}
ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["delivery_id", "guest_id", "email", "outcome", "reason", "processed_at"],
    "properties": {
        "id": {"type": "integer"},
        "delivery_id": {"type": "integer"},
        "guest_id": {"type": "integer"},
        "guest_name": {"type": "string"},
        "email": {"type": "string"},
        "outcome": {"type": "string", "enum": ["sent", "failed", "skipped", "dry_run"]},
        "reason": {"type": ["string", "null"]},
        "error_kind": {"type": ["string", "null"], "enum": ["transient", "permanent", None]},
        "processed_at": {"type": "string", "format": "date-time"},
    },
}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total"],
        "properties": {
            "items": {"type": "array", "items": item},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
        },
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path_int(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer"},
    }


_PAGING = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {
        "name": "per_page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
    },
]
_UNAUTHORIZED = _json(_ERROR, "Not signed in and no valid Bearer token.")
_NOT_FOUND = _json(_ERROR, "No such object, or it belongs to an event you cannot see.")

OPENAPI_PATHS: dict[str, Any] = {
    "/api/events/{id}/messages/{mid}/batches": {
        "get": {
            "operationId": "listMessageBatches",
            "summary": "The batches of a message, newest first",
            "tags": ["batches"],
            "parameters": [
                _path_int("id", "Event id"),
                _path_int("mid", "Message id (of that event)"),
                *_PAGING,
            ],
            "responses": {
                "200": _json(_list_of(BATCH_SCHEMA), "One page of batches."),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        }
    },
    "/api/batches/{bid}": {
        "get": {
            "operationId": "getBatch",
            "summary": "One batch: who started it, status and counts",
            "tags": ["batches"],
            "parameters": [_path_int("bid", "Batch id")],
            "responses": {
                "200": _json(BATCH_SCHEMA, "The batch."),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        }
    },
    "/api/batches/{bid}/entries": {
        "get": {
            "operationId": "listBatchEntries",
            "summary": "What the batch did to each recipient, in processing order",
            "tags": ["batches"],
            "parameters": [
                _path_int("bid", "Batch id"),
                {
                    "name": "status",
                    "in": "query",
                    "description": "Outcome filter; skipped includes dry_run.",
                    "schema": {
                        "type": "string",
                        "enum": [f.value for f in EntryFilter],
                        "default": "all",
                    },
                },
                {
                    "name": "q",
                    "in": "query",
                    "description": "Part of the guest's name or e-mail (case-insensitive).",
                    "schema": {"type": "string", "maxLength": MAX_SEARCH},
                },
                *_PAGING,
            ],
            "responses": {
                "200": _json(_list_of(ENTRY_SCHEMA), "One page of entries."),
                "400": _json(_ERROR, "Unknown status filter."),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        }
    },
    "/api/events/{id}/messages/{mid}/retry-failed": {
        "post": {
            "operationId": "retryFailed",
            "summary": "Send a message again to its failed recipients (editor or owner)",
            "description": "Queues a retry batch over the failed deliveries only, reusing their "
            "rows; recipients who got the message are never sent it again. With a session "
            "cookie, send the X-CSRFToken header.",
            "tags": ["batches"],
            "parameters": [_path_int("id", "Event id"), _path_int("mid", "Message id")],
            "responses": {
                "202": _json(BATCH_SCHEMA, "The queued retry batch (Location: its URL)."),
                "401": _UNAUTHORIZED,
                "403": _json(_ERROR, "Viewers cannot retry."),
                "404": _NOT_FOUND,
                "409": _json(
                    _ERROR, "Nothing failed, a batch is still running, or the message changed."
                ),
            },
        }
    },
}
