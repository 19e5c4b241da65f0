"""Host pages: events and collaborators (the guest list is in ``guest_routes``).

Every event page resolves its event and the user's role through ``event_for`` (404 for an
event the user cannot see, 403 for a role too weak for the action). Routes parse, call a
service through ``save`` (commit, or the service's errors on the form, answered with 400),
render.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from dashboard.audit.current import current_actor
from dashboard.events import services as svc
from dashboard.events.access import EventAccess, role_for, visible_events
from dashboard.events.forms import (
    CollaboratorForm,
    ConfirmForm,
    EventForm,
)
from dashboard.events.lifecycle import send_history
from dashboard.events.models import Collaborator, Event, EventStatus, Role
from dashboard.extensions import db
from dashboard.timeutil import wall_time
from dashboard.web import (
    Page,
    event_for,
    now,
    page_args,
    paginate,
    save,
)

bp = Blueprint("events", __name__)

EVENTS_PER_PAGE = 20


# --- events ----------------------------------------------------------------------------


@bp.get("/")
@login_required
def index():
    """Upcoming events first; archived ones only behind their filter (``?show=archived``)."""
    current = now()
    archived = request.args.get("show") == "archived"
    in_archive = Event.status == EventStatus.ARCHIVED
    upcoming = Event.starts_at >= current
    stmt = (
        visible_events(current_user)
        .where(in_archive if archived else ~in_archive)
        .order_by(
            sa.case((upcoming, 0), else_=1),
            sa.case((upcoming, Event.starts_at)).asc(),
            Event.starts_at.desc(),
            Event.id,
        )
    )
    page: Page = paginate(stmt, *page_args(EVENTS_PER_PAGE))
    totals = svc.guest_totals_by_event(db.session, [event.id for event in page.items])
    archive_size = db.session.scalar(
        sa.select(sa.func.count()).select_from(
            visible_events(current_user).where(in_archive).subquery()
        )
    )
    return render_template(
        "events/index.html",
        page=page,
        totals=totals,
        now=current,
        archived=archived,
        archive_size=archive_size or 0,
    )


@bp.route("/events/new", methods=["GET", "POST"])
@login_required
def create():
    form = EventForm()
    if request.method == "GET":
        form.timezone.data = _default_timezone()
    if form.validate_on_submit():
        saved = save(
            form,
            lambda: svc.create_event(
                db.session,
                current_actor(),
                name=form.name.data or "",
                starts_at=form.starts_at.data,  # type: ignore[arg-type]
                timezone=form.timezone.data or "",
                venue=form.venue.data or "",
                now=now(),
                **_mail_fields(form),
            ),
            done=lambda event: f"Created {event.name}.",
        )
        if saved:
            return redirect(url_for("events.show", event_id=saved.value.id))
    return _event_form(form, None)


@bp.get("/events/<int:event_id>")
@login_required
def show(event_id: int):
    access = event_for(event_id)
    return render_template(
        "events/show.html",
        counts=svc.guest_counts(db.session, event_id),
        collaborators=svc.list_collaborators(db.session, access.event),
        deletable=send_history(db.session, event_id) == 0,
        active="overview",
        **access.context(),
    )


@bp.route("/events/<int:event_id>/edit", methods=["GET", "POST"])
@login_required
def edit(event_id: int):
    event = event_for(event_id, Role.EDITOR).event
    if event.closed_reason is not None:
        flash(event.closed_reason, "error")
        return redirect(url_for("events.show", event_id=event.id), 303)
    wall = svc.local_wall_time(event).replace(second=0, microsecond=0)
    wall_end = wall_time(event.ends_at, event.tz).replace(second=0, microsecond=0)
    form = EventForm(
        data={
            "name": event.name,
            "starts_at": wall,
            "timezone": event.timezone,
            "venue": event.venue,
            "ends_at": wall_end,
            "sender_name": event.sender_name,
            "reply_to": event.reply_to,
        }
    )
    if form.validate_on_submit():
        unchanged_time = form.starts_at.data == wall and form.timezone.data == event.timezone
        # An end left as it was keeps the event's length when the start moves.
        unchanged_end = form.ends_at.data == wall_end
        saved = save(
            form,
            lambda: svc.update_event(
                db.session,
                event,
                now=now(),
                actor=current_actor(),
                name=form.name.data or "",
                # Keep the stored instant (seconds included) when the form did not move it.
                starts_at=None if unchanged_time else form.starts_at.data,
                timezone=form.timezone.data or "",
                venue=form.venue.data or "",
                confirm_past=bool(form.confirm_past.data),
                **_mail_fields(form, keep_end=unchanged_end),
            ),
            done="Event saved.",
        )
        if saved:
            return redirect(url_for("events.show", event_id=event.id))
    return _event_form(form, event)


def _mail_fields(form: EventForm, keep_end: bool = False) -> dict[str, Any]:
    """The end and the sender identity as the services take them (a blank end: two hours)."""
    return {
        "ends_at": None if keep_end else (form.ends_at.data or ""),
        "sender_name": form.sender_name.data or "",
        "reply_to": form.reply_to.data or "",
    }


def _event_form(form: EventForm, event: Event | None) -> tuple[str, int]:
    status = 400 if form.errors or form.form_errors else 200
    html = render_template(
        "events/form.html",
        form=form,
        event=event,
        timezones=svc.timezone_choices(),
        default_sender_name=parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[0] or "none",
        active="overview",
    )
    return html, status


def _default_timezone() -> str:
    """The zone of the user's latest event, else UTC: most hosts stay in one place."""
    latest = db.session.scalar(
        visible_events(current_user)
        .where(Event.created_by_id == current_user.id)
        .order_by(Event.id.desc())
        .limit(1)
    )
    return latest.timezone if latest is not None else "UTC"


# --- collaborators ---------------------------------------------------------------------


@bp.get("/events/<int:event_id>/collaborators")
@login_required
def collaborators(event_id: int):
    return _collaborators_page(event_for(event_id), CollaboratorForm())


@bp.post("/events/<int:event_id>/collaborators")
@login_required
def add_collaborator(event_id: int):
    access = event_for(event_id, Role.OWNER)
    form = CollaboratorForm()
    if form.validate():
        saved = save(
            form,
            lambda: svc.add_collaborator(
                db.session,
                access.event,
                form.email.data or "",
                form.role.data or "",
                actor=current_actor(),
                now=now(),
            ),
            done=_now_role_text,
        )
        if saved:
            return redirect(url_for("events.collaborators", event_id=event_id))
    return _collaborators_page(access, form, status=400)


@bp.post("/events/<int:event_id>/collaborators/<int:collaborator_id>/role")
@login_required
def change_role(event_id: int, collaborator_id: int):
    access = event_for(event_id, Role.OWNER)
    _collaborator_or_404(access.event, collaborator_id)
    refusal = ConfirmForm(formdata=None)
    role = request.form.get("role", "")
    saved = save(
        refusal,
        lambda: svc.set_collaborator_role(
            db.session, access.event, collaborator_id, role, actor=current_actor(), now=now()
        ),
        done=_now_role_text,
    )
    return _after_collaborator_change(access, refusal, saved is not None)


@bp.post("/events/<int:event_id>/collaborators/<int:collaborator_id>/remove")
@login_required
def remove_collaborator(event_id: int, collaborator_id: int):
    access = event_for(event_id, Role.OWNER)
    email = _collaborator_or_404(access.event, collaborator_id).user.email
    refusal = ConfirmForm(formdata=None)
    saved = save(
        refusal,
        lambda: svc.remove_collaborator(
            db.session, access.event, collaborator_id, actor=current_actor(), now=now()
        ),
        done=f"Removed {email} from this event.",
    )
    return _after_collaborator_change(access, refusal, saved is not None)


def _now_role_text(collaborator: Collaborator) -> str:
    return f"{collaborator.user.email} is now {collaborator.role.value} of this event."


def _collaborator_or_404(event: Event, collaborator_id: int) -> Collaborator:
    collaborator = svc.get_collaborator(db.session, event, collaborator_id)
    if collaborator is None:
        abort(404, "No such collaborator on this event.")
    return collaborator


def _after_collaborator_change(
    access: EventAccess, refusal: ConfirmForm, saved: bool
) -> Response | tuple[str, int]:
    """The list again (400 with the reason if refused), unless the owner just removed or
    demoted themselves out of it."""
    if not saved:
        return _collaborators_page(
            access, CollaboratorForm(formdata=None), status=400, page_errors=refusal.form_errors
        )
    event_id = access.event.id
    role = role_for(db.session, current_user, event_id)  # what the change left the user
    if role is None:
        return redirect(url_for("events.index"))
    if not role.at_least(Role.OWNER):
        return redirect(url_for("events.show", event_id=event_id))
    return redirect(url_for("events.collaborators", event_id=event_id))


def _collaborators_page(
    access: EventAccess,
    form: CollaboratorForm,
    status: int = 200,
    page_errors: list[str] | None = None,
) -> tuple[str, int]:
    html = render_template(
        "events/collaborators.html",
        form=form,
        collaborators=svc.list_collaborators(db.session, access.event),
        page_error=" ".join(page_errors) if page_errors else None,
        active="collaborators",
        **access.context(),
    )
    return html, status
