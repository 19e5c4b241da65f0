"""Messages over JSON: the same services as the Communications page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, jsonify, request, url_for
from flask_login import current_user
from werkzeug.exceptions import NotFound

from dashboard.api import bp, json_body, reject_unknown
from dashboard.api.openapi import PAGE_PARAMS, document, operation, page_of, query_param, schema
from dashboard.api.serializers import message_json, recipient_count_json
from dashboard.dispatch import scheduler
from dashboard.dispatch.queries import message_counts
from dashboard.errors import ValidationError
from dashboard.events.access import get_event_for
from dashboard.events.models import Event, Role
from dashboard.extensions import db
from dashboard.messages import audience as audiences
from dashboard.messages import services as svc
from dashboard.messages.models import Audience, Message, MessageStatus
from dashboard.web import page_args, paginate

CREATE_FIELDS = {"audience", "channel", "subject", "body", "mode", "send_at"}
PATCH_FIELDS = CREATE_FIELDS


def _now() -> datetime:
    return datetime.now(UTC)


def _message(event: Event, message_id: int) -> Message:
    message = svc.get_message_of(db.session, event, message_id)
    if message is None:
        raise NotFound("No such message on this event.")
    return message


def _one(message: Message, event: Event) -> dict[str, Any]:
    counts = message_counts(db.session, [message.id]).get(message.id)
    return message_json(message, event.tz, counts)


def _wake() -> None:
    scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]


def _statuses(raw: str | None) -> tuple[MessageStatus, ...] | None:
    if not raw:
        return None
    try:
        return tuple(MessageStatus(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError:
        valid = ", ".join(s.value for s in MessageStatus)
        raise ValidationError({"status": f"Filter by one or more of: {valid}."}) from None


@bp.get("/events/<int:event_id>/messages")
def list_messages(event_id: int) -> Response:
    event = get_event_for(db.session, current_user, event_id)
    statuses = _statuses(request.args.get("status"))
    page, per_page = page_args()
    result = paginate(svc.messages_query(event.id, statuses), page, per_page)
    counts = message_counts(db.session, [m.id for m in result.items])
    return jsonify(result.as_json(lambda m: message_json(m, event.tz, counts.get(m.id))))


@bp.post("/events/<int:event_id>/messages")
def create_message(event_id: int) -> tuple[Response, int, dict[str, str]]:
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    data = json_body()
    reject_unknown(data, CREATE_FIELDS)
    message = svc.create_message(
        db.session,
        event,
        current_user,
        audience=data.get("audience"),  # type: ignore[arg-type]
        channel=data.get("channel", "email"),
        subject=data.get("subject"),  # type: ignore[arg-type]
        body=data.get("body"),  # type: ignore[arg-type]
        mode=data.get("mode", "draft"),
        send_at=data.get("send_at"),
        now=_now(),
    )
    db.session.commit()
    if message.status is MessageStatus.SENDING:
        _wake()
    location = url_for("api.get_message", event_id=event.id, message_id=message.id)
    return jsonify(_one(message, event)), 201, {"Location": location}


@bp.get("/events/<int:event_id>/messages/recipient-count")
def recipient_count(event_id: int) -> Response:
    event = get_event_for(db.session, current_user, event_id)
    try:
        chosen = Audience(request.args.get("audience", ""))
    except ValueError:
        valid = ", ".join(a.value for a in Audience)
        raise ValidationError({"audience": f"Choose one of: {valid}."}) from None
    return jsonify(recipient_count_json(audiences.count_recipients(db.session, event.id, chosen)))


@bp.get("/events/<int:event_id>/messages/<int:message_id>")
def get_message(event_id: int, message_id: int) -> Response:
    event = get_event_for(db.session, current_user, event_id)
    return jsonify(_one(_message(event, message_id), event))


@bp.patch("/events/<int:event_id>/messages/<int:message_id>")
def update_message(event_id: int, message_id: int) -> Response:
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    data = json_body()
    reject_unknown(data, PATCH_FIELDS)
    changes: dict[str, Any] = {name: data[name] for name in PATCH_FIELDS - {"mode"} if name in data}
    svc.update_message(
        db.session, message, now=_now(), actor=current_user, mode=data.get("mode"), **changes
    )
    db.session.commit()
    if message.status is MessageStatus.SENDING:
        _wake()
    return jsonify(_one(message, event))


@bp.delete("/events/<int:event_id>/messages/<int:message_id>")
def cancel_message(event_id: int, message_id: int) -> Response:
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    svc.cancel_message(db.session, message, now=_now(), actor=current_user)
    db.session.commit()
    return jsonify(_one(message, event))


@bp.post("/events/<int:event_id>/messages/<int:message_id>/send-now")
def send_now(event_id: int, message_id: int) -> tuple[Response, int]:
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    batch = svc.send_now(db.session, message, current_user, now=_now())
    db.session.commit()
    _wake()
    return jsonify({**_one(message, event), "batch_id": batch.id}), 202


# --- OpenAPI ---------------------------------------------------------------------

_AUDIENCES = [a.value for a in Audience]
_STATUSES = [s.value for s in MessageStatus]
_KINDS = ["custom", "reminder_7d", "reminder_3d", "reminder_1d", "reminder_day_of"]
_COUNTS = {
    "type": "object",
    "properties": {
        n: {"type": "integer"} for n in ("total", "sent", "failed", "skipped", "pending")
    },
}

schema(
    "Message",
    {
        "type": "object",
        "required": [
            "id",
            "event_id",
            "kind",
            "label",
            "audience",
            "channel",
            "subject",
            "body",
            "status",
            "send_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": "integer"},
            "kind": {"type": "string", "enum": _KINDS},
            "label": {"type": "string", "example": "1-day reminder"},
            "audience": {"type": "string", "enum": _AUDIENCES},
            "channel": {"type": "string", "enum": ["email"]},
            "subject": {"type": "string", "maxLength": svc.MAX_SUBJECT},
            "body": {"type": "string", "maxLength": svc.MAX_BODY},
            "status": {"type": "string", "enum": _STATUSES},
            "send_at": {"type": ["string", "null"], "format": "date-time"},
            "editable": {"type": "boolean"},
            "counts": {**_COUNTS, "description": "Only for sending and finished messages."},
            "batch_id": {"type": "integer", "description": "Only in the send-now answer."},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
)
_MESSAGE_INPUT_PROPS = {
    "audience": {"type": "string", "enum": _AUDIENCES},
    "channel": {"type": "string", "enum": ["email"], "default": "email"},
    "subject": {
        "type": "string",
        "maxLength": svc.MAX_SUBJECT,
        "description": "One line; placeholders like {{guest_name}} allowed.",
    },
    "body": {"type": "string", "maxLength": svc.MAX_BODY},
    "send_at": {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "Required for mode=schedule, strictly in the future; without an offset it is read in the event's time zone.",
    },
}
schema(
    "MessageCreate",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["audience", "subject", "body"],
        "properties": {
            **_MESSAGE_INPUT_PROPS,
            "mode": {
                "type": "string",
                "enum": ["draft", "schedule", "send_now"],
                "default": "draft",
            },
        },
    },
)
schema(
    "MessageUpdate",
    {
        "type": "object",
        "additionalProperties": False,
        "description": "Only draft and scheduled messages; absent fields keep their value.",
        "properties": {
            **_MESSAGE_INPUT_PROPS,
            "mode": {
                "type": "string",
                "enum": ["draft", "schedule", "send_now"],
                "description": "Switch between draft and scheduled, or send the edited message now.",
            },
        },
    },
)
schema(
    "RecipientCount",
    {
        "type": "object",
        "required": ["audience", "count"],
        "properties": {
            "audience": {"type": "string", "enum": _AUDIENCES},
            "count": {"type": "integer", "description": "Guests who will receive it."},
            "in_audience": {"type": "integer"},
            "left_out": {"type": "integer"},
            "unsubscribed": {"type": "integer"},
            "no_address": {"type": "integer"},
        },
    },
)

_BASE = "/api/events/{event_id}/messages"
document(
    _BASE,
    "get",
    operation(
        "Messages of an event, newest first",
        tag="messages",
        ok=page_of("Message"),
        query=(
            query_param("status", "Comma-separated statuses to keep.", {"type": "string"}),
            *PAGE_PARAMS,
        ),
    ),
)
document(
    _BASE,
    "post",
    operation(
        "Compose a message: save a draft, schedule it, or send it now; editor or owner",
        tag="messages",
        body="MessageCreate",
        ok="Message",
        status=201,
        errors=(400, 401, 403, 404, 409),
    ),
)
document(
    f"{_BASE}/recipient-count",
    "get",
    operation(
        "How many guests of an audience would receive a message, and who is left out",
        tag="messages",
        ok="RecipientCount",
        query=(
            query_param(
                "audience", "The audience.", {"type": "string", "enum": _AUDIENCES}, required=True
            ),
        ),
    ),
)
document(
    f"{_BASE}/{{message_id}}",
    "get",
    operation("One message", tag="messages", ok="Message", errors=(401, 403, 404)),
)
document(
    f"{_BASE}/{{message_id}}",
    "patch",
    operation(
        "Edit a draft or scheduled message; editor or owner",
        tag="messages",
        body="MessageUpdate",
        ok="Message",
        errors=(400, 401, 403, 404, 409),
    ),
)
document(
    f"{_BASE}/{{message_id}}",
    "delete",
    operation(
        "Cancel a draft or scheduled message; editor or owner",
        tag="messages",
        ok="Message",
        errors=(401, 403, 404, 409),
    ),
)
document(
    f"{_BASE}/{{message_id}}/send-now",
    "post",
    operation(
        "Send a draft or scheduled message now (hands it to dispatch); editor or owner",
        tag="messages",
        ok="Message",
        status=202,
        errors=(401, 403, 404, 409),
    ),
)
