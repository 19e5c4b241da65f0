"""Batch logs for hosts: message detail, batch drill-down, delivery history, live progress.

Every page resolves the event through ``get_event_for`` and then the object *within*
that event, so an id of another event answers 404 (invariant 11). ``/healthz`` lives
here too because it must sit at the root, outside the /admin prefix.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import login_required

from dashboard.admin.stats import StatsSettings, health
from dashboard.audit import present
from dashboard.audit.current import current_actor
from dashboard.audit.queries import event_log
from dashboard.db_types import utcnow
from dashboard.dispatch import live, scheduler, services
from dashboard.dispatch import progress as p
from dashboard.dispatch import queries as q
from dashboard.dispatch.models import Batch, BatchStatus
from dashboard.dispatch.queries import EntryFilter
from dashboard.dispatch.settings import DispatchSettings
from dashboard.errors import Conflict
from dashboard.events.access import EventAccess
from dashboard.events.models import Event, Guest, Role
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus
from dashboard.messages.rendering import with_event_values
from dashboard.web import (
    Page,
    event_for,
    hx_redirect,
    page_args,
    paginate,
    render_page_or_fragment,
    search_arg,
    wants_fragment,
)

bp = Blueprint("dispatch", __name__)

EVENT = "/events/<int:event_id>"
BATCHES_PER_PAGE = 20
TIMELINE_PER_PAGE = 20
#: htmx events sent when a live fragment sees its batch (or message) finish.
BATCH_FINISHED = "batch-finished"
MESSAGE_FINISHED = "message-finished"
#: How often a sending message that waits for its next batch (retry backoff) re-checks.
WAITING_POLL = "every 10s"
#: A scheduled message that is due (the scheduler claims it at its next poll).
DUE_POLL = "every 2s"
SOON = timedelta(hours=1)


@bp.app_template_filter("duration")
def _duration_filter(value: Any) -> str:
    return p.format_duration(value)


@bp.app_template_filter("started_by")
def _started_by_filter(batch: Batch) -> str:
    return p.started_by(batch)


def _progress(batch: Batch, now: Any) -> p.Progress:
    """A batch's progress with what this process has had answered but not yet recorded;
    its heartbeat is late after half a lease (the owner writes it every quarter)."""
    lease = DispatchSettings.from_config(current_app.config).lease
    return p.batch_progress(
        batch, now, live.answered(live.key(db.session, batch.id)), late_after=lease / 2
    )


@bp.app_template_filter("progress")
def _progress_filter(batch: Batch, now: Any) -> p.Progress:
    return _progress(batch, now)


def _entry_filter() -> EntryFilter:
    raw = request.args.get("outcome") or EntryFilter.ALL.value
    try:
        return EntryFilter(raw)
    except ValueError:
        abort(
            400,
            f"Unknown outcome filter “{raw[:40]}”; "
            "use all, sent, failed, skipped, dry_run or cancelled.",
        )


def _fragment_response(
    template: str, status: int = 200, trigger: str | None = None, **context: Any
) -> Response:
    response = make_response(render_template(template, **context), status)
    response.headers.add("Vary", "HX-Request")
    if trigger:
        response.headers["HX-Trigger"] = trigger
    return response


# --- message detail ----------------------------------------------------------------------


def _message_context(access: EventAccess, message: Message, page_no: int = 1) -> dict[str, Any]:
    event, now = access.event, utcnow()
    stmt = sa.select(Batch).where(Batch.message_id == message.id).order_by(Batch.id.desc())
    batches: Page = paginate(stmt, page_no, BATCHES_PER_PAGE)
    counts = q.message_counts(db.session, [message.id])[message.id]
    running = q.running_batch_of(db.session, message.id)
    return {
        "event": event,
        "message": message,
        "batches": batches,
        "progress": {batch.id: _progress(batch, now) for batch in batches.items},
        "counts": counts,
        "running": running,
        "can_edit": access.can_edit,
        "can_retry": _can_retry(message, counts.failed, running),
        **_retry_context(event, message.id),
        "now": now,
        "active": "communications",
    }


def _retry_context(event: Event, message_id: int) -> dict[str, Any]:
    """The failures a retry offers (temporary by default, permanent on purpose) and where
    the refused addresses are listed to be fixed: the newest batch that recorded one."""
    kinds = services.failed_kinds(db.session, message_id)
    fix_batch = q.newest_refusal_batch(db.session, message_id) if kinds[1] else None
    fix_url = (
        url_for(".batch_detail", event_id=event.id, batch_id=fix_batch, outcome="failed")
        if fix_batch
        else url_for("events.guests", event_id=event.id)
    )
    return {"failed_kinds": kinds, "fix_url": fix_url}


def _can_retry(message: Message | None, failed: int, running: Batch | None) -> bool:
    """Failed recipients to retry, nothing running, and no host's pause or stop holding it."""
    held = message is not None and message.status in (MessageStatus.PAUSED, MessageStatus.STOPPED)
    return failed > 0 and running is None and not held


def _message_page(
    access: EventAccess, message: Message, page_no: int = 1, timeline_page: int = 1
) -> dict[str, Any]:
    """Everything the message page shows: the rendered sample, live progress, batches, and
    the timeline of its changes."""
    event = access.event
    return {
        **_message_context(access, message, page_no),
        **_message_progress_context(event, message, access.can_edit),
        **_timeline_context(event, message, timeline_page),
        "went_out": getattr(
            q.send_times(db.session, [message.id]).get(message.id), "started_at", None
        ),
        "sample": q.sample_rendering(
            db.session, event, message, current_app.config["PUBLIC_BASE_URL"]
        ),
    }


@bp.get(f"{EVENT}/messages/<int:message_id>")
@login_required
def message_detail(event_id: int, message_id: int) -> Response:
    """The rendered message, its audience and its batches, newest first."""
    access = event_for(event_id)
    message = q.message_of_event(db.session, access.event, message_id)
    build = _message_context if wants_fragment() else _message_page  # htmx: the batches table
    context = build(access, message, page_args(BATCHES_PER_PAGE)[0])
    return render_page_or_fragment(
        "dispatch/message_detail.html", "dispatch/_batches_table.html", **context
    )


def _timeline_context(event: Event, message: Message, page_no: int) -> dict[str, Any]:
    timeline: Page = paginate(event_log(event.id, message.id), page_no, TIMELINE_PER_PAGE)
    timeline.items = [present.item(entry, event.tz) for entry in timeline.items]
    return {"timeline": timeline}


@bp.get(f"{EVENT}/messages/<int:message_id>/timeline")
@login_required
def message_timeline(event_id: int, message_id: int) -> Response:
    """Who did what to a message, newest first (htmx: only the timeline, for its pager)."""
    access = event_for(event_id)
    message = q.message_of_event(db.session, access.event, message_id)
    page_no = page_args(TIMELINE_PER_PAGE)[0]
    if wants_fragment():
        context = {"event": access.event, "message": message}
        context.update(_timeline_context(access.event, message, page_no))
    else:
        context = _message_page(access, message, timeline_page=page_no)
    return render_page_or_fragment(
        "dispatch/message_detail.html", "dispatch/_timeline.html", **context
    )


def _message_progress_context(
    event: Event, message: Message, can_edit: bool = False
) -> dict[str, Any]:
    """The live piece's context. It polls while a batch runs (a pausing one too) and while
    a sending message waits; a paused message waits for a host, so it stops polling."""
    running = q.running_batch_of(db.session, message.id)
    now = utcnow()
    if running is not None:
        poll = "every 1s"
    elif message.status is MessageStatus.SENDING:
        poll = WAITING_POLL  # between batches: waiting for a retry or a resume
    elif message.status is MessageStatus.SCHEDULED and message.send_at is not None:
        # Go live when the scheduler picks it up: soon if due, slowly if within the hour.
        due_in = message.send_at - now
        poll = DUE_POLL if due_in <= timedelta(0) else WAITING_POLL if due_in <= SOON else None
    else:
        poll = None
    wait = None if running is not None else q.retry_waits(db.session, [message.id]).get(message.id)
    return {
        "event": event,
        "message": message,
        "retry_text": (
            p.retry_text(wait.count, wait.at, event.tz, now)
            if wait is not None and message.status is MessageStatus.SENDING
            else None
        ),
        "live_batch": running,
        "live_progress": _progress(running, now) if running is not None else None,
        "message_figures": q.message_counts(db.session, [message.id])[message.id],
        "poll": poll,
        "can_edit": can_edit,
    }


@bp.get(f"{EVENT}/messages/<int:message_id>/progress")
@login_required
def message_progress(event_id: int, message_id: int) -> Response:
    """Fragment: the running batch of a message, or its final figures (polls itself until done)."""
    access = event_for(event_id)
    message = q.message_of_event(db.session, access.event, message_id)
    context = _message_progress_context(access.event, message, access.can_edit)
    finished = context["poll"] is None and wants_fragment()
    return _fragment_response(
        "dispatch/_message_progress.html", trigger=MESSAGE_FINISHED if finished else None, **context
    )


@bp.post(f"{EVENT}/messages/<int:message_id>/retry-failed")
@login_required
def retry_failed(event_id: int, message_id: int) -> Response:
    """Queue a retry batch of the failed deliveries, wake the dispatcher, show the new batch."""
    access = event_for(event_id, Role.EDITOR)
    message = q.message_of_event(db.session, access.event, message_id)
    try:
        batch = services.retry_failed(
            db.session,
            message,
            current_actor(),
            utcnow(),
            permanent=request.values.get("permanent") == "1",
        )
    except Conflict as error:
        db.session.rollback()
        return _retry_refused(access, message, str(error))
    db.session.commit()
    scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]
    subject = with_event_values(message.subject, access.event)
    flash(f"Retrying the failed recipients of “{subject}” in batch {batch.id}.", "success")
    return hx_redirect(url_for(".batch_detail", event_id=access.event.id, batch_id=batch.id))


def _retry_refused(access: EventAccess, message: Message, text: str) -> Response:
    alert = {"kind": "error", "text": text}
    if wants_fragment():
        return _fragment_response("dispatch/_alert.html", 409, alert=alert)
    db.session.refresh(message)
    context = _message_page(access, message)
    return _fragment_response("dispatch/message_detail.html", 409, alert=alert, **context)


# --- one batch ---------------------------------------------------------------------------


def _entries_context(access: EventAccess, batch: Batch) -> dict[str, Any]:
    event = access.event
    entry_filter = _entry_filter()
    search = search_arg()
    page_no, per_page = page_args(q.ENTRIES_PER_PAGE)
    rows, total = q.batch_entries(
        db.session, batch.id, entry_filter, search, limit=per_page, offset=(page_no - 1) * per_page
    )
    entries = Page(items=rows, page=page_no, per_page=per_page, total=total)
    filter_args: dict[str, Any] = {"event_id": event.id, "batch_id": batch.id}
    if entry_filter is not EntryFilter.ALL:
        filter_args["outcome"] = entry_filter.value
    if search:
        filter_args["q"] = search
    if per_page != q.ENTRIES_PER_PAGE:
        filter_args["per_page"] = per_page
    return {
        "entries": entries,
        "entry_filter": entry_filter,
        "filters": [f for f in EntryFilter if _offered(f, batch)],
        "filter_counts": q.entry_outcome_counts(db.session, batch.id),
        "search": search,
        "filter_args": filter_args,
        "can_fix": access.can_edit,
        # The entries reload by themselves once the batch has finished: the filter's
        # counts, read while it ran, are sent again with them.
        "oob_filters": request.headers.get("HX-Trigger") == "entries",
    }


def _offered(entry_filter: EntryFilter, batch: Batch) -> bool:
    """Dry-run and cancelled filters only on batches that can have such entries."""
    if entry_filter is EntryFilter.DRY_RUN:
        return batch.dry_run
    if entry_filter is EntryFilter.CANCELLED:
        return bool(batch.cancelled) or batch.status is BatchStatus.STOPPED
    return True


def _batch_page_context(access: EventAccess, batch: Batch) -> dict[str, Any]:
    """What the full page adds around the entries fragment."""
    counts = q.message_counts(db.session, [batch.message_id])[batch.message_id]
    running = q.running_batch_of(db.session, batch.message_id)
    message = db.session.get(Message, batch.message_id)
    return {
        "message": message,
        "progress": _progress(batch, utcnow()),
        "started_by": p.started_by_sentence(batch),
        "counts": counts,
        "can_edit": access.can_edit,
        "can_retry": _can_retry(message, counts.failed, running),
        **_retry_context(access.event, batch.message_id),
        "active": "communications",
    }


@bp.get(f"{EVENT}/batches/<int:batch_id>")
@login_required
def batch_detail(event_id: int, batch_id: int) -> Response:
    """Every entry of one batch: filter by outcome, search by guest, page through."""
    access = event_for(event_id)
    event = access.event
    batch = q.batch_of_event(db.session, event, batch_id)
    context = {"event": event, "batch": batch, **_entries_context(access, batch)}
    if not wants_fragment():
        context.update(_batch_page_context(access, batch))
    return render_page_or_fragment(
        "dispatch/batch_detail.html", "dispatch/_entries_table.html", **context
    )


@bp.get(f"{EVENT}/batches/<int:batch_id>/progress")
@login_required
def batch_progress(event_id: int, batch_id: int) -> Response:
    """Fragment: the live progress of one batch; it stops polling once the batch has finished."""
    event = event_for(event_id).event
    batch = q.batch_of_event(db.session, event, batch_id)
    progress = _progress(batch, utcnow())
    finished = not progress.running and wants_fragment()
    return _fragment_response(
        "dispatch/_batch_progress.html",
        trigger=BATCH_FINISHED if finished else None,
        event=event,
        batch=batch,
        progress=progress,
        compact=request.args.get("compact") == "1",
    )


# --- one delivery ------------------------------------------------------------------------


@bp.get(f"{EVENT}/deliveries/<int:delivery_id>")
@login_required
def delivery_detail(event_id: int, delivery_id: int) -> Response:
    """One recipient of one message: its status and every attempt, across batches."""
    event = event_for(event_id).event
    delivery = q.delivery_of_event(db.session, event, delivery_id)
    return render_page_or_fragment(
        "dispatch/delivery_detail.html",
        "dispatch/_delivery_history.html",
        event=event,
        delivery=delivery,
        message=db.session.get(Message, delivery.message_id),
        guest=db.session.get(Guest, delivery.guest_id),
        history=q.delivery_history(db.session, delivery.id),
        compact=request.args.get("compact") == "1",
        active="communications",
    )


# --- health ------------------------------------------------------------------------------


@bp.get("/healthz")
def healthz() -> Response:
    """No authentication: database and scheduler state; 503 when either is unwell."""
    document, healthy = health(db.session, utcnow(), StatsSettings.from_config(current_app.config))
    response = jsonify(document)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
