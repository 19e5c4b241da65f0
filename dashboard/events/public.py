"""Guest-facing pages (no account): RSVP and one-click unsubscribe (RFC 8058).

The personal token in the URL is the guest's only credential, so an unknown token is a
plain 404 and these pages never reveal anything beyond the guest's own event.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request

from dashboard.events.forms import ConfirmForm, RsvpForm
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
INVALID_LINK = (
    "This link is not valid (any more). Use the most recent e-mail you received, "
    "or ask the host of the event for a new one."
)


def rsvp_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/r/{token}"


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


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


@bp.route(RSVP_RULE, methods=["GET", "POST"])
def rsvp(token: str):
    guest = _guest_or_404(token)
    if guest.removed:  # off the guest list: no answer to give (unsubscribing still works)
        abort(404, INVALID_LINK)
    if not guest.event.active:  # cancelled or archived: the answer is kept, never changed
        page = render_template("public/rsvp.html", guest=guest, event=guest.event, form=None)
        return page, 409 if request.method == "POST" else 200
    form = RsvpForm(data={"rsvp_status": guest.rsvp_status.value})
    if form.validate_on_submit() and save(
        form, lambda: set_rsvp(db.session, guest, form.rsvp_status.data or "")
    ):
        return render_template("public/rsvp_thanks.html", guest=guest, event=guest.event)
    status = 400 if form.errors else 200
    return render_template("public/rsvp.html", guest=guest, event=guest.event, form=form), status


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
