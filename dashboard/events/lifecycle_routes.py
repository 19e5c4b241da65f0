"""Host pages that end an event: cancel (a confirm step with the optional notice),
archive, bring back from the archive, delete. Owners only.

They belong to the ``events`` blueprint (``dashboard.events.routes.bp``).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from dashboard.audit.services import Actor
from dashboard.dispatch import scheduler
from dashboard.errors import Conflict
from dashboard.events import lifecycle
from dashboard.events import services as svc
from dashboard.events.access import EventAccess
from dashboard.events.forms import CancelEventForm
from dashboard.events.models import Role
from dashboard.events.routes import bp
from dashboard.extensions import db
from dashboard.messages.audience import count_recipients
from dashboard.messages.models import Audience
from dashboard.web import event_for, now, save


def _actor() -> Actor:
    return Actor.of(current_user._get_current_object())  # type: ignore[attr-defined]


@bp.route("/events/<int:event_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel_event(event_id: int) -> Response | tuple[str, int]:
    """The confirm step: what cancelling does, and the optional notice; then cancel."""
    access = event_for(event_id, Role.OWNER)
    event = access.event
    if event.closed_reason is not None:
        flash(event.closed_reason, "error")
        return redirect(url_for("events.show", event_id=event.id), 303)
    form = CancelEventForm()
    if not form.is_submitted():
        form.subject.data, form.body.data = lifecycle.NOTICE_SUBJECT, lifecycle.NOTICE_BODY
    elif form.validate():
        saved = save(
            form,
            lambda: lifecycle.cancel_event(
                db.session,
                event,
                _actor(),
                now=now(),
                notify=bool(form.notify.data),
                subject=form.subject.data,
                body=form.body.data,
            ),
            done=_cancelled_text,
        )
        if saved:
            if saved.value.notice is not None:
                scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]
            return redirect(url_for("events.show", event_id=event.id), 303)
    return _cancel_page(access, form)


def _cancelled_text(ended: lifecycle.Ended) -> str:
    n = len(ended.cancelled)
    text = f"{ended.event.name} is cancelled; {n} message{'s' if n != 1 else ''} will not be sent."
    if ended.notice is not None:
        text += " The cancellation notice is being sent."
    return text


def _cancel_page(access: EventAccess, form: CancelEventForm) -> tuple[str, int]:
    event = access.event
    html = render_template(
        "events/cancel.html",
        form=form,
        open_messages=lifecycle.open_messages(db.session, event.id),
        notice_count=count_recipients(db.session, event.id, Audience.NOT_DECLINED),
        active="overview",
        **access.context(),
    )
    return html, 400 if form.errors or form.form_errors else 200


@bp.post("/events/<int:event_id>/archive")
@login_required
def archive_event(event_id: int) -> Response | tuple[str, int]:
    event = event_for(event_id, Role.OWNER).event
    return _act(
        event_id,
        lambda: lifecycle.archive_event(db.session, event, _actor(), now=now()),
        f"{event.name} is archived.",
        url_for("events.index"),
    )


@bp.post("/events/<int:event_id>/unarchive")
@login_required
def unarchive_event(event_id: int) -> Response | tuple[str, int]:
    event = event_for(event_id, Role.OWNER).event
    return _act(
        event_id,
        lambda: lifecycle.unarchive_event(db.session, event, _actor(), now=now()),
        f"{event.name} is back from the archive.",
        url_for("events.show", event_id=event_id),
    )


@bp.post("/events/<int:event_id>/delete")
@login_required
def delete_event(event_id: int) -> Response | tuple[str, int]:
    event = event_for(event_id, Role.OWNER).event
    return _act(
        event_id,
        lambda: lifecycle.delete_event(db.session, event, _actor(), now=now()),
        f"{event.name} was deleted.",
        url_for("events.index"),
    )


def _act(
    event_id: int, call: Callable[[], object], done: str, target: str
) -> Response | tuple[str, int]:
    """Run a lifecycle change and commit it; a refusal shows the event page with why (409)."""
    try:
        call()
    except Conflict as error:
        db.session.rollback()
        access = event_for(event_id)
        html = render_template(
            "events/show.html",
            counts=svc.guest_counts(db.session, event_id),
            collaborators=svc.list_collaborators(db.session, access.event),
            page_error=str(error),
            deletable=lifecycle.send_history(db.session, event_id) == 0,
            active="overview",
            **access.context(),
        )
        return html, 409
    db.session.commit()
    flash(done, "success")
    return redirect(target, 303)
