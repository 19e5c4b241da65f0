"""The Communications tab: compose with a live count and preview, three tabs, row actions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required

from dashboard.audit import present
from dashboard.audit.current import current_actor
from dashboard.audit.queries import event_log
from dashboard.dispatch import scheduler, states
from dashboard.dispatch.queries import Counts, message_counts, send_times
from dashboard.dispatch.settings import DispatchSettings
from dashboard.errors import Conflict
from dashboard.events.access import EventAccess
from dashboard.events.models import Event, Role
from dashboard.extensions import db
from dashboard.messages import audience as audiences
from dashboard.messages import lists, placeholders, previews
from dashboard.messages import services as svc
from dashboard.messages.forms import ComposeForm
from dashboard.messages.mailview import frame_response
from dashboard.messages.models import Audience, Message, MessageStatus
from dashboard.messages.rendering import event_values, with_event_values
from dashboard.web import (
    Page,
    event_for,
    now,
    page_args,
    paginate,
    render_page_or_fragment,
    save,
    wants_fragment,
)

bp = Blueprint("messages", __name__)

BASE = "/events/<int:event_id>/communications"
TABS = "<any(scheduled, sent, cancelled):tab>"
PER_PAGE = 20
#: htmx listens for this to refresh the tab counts after an action.
CHANGED_EVENT = "messages-changed"


@bp.app_template_filter("with_event_values")
def _with_event_values(subject: str, event: Event) -> str:
    return with_event_values(subject, event)


@bp.context_processor
def _placeholder_names() -> dict[str, Any]:
    return {"placeholder_names": placeholders.PLACEHOLDERS}


def _message(event: Event, message_id: int) -> Message:
    message = lists.get_message_of(db.session, event, message_id)
    if message is None:
        abort(404, "No such message on this event.")
    return message


def _tab(value: str | None) -> lists.Tab:
    try:
        return lists.Tab(value or lists.Tab.SCHEDULED)
    except ValueError:
        return lists.Tab.SCHEDULED


def _wake() -> None:
    scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]


# --- context builders ----------------------------------------------------------------


def _list_context(
    access: EventAccess, tab: lists.Tab, page_no: int, per_page: int
) -> dict[str, Any]:
    event = access.event
    listing: Page = paginate(lists.messages_query(event.id, tab.statuses, tab), page_no, per_page)
    ids = [m.id for m in listing.items] if tab is lists.Tab.SENT else []
    counts: dict[int, Counts] = message_counts(db.session, ids)
    reach = lists.reach(db.session, event, listing.items) if tab is lists.Tab.SCHEDULED else {}
    next_up = lists.next_scheduled(db.session, event.id) if tab is lists.Tab.SCHEDULED else None
    return {
        "next_up": next_up,
        "next_reach": (
            audiences.count_recipients(db.session, event.id, next_up.audience, next_up.channel)
            if next_up is not None
            else None
        ),
        "event": event,
        "tab": tab,
        "tabs": list(lists.Tab),
        "tab_counts": lists.tab_counts(db.session, event.id),
        "listing": listing,
        "counts": counts,
        "times": send_times(db.session, ids),
        "reach": reach,
        "retry_texts": (
            lists.retry_texts(db.session, event, listing.items, now())
            if tab is lists.Tab.SENT
            else {}
        ),
        "can_edit": access.can_edit,
        "now": now(),
    }


def _count_context(event: Event, audience: str | None) -> dict[str, Any]:
    try:
        chosen = Audience(audience or Audience.EVERYONE)
    except ValueError:
        return {"event": event, "recipients": None, "count_error": "Choose a valid audience."}
    recipients = audiences.count_recipients(db.session, event.id, chosen)
    return {"event": event, "recipients": recipients, "count_error": None}


def _preview_context(event: Event, values: Mapping[str, Any]) -> dict[str, Any]:
    """What one real guest of the audience would get (``messages.preview``), and the fields
    that fill the preview's frame."""
    fields = {
        "audience": values.get("audience") or "",
        "channel": values.get("channel") or "",
        "subject": values.get("subject") or "",
        "body": values.get("body") or "",
        "attach_calendar": "y" if _checked(values.get("attach_calendar")) else "",
    }
    shown = previews.preview(
        db.session,
        event,
        DispatchSettings.from_config(current_app.config),
        audience=fields["audience"],
        subject=fields["subject"],
        body=fields["body"],
        attach_calendar=bool(fields["attach_calendar"]),
        channel=fields["channel"],
    )
    return {**shown.context(), "frame_fields": fields}


def _checked(value: Any) -> bool:
    return value not in (None, False, "", "0", "false", "off")


def _page_context(
    access: EventAccess,
    tab: lists.Tab,
    form: ComposeForm,
    *,
    page_no: int = 1,
    alert: dict | None = None,
) -> dict[str, Any]:
    return {
        **_list_context(access, tab, page_no, PER_PAGE),
        **_form_context(access.event, form),
        "form": form,
        "alert": alert,
        "active": "communications",
    }


# --- pages and fragments -------------------------------------------------------------


@bp.get(BASE, defaults={"tab": lists.Tab.SCHEDULED.value})
@bp.get(f"{BASE}/{TABS}")
@login_required
def communications(event_id: int, tab: str) -> Response:
    """The page, or (for htmx) only the list of one tab."""
    page_no, _ = page_args(PER_PAGE)
    form = ComposeForm(formdata=None)
    context = _page_context(event_for(event_id), lists.Tab(tab), form, page_no=page_no)
    return render_page_or_fragment(
        "messages/communications.html", "messages/_message_list.html", oob_tabs=True, **context
    )


@bp.get(f"{BASE}/tab-counts")
@login_required
def tab_counts(event_id: int) -> str:
    event = event_for(event_id).event
    return render_template(
        "messages/_tab_counts.html",
        event=event,
        tab=_tab(request.args.get("tab")),
        tabs=list(lists.Tab),
        tab_counts=lists.tab_counts(db.session, event.id),
    )


@bp.get(f"{BASE}/recipient-count")
@login_required
def recipient_count(event_id: int) -> tuple[str, int]:
    context = _count_context(event_for(event_id).event, request.args.get("audience"))
    return render_template("messages/_recipient_count.html", **context), (
        400 if context["count_error"] else 200
    )


@bp.route(f"{BASE}/preview", methods=["GET", "POST"])
@login_required
def preview(event_id: int) -> str:
    """Read-only, so viewers may use it too; POST because bodies can be 100 KB."""
    event = event_for(event_id).event
    return render_template("messages/_preview.html", **_preview_context(event, request.values))


@bp.post(f"{BASE}/preview/mail")
@login_required
def preview_mail(event_id: int) -> Response:
    """The preview's e-mail as a document of its own, for the sandboxed frame (a POST into
    the frame, as bodies can be 100 KB): its own security policy, links inert."""
    shown = _preview_context(event_for(event_id).event, request.values)
    return frame_response(shown["mail"].html if shown["mail"] else None)


# --- changes ---------------------------------------------------------------------


@bp.post(BASE)
@login_required
def create(event_id: int) -> Response | tuple[str, int]:
    access = event_for(event_id, Role.EDITOR)
    form = ComposeForm()
    if access.event.closed_reason is not None:
        form.form_errors.append(access.event.closed_reason)
    elif form.validate_on_submit():
        saved = save(
            form,
            lambda: svc.create_message(
                db.session, access.event, current_actor(), now=now(), **_compose_fields(form)
            ),
        )
        if saved:
            return _after_change(access.event, saved.value, "saved")
    status = 409 if access.event.closed_reason is not None else 400
    return render_template(
        "messages/communications.html", **_page_context(access, lists.Tab.SCHEDULED, form)
    ), status


@bp.route(f"{BASE}/<int:message_id>/edit", methods=["GET", "POST"])
@login_required
def edit(event_id: int, message_id: int) -> Response | tuple[str, int]:
    event = event_for(event_id, Role.EDITOR).event
    message = _message(event, message_id)
    form = ComposeForm()
    status, alert = 200, None
    if request.method == "GET":
        if not message.editable:
            flash(str(states.refusal(message.status, MessageStatus.DRAFT)), "error")
            return redirect(_tab_url(event, lists.tab_for(message.status)), 303)
        form.fill_from(message, event)
    elif not form.validate_on_submit():
        status = 400
    else:
        try:
            saved = save(
                form,
                lambda: svc.update_message(
                    db.session, message, now=now(), actor=current_actor(), **_compose_fields(form)
                ),
            )
        except Conflict as error:
            db.session.rollback()
            db.session.refresh(message)
            status, alert = 409, _conflict_alert(event, message, str(error))
        else:
            if saved:
                return _after_change(event, message, "updated")
            status = 400
    return _edit_page(event, message, form, alert, status)


def _edit_page(
    event: Event, message: Message, form: ComposeForm, alert: dict | None, status: int
) -> tuple[str, int]:
    """The edit page; after a conflict (``alert.locked``) Save is off and the host's changes
    can still be kept as a new draft."""
    return render_template(
        "messages/edit.html",
        message=message,
        form=form,
        alert=alert,
        locked=bool(alert and alert.get("locked")),
        can_edit=True,
        active="communications",
        **_form_context(event, form),
    ), status


def _conflict_alert(event: Event, message: Message, text: str) -> dict[str, Any]:
    """A refused save, with who changed the message last and when, and where to see it."""
    last = db.session.scalar(event_log(event.id, message.id).limit(1))
    tab = lists.tab_for(message.status)
    link = (
        url_for("dispatch.message_detail", event_id=event.id, message_id=message.id)
        if tab is lists.Tab.SENT
        else _tab_url(event, tab)
    )
    return {
        "kind": "error",
        "text": text,
        "locked": not message.editable,
        "who": f"{present.action_label(last.action)} by {last.actor}" if last else None,
        "when": last.at if last else None,
        "link": link,
        "link_text": "See the message" if tab is lists.Tab.SENT else f"See the {tab.value} tab",
    }


def _compose_fields(form: ComposeForm) -> dict[str, Any]:
    """What the compose form hands to create_message and update_message."""
    return {
        "audience": form.audience.data or "",
        "channel": form.channel.data or "",
        "subject": form.subject.data or "",
        "body": form.body.data or "",
        "mode": form.mode.data or "",
        "send_at": form.send_at_local(),
        "attach_calendar": bool(form.attach_calendar.data),
        "hold_after": form.hold_after.data,
    }


def _form_context(event: Event, form: ComposeForm) -> dict[str, Any]:
    """The live recipient count and preview beside the compose form."""
    return {
        **_count_context(event, form.audience.data),
        **_preview_context(event, form.data),
        "event_values": event_values(event),
    }


def _row_action(
    event_id: int, message_id: int, action: Callable[[Message], str], wake: bool = False
) -> Response:
    """A button of a message row: run ``action`` (it answers the success text), commit and
    ``wake`` dispatch if asked, or answer 409 with the reason when the message's state
    refuses it."""
    access = event_for(event_id, Role.EDITOR)
    message = _message(access.event, message_id)
    try:
        text = action(message)
    except Conflict as error:  # the message's state, or its event, refuses it
        db.session.rollback()
        return _action_answer(access, {"kind": "error", "text": str(error)}, 409)
    db.session.commit()
    alert = {"kind": "success", "text": text}
    if wake:
        _wake()
        alert["watch"] = url_for(
            "dispatch.message_detail", event_id=event_id, message_id=message.id
        )
    return _action_answer(access, alert)


# --- answers ---------------------------------------------------------------------


def _tab_url(event: Event, tab: lists.Tab) -> str:
    return url_for(".communications", event_id=event.id, tab=tab.value)


def _subject(message: Message) -> str:
    return with_event_values(message.subject, message.event)


def _done_text(message: Message, verb: str) -> str:
    subject = _subject(message)
    if message.status is MessageStatus.SENDING:
        return f"“{subject}” is being sent."
    if message.status is MessageStatus.OVERDUE:
        return f"“{subject}” {verb}; it is still overdue until you give it a new time."
    if message.status is MessageStatus.SCHEDULED:
        when = message.send_at.astimezone(message.event.tz) if message.send_at else None
        at = f" for {when:%a %d %b %Y, %H:%M} {when.tzname()}" if when else ""
        return f"“{subject}” is scheduled{at}."
    return f"Draft “{subject}” {verb}."


def _after_change(event: Event, message: Message, verb: str) -> Response:
    """Commit done: wake dispatch for a send-now, then back to the tab the message is on."""
    if message.status is MessageStatus.SENDING:
        _wake()
    flash(_done_text(message, verb), "success")
    # The browser scrolls to the row (and app.css highlights it): the host sees what changed.
    return redirect(f"{_tab_url(event, lists.tab_for(message.status))}#message-{message.id}", 303)


def _action_answer(access: EventAccess, alert: dict[str, str], status: int = 200) -> Response:
    """htmx: the current tab's list with an inline alert; otherwise a redirect or the page."""
    tab = _tab(request.form.get("tab"))
    page_no = request.form.get("page", 1, type=int) or 1
    if wants_fragment():
        context = _list_context(access, tab, max(1, page_no), PER_PAGE)
        if context["listing"].has_prev and not context["listing"].items:
            context = _list_context(access, tab, context["listing"].pages, PER_PAGE)
        response = make_response(
            render_template("messages/_message_list.html", alert=alert, **context), status
        )
        response.headers["HX-Trigger"] = CHANGED_EVENT
        response.headers.add("Vary", "HX-Request")
        return response
    if status < 400:
        flash(alert["text"], alert["kind"])
        return redirect(_tab_url(access.event, tab), 303)
    form = ComposeForm(formdata=None)
    response = make_response(
        render_template(
            "messages/communications.html", **_page_context(access, tab, form, alert=alert)
        ),
        status,
    )
    response.headers.add("Vary", "HX-Request")
    return response
