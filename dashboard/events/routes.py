"""Host pages: events, collaborators, guests and CSV import.

Every event page resolves its event and the user's role through ``event_for`` (404 for an
event the user cannot see, 403 for a role too weak for the action). Routes parse, call a
service through ``save`` (commit, or the service's errors on the form, answered with 400),
render.
"""

from __future__ import annotations

from pathlib import Path
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
from werkzeug.exceptions import RequestEntityTooLarge

from dashboard.errors import ValidationError
from dashboard.events import csv_import
from dashboard.events import services as svc
from dashboard.events.access import EventAccess, role_for, visible_events
from dashboard.events.forms import (
    CollaboratorForm,
    ConfirmForm,
    EventForm,
    GuestForm,
    ImportConfirmForm,
    ImportUploadForm,
)
from dashboard.events.models import Collaborator, Event, Guest, Role, RsvpStatus
from dashboard.extensions import db
from dashboard.web import (
    Page,
    apply_errors,
    event_for,
    now,
    page_args,
    paginate,
    render_page_or_fragment,
    save,
)

bp = Blueprint("events", __name__)

GUESTS_PER_PAGE = 25
UPLOAD_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the CSRF field around the file
EVENTS_PER_PAGE = 20


# --- events ----------------------------------------------------------------------------


@bp.get("/")
@login_required
def index():
    current = now()
    upcoming = Event.starts_at >= current
    stmt = visible_events(current_user).order_by(
        sa.case((upcoming, 0), else_=1),
        sa.case((upcoming, Event.starts_at)).asc(),
        Event.starts_at.desc(),
        Event.id,
    )
    page: Page = paginate(stmt, *page_args(EVENTS_PER_PAGE))
    totals = svc.guest_totals_by_event(db.session, [event.id for event in page.items])
    return render_template("events/index.html", page=page, totals=totals, now=current)


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
                current_user,
                name=form.name.data or "",
                starts_at=form.starts_at.data,  # type: ignore[arg-type]
                timezone=form.timezone.data or "",
                venue=form.venue.data or "",
                now=now(),
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
        active="overview",
        **access.context(),
    )


@bp.route("/events/<int:event_id>/edit", methods=["GET", "POST"])
@login_required
def edit(event_id: int):
    event = event_for(event_id, Role.EDITOR).event
    wall = svc.local_wall_time(event).replace(second=0, microsecond=0)
    form = EventForm(
        data={
            "name": event.name,
            "starts_at": wall,
            "timezone": event.timezone,
            "venue": event.venue,
        }
    )
    if form.validate_on_submit():
        unchanged_time = form.starts_at.data == wall and form.timezone.data == event.timezone
        saved = save(
            form,
            lambda: svc.update_event(
                db.session,
                event,
                now=now(),
                actor=current_user,
                name=form.name.data or "",
                # Keep the stored instant (seconds included) when the form did not move it.
                starts_at=None if unchanged_time else form.starts_at.data,
                timezone=form.timezone.data or "",
                venue=form.venue.data or "",
            ),
            done="Event saved.",
        )
        if saved:
            return redirect(url_for("events.show", event_id=event.id))
    return _event_form(form, event)


def _event_form(form: EventForm, event: Event | None) -> tuple[str, int]:
    status = 400 if form.errors or form.form_errors else 200
    html = render_template(
        "events/form.html",
        form=form,
        event=event,
        timezones=svc.timezone_choices(),
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
                db.session, access.event, form.email.data or "", form.role.data or ""
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
        lambda: svc.set_collaborator_role(db.session, access.event, collaborator_id, role),
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
        lambda: svc.remove_collaborator(db.session, access.event, collaborator_id),
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


# --- guests ----------------------------------------------------------------------------


@bp.get("/events/<int:event_id>/guests")
@login_required
def guests(event_id: int):
    """The guest list; with HX-Request only its table (active search, filter, pager)."""
    return _guests_page(event_for(event_id), GuestForm(formdata=None))


@bp.post("/events/<int:event_id>/guests")
@login_required
def add_guest(event_id: int):
    access = event_for(event_id, Role.EDITOR)
    form = GuestForm()
    if form.validate():
        saved = save(
            form,
            lambda: svc.add_guest(db.session, access.event, **_guest_fields(form)),
            done=lambda guest: f"Added {guest.name} <{guest.email}>.",
        )
        if saved:
            return redirect(url_for("events.guests", event_id=event_id))
    response = _guests_page(access, form)
    response.status_code = 400
    return response


def _guest_fields(form: GuestForm) -> dict[str, Any]:
    return {
        "name": form.name.data or "",
        "email": form.email.data or "",
        "rsvp_status": form.rsvp_status.data,
    }


def _guests_page(access: EventAccess, form: GuestForm) -> Response:
    event = access.event
    query = request.args.get("q", "").strip()[:200]
    rsvp = request.args.get("rsvp", "")
    if rsvp not in RsvpStatus._value2member_map_ and rsvp != "unsubscribed":
        rsvp = ""
    page_number, _ = page_args(GUESTS_PER_PAGE)
    page = paginate(svc.search_guests(event.id, query, rsvp), page_number, GUESTS_PER_PAGE)
    return render_page_or_fragment(
        "events/guests.html",
        "events/_guest_table.html",
        guest_page=page,
        q=query,
        rsvp=rsvp,
        counts=svc.guest_counts(db.session, event.id),
        statuses=list(RsvpStatus),
        form=form,
        active="guests",
        **access.context(),
    )


@bp.route("/events/<int:event_id>/guests/<int:guest_id>/edit", methods=["GET", "POST"])
@login_required
def edit_guest(event_id: int, guest_id: int):
    event = event_for(event_id, Role.EDITOR).event
    guest = _guest_or_404(event, guest_id)
    form = GuestForm(
        data={"name": guest.name, "email": guest.email, "rsvp_status": guest.rsvp_status.value}
    )
    if form.validate_on_submit():
        saved = save(
            form,
            lambda: svc.update_guest(db.session, guest, **_guest_fields(form)),
            done=lambda saved_guest: f"Saved {saved_guest.name}.",
        )
        if saved:
            return redirect(url_for("events.guests", event_id=event_id))
    status = 400 if form.errors or form.form_errors else 200
    html = render_template(
        "events/guest_form.html", event=event, guest=guest, form=form, active="guests"
    )
    return html, status


@bp.post("/events/<int:event_id>/guests/<int:guest_id>/remove")
@login_required
def remove_guest(event_id: int, guest_id: int):
    event = event_for(event_id, Role.EDITOR).event
    guest = _guest_or_404(event, guest_id)
    name = guest.name
    svc.remove_guest(db.session, guest)
    db.session.commit()
    flash(f"Removed {name} from the guest list.", "success")
    return redirect(url_for("events.guests", event_id=event_id))


def _guest_or_404(event: Event, guest_id: int) -> Guest:
    guest = svc.get_guest(db.session, event, guest_id)
    if guest is None:
        abort(404, "No such guest on this event.")
    return guest


# --- CSV import ------------------------------------------------------------------------


def _pending() -> csv_import.PendingImports:
    return csv_import.PendingImports(Path(current_app.instance_path) / "imports")


@bp.route("/events/<int:event_id>/guests/import", methods=["GET", "POST"])
@login_required
def import_guests(event_id: int):
    """Step 1: upload a CSV and see what would be created, updated and rejected."""
    event = event_for(event_id, Role.EDITOR).event
    limit = csv_import.MAX_UPLOAD_BYTES + UPLOAD_OVERHEAD_BYTES
    try:
        if (request.content_length or 0) > limit:
            raise RequestEntityTooLarge()
        request.max_content_length = limit  # also stops a body that lies about its length
        form = ImportUploadForm()
        submitted = form.validate_on_submit()
    except RequestEntityTooLarge:
        form = ImportUploadForm(formdata=None)
        form.file.errors = [
            f"The file is larger than {csv_import.MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
        ]
        return _import_page(event, form, 413)
    if not submitted:
        return _import_page(event, form, 400 if request.method == "POST" else 200)
    upload = form.file.data
    try:
        text = csv_import.decode_upload(upload.read())
        plan = csv_import.plan_import(db.session, event, csv_import.parse_csv(text))
    except ValidationError as error:
        apply_errors(form, error)
        return _import_page(event, form, 400)
    token = _pending().save(event.id, text)
    return render_template(
        "events/import_preview.html",
        event=event,
        plan=plan,
        filename=upload.filename or "upload.csv",
        confirm=ImportConfirmForm(formdata=None, token=token),
        active="guests",
    )


@bp.post("/events/<int:event_id>/guests/import/confirm")
@login_required
def confirm_import(event_id: int):
    """Step 2: import the rows of the stored upload, re-planned against today's list."""
    event = event_for(event_id, Role.EDITOR).event
    form = ImportConfirmForm()
    token = (form.token.data or "") if form.validate() else ""
    text = _pending().load(event.id, token) if token else None
    if text is None:
        upload = ImportUploadForm(formdata=None)
        upload.form_errors.append(
            "This preview has expired or was already imported; upload the file again."
        )
        return _import_page(event, upload, 400)
    upload = ImportUploadForm(formdata=None)
    saved = save(
        upload,  # the preview accepted this text; only a rule changed since would refuse it
        lambda: csv_import.import_csv(db.session, event, text, now())[1],
        done=lambda counts: (
            f"Import done: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['rejected']} rejected."
        ),
    )
    if not saved:
        return _import_page(event, upload, 400)
    _pending().discard(event.id, token)
    return redirect(url_for("events.guests", event_id=event.id))


def _import_page(event: Event, form: ImportUploadForm, status: int) -> tuple[str, int]:
    html = render_template(
        "events/import.html",
        event=event,
        form=form,
        max_mb=csv_import.MAX_UPLOAD_BYTES // (1024 * 1024),
        active="guests",
    )
    return html, status
