"""The suppression list for site admins: search it, and lift an address (audited).

Its routes join the admin blueprint (``admin/routes.py`` imports this module), so only
site admins see them.
"""

from __future__ import annotations

from flask import Response, abort, flash, request, url_for

from dashboard.admin.routes import bp
from dashboard.audit.current import current_actor
from dashboard.extensions import db
from dashboard.suppressions import services
from dashboard.web import (
    hx_redirect,
    now,
    page_args,
    paginate,
    render_page_or_fragment,
    safe_target,
    search_arg,
)

PER_PAGE = 25


@bp.get("/suppressions")
def suppressions() -> Response:
    """Addresses nothing is sent to, newest first; ``q`` searches addresses and reasons."""
    query = search_arg()
    page = paginate(services.search(query), *page_args(PER_PAGE))
    return render_page_or_fragment(
        "admin/suppressions.html",
        "admin/_suppressions_table.html",
        rows=page,
        query=query,
        filter_args={"q": query} if query else {},
        back=request.full_path.rstrip("?"),
    )


@bp.post("/suppressions/<int:suppression_id>/lift")
def lift_suppression(suppression_id: int) -> Response:
    """Take one address off the list: the next sends reach it again."""
    try:
        row = services.lift(db.session, current_actor(), suppression_id, now())
    except LookupError as error:
        db.session.rollback()
        abort(404, str(error))
    db.session.commit()
    flash(f"{row.email} is no longer suppressed; the next sends reach it again.", "success")
    return hx_redirect(safe_target(request.form.get("back"), url_for(".suppressions")))
