"""Site-admin pages: batches across events, failed deliveries by reason, the Outbox.

Everyone but a site admin gets 404 here (the pages do not exist for them).
"""

from __future__ import annotations

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
from flask_login import current_user
from wtforms import SelectChoice

from dashboard.admin.failures import FailureFilter, events_with_failures, failure_groups
from dashboard.admin.forms import BatchFilterForm, FailureFilterForm
from dashboard.audit.current import current_actor
from dashboard.dispatch import scheduler
from dashboard.dispatch.models import Batch, BatchStatus
from dashboard.dispatch.services import retry_failed
from dashboard.dispatch.transports import OUTBOX
from dashboard.errors import Conflict
from dashboard.events.models import Event
from dashboard.extensions import db
from dashboard.messages.mailview import MailView, frame_response
from dashboard.messages.models import Message
from dashboard.web import (
    MAX_ID,
    Page,
    hx_redirect,
    now,
    page_args,
    paginate,
    render_page_or_fragment,
    safe_target,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")

NAV_LINKS = [
    ("admin.batches", "All batches"),
    ("admin.failures", "Failed deliveries"),
    ("admin.suppressions", "Suppressed"),
    ("admin.outbox", "Outbox"),
]
BATCHES_PER_PAGE = 25
GROUPS_PER_PAGE = 20
EXCERPT_CHARS = 240


@bp.app_context_processor
def _admin_nav() -> dict[str, Any]:
    return {"admin_nav_links": NAV_LINKS}


@bp.before_request
def _admins_only() -> Any:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not current_user.is_admin:
        abort(404)
    return None


@bp.get("/")
def index() -> Response:
    return redirect(url_for(".batches"))


@bp.get("/batches")
def batches() -> Any:
    """Recent batches of every event; running, then interrupted, then newest first."""
    form = BatchFilterForm(request.args)
    if not form.validate():
        abort(400, "Unknown status filter; choose one of the listed statuses.")
    stmt = (
        sa.select(Batch, Message, Event)
        .join(Message, Message.id == Batch.message_id)
        .join(Event, Event.id == Message.event_id)
        .order_by(
            sa.case(
                (Batch.status == BatchStatus.RUNNING, 0),
                (Batch.status == BatchStatus.INTERRUPTED, 1),
                else_=2,
            ),
            Batch.started_at.desc(),
            Batch.id.desc(),
        )
    )
    if form.status.data:
        stmt = stmt.where(Batch.status == BatchStatus(form.status.data))
    page = paginate(stmt, *page_args(BATCHES_PER_PAGE), scalars=False)
    return render_page_or_fragment(
        "admin/batches.html",
        "admin/_batches_table.html",
        form=form,
        rows=page,
        status=form.status.data or None,
        now=now(),
    )


def _failure_filters(form: FailureFilterForm) -> FailureFilter | None:
    """The filters of the failures page, or None (with form errors) when they are invalid."""
    choices = [SelectChoice("", "All events")]
    choices += [SelectChoice(str(i), name) for i, name in events_with_failures(db.session)]
    form.event.choices = choices  # type: ignore[assignment]
    if not form.validate():
        return None
    event_id = form.event.data
    if event_id is not None:
        event = db.session.get(Event, event_id)
        if event is None:
            form.event.errors = ["No such event."]  # type: ignore[assignment]
            return None
        if str(event_id) not in {choice.value for choice in choices}:
            choices.append(
                SelectChoice(str(event_id), event.name)
            )  # its failures were just retried
    return FailureFilter(event_id, form.since.data, form.until.data)


@bp.get("/failures")
def failures() -> Any:
    """Failed deliveries of every event, grouped by their last error, with bulk retry."""
    form = FailureFilterForm(request.args)
    filters = _failure_filters(form)
    if filters is None:
        return render_template("admin/failures.html", form=form, groups=[], page=None), 400
    page_no, per_page = page_args(GROUPS_PER_PAGE)
    groups, total = failure_groups(
        db.session, filters, limit=per_page, offset=(page_no - 1) * per_page
    )
    page = Page(items=groups, page=page_no, per_page=per_page, total=total)
    filter_args = {
        key: value
        for key, value in request.args.items()
        if key in ("event", "since", "until") and value
    }
    return render_template(
        "admin/failures.html",
        form=form,
        groups=groups,
        page=page,
        filter_args=filter_args,
        back=request.full_path.rstrip("?"),
    )


@bp.post("/failures/retry")
def retry_failures() -> Response:
    """Bulk "retry failed": one retry batch per chosen message, each in its own transaction."""
    back = safe_target(request.form.get("back"), url_for(".failures"))
    ids = sorted(set(request.form.getlist("message_id", type=int)))
    reason = request.form.get("reason")
    if not ids:
        flash("Choose at least one message to retry.", "error")
        return hx_redirect(back)
    queued: list[int] = []
    refused: list[str] = []
    actor = current_actor()
    for message_id in ids:
        message = db.session.get(Message, message_id) if 0 < message_id <= MAX_ID else None
        if message is None:
            refused.append(f"message {message_id}: no such message")
            continue
        try:
            # A group is one error: its retry covers only the failures with that error,
            # permanent ones too, since the admin chose that group on purpose.
            retry_failed(
                db.session, message, actor, now(), permanent=reason is not None, reason=reason
            )
        except Conflict as error:
            db.session.rollback()
            refused.append(f"“{message.subject}”: {error}")
            continue
        db.session.commit()
        queued.append(message_id)
    if queued:
        scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]
        flash(
            f"Queued {len(queued)} retry batch(es); the failed recipients are sent again.",
            "success",
        )
    for text in refused:
        flash(f"Not retried: {text}", "error")
    return hx_redirect(back)


def _outbox_entry(entry_id: int) -> dict[str, Any]:
    if current_app.config.get("MAIL_TRANSPORT") != "log":
        abort(404)
    entry = next((e for e in OUTBOX.copy() if e.get("id") == entry_id), None)
    if entry is None:
        abort(404, "That e-mail is no longer in the Outbox (it keeps the last 200).")
    return entry


@bp.get("/outbox/<int:entry_id>")
def outbox_mail(entry_id: int) -> str:
    """One e-mail of the Outbox as it was sent: headers, the HTML, the text version."""
    entry = _outbox_entry(entry_id)
    return render_template(
        "admin/outbox_mail.html", entry=entry, mail=MailView.parse(entry["data"])
    )


@bp.get("/outbox/<int:entry_id>/html")
def outbox_frame(entry_id: int) -> Response:
    """The HTML of one Outbox e-mail, as the document of its sandboxed frame."""
    return frame_response(MailView.parse(_outbox_entry(entry_id)["data"]).html)


@bp.get("/outbox")
def outbox() -> str:
    """The last e-mails of the log transport (development), newest first."""
    enabled = current_app.config.get("MAIL_TRANSPORT") == "log"
    entries = list(OUTBOX.copy()) if enabled else []
    return render_template(
        "admin/outbox.html",
        enabled=enabled,
        dry_run=bool(current_app.config.get("DISPATCH_DRY_RUN")),
        entries=entries,
        excerpt_chars=EXCERPT_CHARS,
    )
