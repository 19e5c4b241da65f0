"""Host pages of an event's guest list: add, edit, remove and restore, search, CSV import.

They belong to the ``events`` blueprint (``dashboard.events.routes.bp``), so their
endpoints read ``events.guests`` and so on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from werkzeug.exceptions import RequestEntityTooLarge

from dashboard.audit.current import current_actor
from dashboard.errors import ValidationError
from dashboard.events import csv_import
from dashboard.events import guests as guest_list
from dashboard.events import services as svc
from dashboard.events.access import EventAccess
from dashboard.events.forms import (
    GuestForm,
    ImportConfirmForm,
    ImportUploadForm,
)
from dashboard.events.models import Event, Guest, Role, RsvpStatus
from dashboard.events.routes import bp
from dashboard.extensions import db
from dashboard.web import (
    apply_errors,
    event_for,
    now,
    page_args,
    paginate,
    render_page_or_fragment,
    save,
)

GUESTS_PER_PAGE = 25
#: List filters besides the RSVP statuses.
UNSUBSCRIBED, REMOVED = "unsubscribed", "removed"
UPLOAD_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the CSRF field around the file


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
            lambda: guest_list.add_guest(
                db.session, access.event, actor=current_actor(), now=now(), **_guest_fields(form)
            ),
            done=_added_text,
        )
        if saved:  # to the page that shows the new guest, scrolled to and highlighted
            guest = saved.value.guest
            page_no = guest_list.page_of(db.session, guest, GUESTS_PER_PAGE)
            return redirect(
                url_for(
                    "events.guests",
                    event_id=event_id,
                    page=page_no if page_no > 1 else None,
                    _anchor=f"guest-{guest.id}",
                )
            )
    response = _guests_page(access, form)
    response.status_code = 400
    return response


def _added_text(added: guest_list.GuestAdded) -> str:
    guest = added.guest
    if added.restored:
        return (
            f"{guest.name} <{guest.email}> is back on the guest list, with their history: "
            "nothing they already received is sent to them again."
        )
    return f"Added {guest.name} <{guest.email}>."


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
    if rsvp not in RsvpStatus._value2member_map_ and rsvp not in (UNSUBSCRIBED, REMOVED):
        rsvp = ""
    page_number, _ = page_args(GUESTS_PER_PAGE)
    removed = rsvp == REMOVED
    stmt = guest_list.search_guests(event.id, query, None if removed else rsvp, removed=removed)
    page = paginate(stmt, page_number, GUESTS_PER_PAGE)
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


@bp.get("/events/<int:event_id>/guests/<int:guest_id>")
@login_required
def guest_detail(event_id: int, guest_id: int):
    """One guest and every message they were sent, with how each went."""
    access = event_for(event_id)
    guest = _guest_or_404(access.event, guest_id)
    return render_template(
        "events/guest.html",
        guest=guest,
        sent=guest_list.messages_sent_to(db.session, guest),
        active="guests",
        **access.context(),
    )


@bp.route("/events/<int:event_id>/guests/<int:guest_id>/edit", methods=["GET", "POST"])
@login_required
def edit_guest(event_id: int, guest_id: int):
    event = event_for(event_id, Role.EDITOR).event
    guest = _guest_or_404(event, guest_id)
    if guest.removed:
        abort(404, f"{guest.name} was removed from the guest list; restore them to edit them.")
    form = GuestForm(
        data={"name": guest.name, "email": guest.email, "rsvp_status": guest.rsvp_status.value}
    )
    if form.validate_on_submit():
        saved = save(
            form,
            lambda: guest_list.update_guest(
                db.session, guest, actor=current_actor(), now=now(), **_guest_fields(form)
            ),
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
    if guest_list.remove_guest(db.session, guest, actor=current_actor(), now=now()):
        flash(
            f"Removed {guest.name} from the guest list. What they were sent stays in the "
            "history; adding their address again brings them back.",
            "success",
        )
    else:
        flash(f"{guest.name} was already removed from the guest list.", "info")
    db.session.commit()
    return redirect(url_for("events.guests", event_id=event_id))


@bp.post("/events/<int:event_id>/guests/<int:guest_id>/restore")
@login_required
def restore_guest(event_id: int, guest_id: int):
    event = event_for(event_id, Role.EDITOR).event
    guest = _guest_or_404(event, guest_id)
    if guest_list.restore_guest(db.session, guest, actor=current_actor(), now=now()):
        flash(f"{guest.name} is back on the guest list.", "success")
    else:
        flash(f"{guest.name} is on the guest list already.", "info")
    db.session.commit()
    return redirect(url_for("events.guests", event_id=event_id, rsvp=REMOVED))


def _guest_or_404(event: Event, guest_id: int) -> Guest:
    guest = guest_list.get_guest(db.session, event, guest_id)
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


@bp.get("/events/<int:event_id>/guests/import/rejected.csv")
@login_required
def import_rejected_csv(event_id: int):
    """The rejected rows of a previewed upload, with their reasons, as a CSV to fix."""
    event = event_for(event_id, Role.EDITOR).event
    text = _pending().load(event.id, request.args.get("token", ""))
    if text is None:
        abort(404, "This preview has expired or was already imported; upload the file again.")
    plan = csv_import.plan_import(db.session, event, csv_import.parse_csv(text))
    return Response(
        csv_import.rejected_csv(plan),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="rejected-rows-event-{event.id}.csv"'
        },
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
        lambda: csv_import.import_csv(db.session, event, text, now(), actor=current_actor())[0],
        done=lambda plan: f"Import done: {plan.summary()}.",
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
