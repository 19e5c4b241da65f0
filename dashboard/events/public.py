"""Guest-facing pages (no account): RSVP, one-click unsubscribe (RFC 8058), and the event
as a calendar file.

The personal token in the URL is the guest's only credential, so an unknown token is a
plain 404 and these pages never reveal anything beyond the guest's own event.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request

from dashboard.events import calendar
from dashboard.events.forms import GUEST_ANSWERS, ConfirmForm, RsvpForm
from dashboard.events.models import Guest
from dashboard.events.services import guest_by_token, set_rsvp, unsubscribe
from dashboard.extensions import csrf, db
from dashboard.web import now, save

bp = Blueprint("public", __name__)

RSVP_RULE = "/r/<token>"
UNSUBSCRIBE_RULE = "/u/<token>"
#: What a preview puts in place of a guest's token: ``/r/preview`` and ``/u/preview`` are
#: pages of their own that change nothing (a real token is 32 characters, never this).
PREVIEW_TOKEN = "preview"
CALENDAR_RULE = "/r/<token>/event.ics"
ANSWERS = frozenset(choice.value for choice in GUEST_ANSWERS)
INVALID_LINK = (
    "This link is not valid (any more). Use the most recent e-mail you received, "
    "or ask the host of the event for a new one."
)


def rsvp_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/r/{token}"


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


def calendar_url(base_url: str, token: str) -> str:
    return f"{rsvp_url(base_url, token)}/event.ics"


def _guest_or_404(token: str) -> Guest:
    guest = guest_by_token(db.session, token)
    if guest is None:
        abort(404, INVALID_LINK)
    return guest


@bp.after_request
def _private(response: Response) -> Response:
    """Personal pages: never cached by proxies, never indexed."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.route(f"/r/{PREVIEW_TOKEN}", methods=["GET", "POST"], endpoint="rsvp_preview")
@bp.route(f"/u/{PREVIEW_TOKEN}", methods=["GET", "POST"], endpoint="unsubscribe_preview")
@csrf.exempt
def preview_link():
    """Where a link of a preview leads: it says so, and changes nothing."""
    return render_template("public/preview_link.html")


@bp.route(RSVP_RULE, methods=["GET", "POST"])
def rsvp(token: str):
    """GET shows the answer (an e-mail's button pre-selects one with ``?answer=``; only the
    POST of the form saves it, so a mail scanner following the link changes nothing)."""
    guest = _guest_or_404(token)
    if guest.removed:  # off the guest list: no answer to give (unsubscribing still works)
        abort(404, INVALID_LINK)
    if not guest.event.active:  # cancelled or archived: the answer is kept, never changed
        page = render_template("public/rsvp.html", guest=guest, event=guest.event, form=None)
        return page, 409 if request.method == "POST" else 200
    proposed = request.args.get("answer") if request.method == "GET" else None
    proposed = proposed if proposed in ANSWERS else None
    form = RsvpForm(data={"rsvp_status": proposed or guest.rsvp_status.value})
    if form.validate_on_submit() and save(
        form, lambda: set_rsvp(db.session, guest, form.rsvp_status.data or "")
    ):
        return render_template("public/rsvp_thanks.html", guest=guest, event=guest.event)
    status = 400 if form.errors else 200
    return render_template(
        "public/rsvp.html", guest=guest, event=guest.event, form=form, proposed=proposed
    ), status


@bp.get(CALENDAR_RULE)
def calendar_file(token: str) -> Response:
    """The event as this guest's calendar entry (the same invitation the e-mails attach)."""
    guest = _guest_or_404(token)
    base_url = current_app.config["PUBLIC_BASE_URL"]
    invite = calendar.Invite(guest.event, base_url, now())
    response = Response(invite.render(rsvp_url(base_url, guest.token)), mimetype="text/calendar")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{calendar.filename(guest.event)}"'
    )
    return response


@bp.route(UNSUBSCRIBE_RULE, methods=["GET", "POST"])
@csrf.exempt
def unsubscribe_page(token: str):
    """GET asks; POST unsubscribes. The POST has no CSRF check on purpose: mail clients
    send RFC 8058 one-click requests (``List-Unsubscribe=One-Click``) without any page or
    cookie, and the unguessable token in the URL already proves the link came from us."""
    guest = _guest_or_404(token)
    form = ConfirmForm(meta={"csrf": False})
    if form.is_submitted():
        unsubscribe(db.session, guest, now())
        db.session.commit()
        return render_template("public/unsubscribed.html", guest=guest, event=guest.event)
    return render_template("public/unsubscribe.html", guest=guest, event=guest.event, form=form)
