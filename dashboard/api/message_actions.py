"""A host in control of a send, over JSON: pause, resume, stop, duplicate, and test sends.
The same services as the pages."""

from __future__ import annotations

from flask import Response, current_app, url_for
from flask_login import current_user
from pydantic import BaseModel, Field

from dashboard.api import bp, load_body
from dashboard.api.inputs import TestSendDraft, TestSendTo
from dashboard.api.messages import CHANGE_ERRORS, _message, _now, _one, _wake
from dashboard.api.openapi import operation
from dashboard.api.schemas import Message, MessageSent
from dashboard.audit.current import current_actor
from dashboard.dispatch import control
from dashboard.dispatch.settings import DispatchSettings
from dashboard.events.access import get_event_for
from dashboard.events.models import Event, Role
from dashboard.extensions import db
from dashboard.messages import testsend
from dashboard.messages.duplicate import duplicate_message
from dashboard.web import json_error

MESSAGE = "/events/<int:event_id>/messages/<int:message_id>"


# --- the answer of a test send ------------------------------------------------------


class TestSendResult(BaseModel):
    to: str
    accepted: bool = Field(description="The mail server (or provider) took it.")
    error: str | None = Field(description="Why not: the server's refusal, in its words.")


class TestSent(BaseModel):
    """What a test send did, one result per address; nothing is recorded as a delivery."""

    results: list[TestSendResult]
    subject: str = Field(description='As sent, with its "[Test] " prefix.')
    rendered_as: str = Field(description="The guest whose values filled the placeholders.")


@bp.errorhandler(testsend.TooManyTestSends)
def _too_many(error: testsend.TooManyTestSends) -> Response:
    db.session.rollback()
    return json_error(429, str(error))


@bp.post(f"{MESSAGE}/pause")
@operation(ok=Message, tag="messages", errors=CHANGE_ERRORS)
def pause_message(event_id: int, message_id: int) -> Message:
    """Pause a message that is being sent; editor or owner.

    From the commit on no process takes more of its recipients; what was already handed to
    a sender goes out and is recorded. 409 (with why) unless it is sending.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = control.pause(db.session, _message(event, message_id), current_actor(), _now())
    db.session.commit()
    return _one(message, event)


@bp.post(f"{MESSAGE}/resume")
@operation(ok=MessageSent, status=202, tag="messages", errors=CHANGE_ERRORS)
def resume_message(event_id: int, message_id: int) -> tuple[Message, int]:
    """Resume a paused message: a new batch (trigger resume) sends the recipients who have
    no outcome yet; editor or owner.

    409 unless it is paused, while the pause is still being recorded, or when its event
    was cancelled or archived meanwhile.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = _message(event, message_id)
    batch = control.resume(db.session, message, current_actor(), _now())
    db.session.commit()
    _wake()
    return _one(message, event, MessageSent, batch_id=batch.id), 202


@bp.post(f"{MESSAGE}/stop")
@operation(ok=Message, tag="messages", errors=CHANGE_ERRORS)
def stop_message(event_id: int, message_id: int) -> Message:
    """Stop a sending or paused message for good; editor or owner.

    Every recipient without an outcome is recorded as cancelled ("stopped by <you>"), so
    sent + failed + skipped + cancelled = total. 409 from any other status.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    lease = DispatchSettings.from_config(current_app.config).lease
    message = control.stop(db.session, _message(event, message_id), current_actor(), _now(), lease)
    db.session.commit()
    return _one(message, event)


@bp.post(f"{MESSAGE}/duplicate")
@operation(ok=Message, status=201, tag="messages", errors=CHANGE_ERRORS)
def duplicate(event_id: int, message_id: int) -> tuple[Message, int, dict[str, str]]:
    """Copy any message into a new draft (custom, no send time); editor or owner."""
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    copy = duplicate_message(db.session, _message(event, message_id), current_actor(), _now())
    db.session.commit()
    location = url_for("api.get_message", event_id=event.id, message_id=copy.id)
    return _one(copy, event), 201, {"Location": location}


TEST_ERRORS = (401, 403, 404, 409, 429)


@bp.post("/events/<int:event_id>/messages/test-send")
@operation(ok=TestSent, tag="messages", body=TestSendDraft, errors=TEST_ERRORS)
def test_send_draft(event_id: int) -> TestSent:
    """Send a test of unsaved message fields, as one guest would get it; editor or owner.

    The real renderer, MIME, headers and transport; the subject starts with "[Test] " and
    the links are inert. Audited, never a delivery. 429 after 20 test sends in an hour.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    body = load_body(TestSendDraft)
    draft = testsend.Draft(body.audience, body.channel, body.subject, body.body)
    return _test(event, draft, body)


@bp.post(f"{MESSAGE}/test-send")
@operation(ok=TestSent, tag="messages", body=TestSendTo, errors=TEST_ERRORS)
def test_send_message(event_id: int, message_id: int) -> TestSent:
    """Send a test of a draft, scheduled or overdue message; editor or owner.

    As for unsaved fields; 409 for a message that has gone out (duplicate it instead).
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    draft = testsend.draft_of(_message(event, message_id))
    return _test(event, draft, load_body(TestSendTo))


def _test(event: Event, draft: testsend.Draft, body: TestSendTo) -> TestSent:
    config, mail = current_app.config, current_app.extensions["mail"]
    report = testsend.send_test(
        db.session,
        event,
        current_actor(),
        _now(),
        draft,
        to=body.to,
        default_to=current_user.email,
        guest_id=body.guest_id,
        settings=DispatchSettings.from_config(config),
        transports=lambda channel: channel.transport(config, mail),
    )
    db.session.commit()
    return TestSent.model_validate(report, from_attributes=True)
