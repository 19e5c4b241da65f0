"""Pause, resume and stop a send from the pages: the buttons of the live progress piece (on
the Sent tab and the message page). htmx gets the piece back, refreshed, with the outcome
or the refusal (409) inside it; a plain form post is redirected to the message page.

They belong to the ``dispatch`` blueprint (``dashboard.dispatch.routes.bp``).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, flash, redirect, url_for
from flask_login import login_required

from dashboard.audit.current import current_actor
from dashboard.db_types import utcnow
from dashboard.dispatch import control, scheduler, stalled
from dashboard.dispatch import queries as q
from dashboard.dispatch.routes import EVENT, _fragment_response, _message_progress_context, bp
from dashboard.dispatch.settings import DispatchSettings
from dashboard.errors import Conflict
from dashboard.events.models import Role
from dashboard.extensions import db
from dashboard.messages.models import Message
from dashboard.web import event_for, wants_fragment

#: What a control does to a message; it answers the text the host reads afterwards.
Control = Callable[[Message], str]


@bp.post(f"{EVENT}/messages/<int:message_id>/pause")
@login_required
def pause_message(event_id: int, message_id: int) -> Response:
    def pause(message: Message) -> str:
        control.pause(db.session, message, current_actor(), utcnow())
        return f"“{message.subject}” is paused: nothing more goes out until you resume it."

    return _control(event_id, message_id, pause)


@bp.post(f"{EVENT}/messages/<int:message_id>/resume")
@login_required
def resume_message(event_id: int, message_id: int) -> Response:
    def resume(message: Message) -> str:
        batch = control.resume(db.session, message, current_actor(), utcnow())
        return f"“{message.subject}” is being sent again (batch {batch.id})."

    return _control(event_id, message_id, resume, wake=True)


@bp.post(f"{EVENT}/messages/<int:message_id>/resume-stalled")
@login_required
def resume_stalled_message(event_id: int, message_id: int) -> Response:
    def resume(message: Message) -> str:
        lease = DispatchSettings.from_config(current_app.config).lease
        batch = stalled.resume_stalled(db.session, message, current_actor(), utcnow(), lease / 2)
        return f"“{message.subject}” is being sent again (batch {batch.id})."

    return _control(event_id, message_id, resume, wake=True)


@bp.post(f"{EVENT}/messages/<int:message_id>/stop")
@login_required
def stop_message(event_id: int, message_id: int) -> Response:
    def stop(message: Message) -> str:
        lease = DispatchSettings.from_config(current_app.config).lease
        control.stop(db.session, message, current_actor(), utcnow(), lease)
        return f"“{message.subject}” is stopped: the recipients left will not get it."

    return _control(event_id, message_id, stop)


def _control(event_id: int, message_id: int, action: Control, wake: bool = False) -> Response:
    """Run ``action`` on an editor's message and commit, or answer 409 with the reason."""
    access = event_for(event_id, Role.EDITOR)
    message = q.message_of_event(db.session, access.event, message_id)
    status = 200
    try:
        alert = {"kind": "success", "text": action(message)}
    except Conflict as error:
        db.session.rollback()
        db.session.refresh(message)
        status, alert = 409, {"kind": "error", "text": str(error)}
    else:
        db.session.commit()
        if wake:
            scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]
    if not wants_fragment():
        flash(alert["text"], alert["kind"])
        return redirect(url_for(".message_detail", event_id=event_id, message_id=message_id), 303)
    context = _message_progress_context(access.event, message, access.can_edit)
    return _fragment_response("dispatch/_message_progress.html", status, alert=alert, **context)
