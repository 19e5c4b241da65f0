"""Compose-form and row actions beyond saving: a row's "Send now" and "Cancel message",
"Send me a test" (the form's unsaved fields, new or edited message), "Duplicate" (any
message into a new draft), "Save my changes as a new draft" (after a conflict) and
"Restore as draft" (a cancelled message).

They belong to the ``messages`` blueprint (``dashboard.messages.routes.bp``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import (
    Response,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from dashboard.audit.current import current_actor
from dashboard.dispatch.settings import DispatchSettings
from dashboard.errors import Conflict, ValidationError
from dashboard.events.access import EventAccess
from dashboard.events.models import Event, Guest, Role
from dashboard.extensions import db
from dashboard.messages import lists, testsend
from dashboard.messages import services as svc
from dashboard.messages.duplicate import duplicate_message
from dashboard.messages.forms import ComposeForm
from dashboard.messages.models import Message
from dashboard.messages.restore import restore_to_draft
from dashboard.messages.routes import (
    BASE,
    _compose_fields,
    _conflict_alert,
    _edit_page,
    _form_context,
    _message,
    _page_context,
    _row_action,
    _subject,
    bp,
)
from dashboard.messages.services import Mode
from dashboard.web import event_for, hx_redirect, now, save, wants_fragment


@bp.post(f"{BASE}/test-send", defaults={"message_id": None}, endpoint="test_send")
@bp.post(f"{BASE}/<int:message_id>/test-send", endpoint="test_send")
@login_required
def test_send(event_id: int, message_id: int | None) -> Response:
    """Send the compose form's fields as a test; htmx gets the result for the form."""
    access = event_for(event_id, Role.EDITOR)
    message = _message(access.event, message_id) if message_id is not None else None
    form = ComposeForm()
    status, result = 200, {}
    try:
        draft = _draft(form, message)
        guest_id = _guest_id(access.event, request.form.get("test_guest", ""))
        result["report"] = _send(access.event, draft, request.form.get("test_to", ""), guest_id)
    except ValidationError as error:
        status, result["error"] = 400, " ".join(error.errors.values())
    except testsend.TooManyTestSends as error:
        status, result["error"] = 429, str(error)
    except Conflict as error:
        status, result["error"] = 409, str(error)
    if status == 200:
        db.session.commit()
    else:
        db.session.rollback()
    if wants_fragment():
        html = render_template("messages/_test_send_result.html", test=result)
    else:
        html = _whole_page(access, message, form, result)
    response = make_response(html, status)
    response.headers.add("Vary", "HX-Request")
    return response


def _draft(form: ComposeForm, message: Message | None) -> testsend.Draft:
    if message is not None:
        testsend.draft_of(message)  # only a message that has not gone out
    return testsend.Draft(
        form.audience.data,
        form.channel.data,
        form.subject.data,
        form.body.data,
        message.id if message is not None else None,
    )


def _guest_id(event: Event, email: str) -> int | None:
    """The guest named by e-mail on the form (empty: the preview's guest)."""
    if not email.strip():
        return None
    found = db.session.scalar(
        sa.select(Guest.id).where(
            Guest.event_id == event.id,
            Guest.email_key == Guest.key_for(email.strip()),
            Guest.removed_at.is_(None),
        )
    )
    if found is None:
        raise ValidationError({"test_guest": f"No guest with the e-mail “{email[:80]}” here."})
    return found


def _send(event: Event, draft: testsend.Draft, to: str, guest_id: int | None) -> testsend.Report:
    config, mail = current_app.config, current_app.extensions["mail"]
    return testsend.send_test(
        db.session,
        event,
        current_actor(),
        now(),
        draft,
        to=to,
        default_to=current_user.email,
        guest_id=guest_id,
        settings=DispatchSettings.from_config(config),
        transports=lambda channel: channel.transport(config, mail),
    )


def _whole_page(
    access: EventAccess, message: Message | None, form: ComposeForm, result: dict[str, Any]
) -> str:
    """Without htmx: the compose form again, its fields kept, with the result under it."""
    if message is None:
        context = _page_context(access, lists.Tab.SCHEDULED, form)
        return render_template("messages/communications.html", test=result, **context)
    return render_template(
        "messages/edit.html",
        message=message,
        form=form,
        can_edit=True,
        active="communications",
        test=result,
        **_form_context(access.event, form),
    )


@bp.post(f"{BASE}/<int:message_id>/duplicate")
@login_required
def duplicate(event_id: int, message_id: int) -> Response:
    """A new draft from any message; then its edit page."""
    access = event_for(event_id, Role.EDITOR)
    message = _message(access.event, message_id)
    try:
        copy = duplicate_message(db.session, message, current_actor(), now())
    except Conflict as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for(".communications", event_id=event_id, tab="sent"), 303)
    db.session.commit()
    flash(f"“{message.subject}” was copied into a new draft: change it and save.", "success")
    return hx_redirect(url_for(".edit", event_id=event_id, message_id=copy.id))


@bp.post(f"{BASE}/<int:message_id>/save-as-draft")
@login_required
def save_as_draft(event_id: int, message_id: int) -> Response | tuple[str, int]:
    """The edit form's fields as a new draft: a way forward when the message itself can no
    longer be changed (sent or cancelled meanwhile)."""
    access = event_for(event_id, Role.EDITOR)
    message = _message(access.event, message_id)
    form = ComposeForm()
    form.mode.data = Mode.DRAFT.value
    if access.event.closed_reason is not None:
        form.form_errors.append(access.event.closed_reason)
    elif form.validate_on_submit():
        fields = {**_compose_fields(form), "mode": Mode.DRAFT.value, "send_at": None}

        def create() -> Message:
            return svc.create_message(
                db.session, access.event, current_actor(), now=now(), **fields
            )

        saved = save(form, create)
        if saved:
            copy = saved.value
            flash(f"Your changes were saved as a new draft “{_subject(copy)}”.", "success")
            return redirect(url_for(".edit", event_id=event_id, message_id=copy.id), 303)
    status = 409 if access.event.closed_reason is not None else 400
    alert = _conflict_alert(access.event, message, "Your changes were not saved yet.")
    return _edit_page(access.event, message, form, alert, status)


@bp.post(f"{BASE}/<int:message_id>/send-now")
@login_required
def send_now(event_id: int, message_id: int) -> Response:
    def send(message: Message) -> str:
        svc.send_now(db.session, message, current_actor(), now=now())
        return f"“{_subject(message)}” is being sent."

    return _row_action(event_id, message_id, send, wake=True)


@bp.post(f"{BASE}/<int:message_id>/cancel")
@login_required
def cancel(event_id: int, message_id: int) -> Response:
    def cancel_it(message: Message) -> str:
        svc.cancel_message(db.session, message, now=now(), actor=current_actor())
        return f"“{_subject(message)}” was cancelled."

    return _row_action(event_id, message_id, cancel_it)


@bp.post(f"{BASE}/<int:message_id>/restore")
@login_required
def restore(event_id: int, message_id: int) -> Response:
    def restore_it(message: Message) -> str:
        restore_to_draft(db.session, message, now=now(), actor=current_actor())
        return f"“{_subject(message)}” is a draft again: nothing goes out until you schedule or send it."

    return _row_action(event_id, message_id, restore_it)
