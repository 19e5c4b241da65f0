"""Helpers shared by every blueprint: the event of a page and the user's role on it, safe
redirects, running a service for a form, page-or-fragment rendering, pagination, errors,
filters."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, Response, flash, jsonify, make_response, redirect, render_template, request
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from dashboard import security
from dashboard.errors import ValidationError
from dashboard.events.access import EventAccess, event_access
from dashboard.events.models import Role
from dashboard.extensions import db

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 200
#: Page numbers beyond this read as this one (an empty page), so the offset stays a number
#: every database takes.
MAX_PAGE = 1_000_000
#: The largest id an INTEGER column holds on PostgreSQL: a bigger one names no row.
MAX_ID = 2**31 - 1

T = TypeVar("T")


def now() -> datetime:
    """The current time, aware UTC: what a route hands to a service as ``now``."""
    return datetime.now(UTC)


def event_for(event_id: int, minimum: Role = Role.VIEWER) -> EventAccess:
    """The signed-in user's event and role (one query); 404 if invisible, 403 if too weak."""
    return event_access(db.session, current_user, event_id, minimum)


# --- redirects ---------------------------------------------------------------------------


def safe_target(raw: str | None, fallback: str) -> str:
    """``raw`` if it is a path on this site, else ``fallback``: for every redirect whose
    target the user supplies (login's ``next``, a form's ``back``).

    Browsers read ``//host`` and ``/\\host`` as another host and drop tabs and newlines
    inside a URL, so only a plain absolute path without those passes.
    """
    if not raw or not raw.startswith("/") or raw.startswith("//"):
        return fallback
    if "\\" in raw or any(unicodedata.category(char) == "Cc" for char in raw):
        return fallback
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return fallback
    return raw


def hx_redirect(url: str) -> Response:
    """Go to ``url``: htmx is told with HX-Redirect (it would follow a redirect inside its
    request and swap the next page into the target), a browser gets a 303."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


# --- forms and services ------------------------------------------------------------------


def apply_errors(form: FlaskForm, error: ValidationError) -> None:
    """Put a service's field errors on the form's fields; the rest on ``form.form_errors``."""
    for name, message in error.errors.items():
        field = form[name] if name != "__all__" and name in form else None
        if field is not None:
            field.errors = [*field.errors, message]
        else:
            form.form_errors.append(message)


@dataclass(frozen=True)
class Saved(Generic[T]):
    """What a service returned once its change was committed."""

    value: T


def save(
    form: FlaskForm, call: Callable[[], T], done: str | Callable[[T], str] | None = None
) -> Saved[T] | None:
    """Run a service call and commit it, then flash ``done`` (a text, or made from the result).

    A ValidationError is rolled back and its errors put on ``form``; the answer is then None
    and the route renders the form again. Any other error is rolled back and raised.
    """
    try:
        value = call()
    except ValidationError as error:
        db.session.rollback()
        apply_errors(form, error)
        return None
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    if done is not None:
        flash(done(value) if callable(done) else done, "success")
    return Saved(value)


# --- answers -----------------------------------------------------------------------------


def wants_fragment() -> bool:
    """htmx asks for a fragment, except when it restores history or follows a boosted link
    or form (both replace the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
        and request.headers.get("HX-Boosted") != "true"
    )


def render_page_or_fragment(page: str, fragment: str, **context: Any) -> Response:
    """Answer the full page, or only its fragment for htmx; both vary on the htmx headers."""
    template = fragment if wants_fragment() else page
    response = make_response(render_template(template, **context))
    response.headers.add("Vary", "HX-Request, HX-Boosted")
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or (request.accept_mimetypes.best == "application/json")


def json_error(status: int, message: str, **extra: Any) -> Response:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


@dataclass
class Page:
    items: Sequence[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def as_json(self, serialize) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        return {
            "items": [serialize(item) for item in self.items],
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
        }


def page_args(default_per_page: int = DEFAULT_PER_PAGE) -> tuple[int, int]:
    """Read ``page`` and ``per_page`` from the query string, clamped to sane values."""
    page = request.args.get("page", 1, type=int) or 1
    per_page = request.args.get("per_page", default_per_page, type=int) or default_per_page
    return clamp_page(page), min(max(1, per_page), MAX_PER_PAGE)


def clamp_page(page: int) -> int:
    return min(max(1, page), MAX_PAGE)


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: a number no row can have (beyond MAX_ID) matches no
    route, so it is a 404 like any unknown id, never a database error."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


#: The longest search text a list accepts (longer input is cut, never refused).
MAX_SEARCH = 200


def search_arg(name: str = "q") -> str:
    """The search text of the query string, trimmed and cut to ``MAX_SEARCH``."""
    return (request.args.get(name) or "").strip()[:MAX_SEARCH]


def paginate(stmt: sa.Select[Any], page: int, per_page: int, scalars: bool = True) -> Page:
    """Count with one aggregate and fetch one page with LIMIT/OFFSET."""
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    )
    paged = stmt.limit(per_page).offset((clamp_page(page) - 1) * per_page)
    result = db.session.execute(paged)
    items = result.scalars().all() if scalars else result.all()
    return Page(items=items, page=page, per_page=per_page, total=total or 0)


def format_local(
    value: datetime | None, tz: str | ZoneInfo | None = None, fmt: str = "%a %d %b %Y, %H:%M"
) -> str:
    """A UTC datetime shown in the event's time zone, with the zone's abbreviation."""
    if value is None:
        return ""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    local = value.astimezone(zone) if zone else value
    return f"{local.strftime(fmt)} {local.tzname()}"


def utc_offset(tz: str | ZoneInfo, at: datetime | None = None) -> str:
    """A zone's offset from UTC at ``at`` (default: now), e.g. "UTC+01:00" or "UTC−03:30"."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    delta = (at or datetime.now(UTC)).astimezone(zone).utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta else 0
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def install_converters(app: Flask) -> None:
    """Before any route is added: ids are bounded (see IdConverter)."""
    app.url_map.converters["int"] = IdConverter


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local"] = format_local
    app.jinja_env.filters["utc_offset"] = utc_offset

    @app.before_request
    def _refuse_hostile_input() -> Response | tuple[str, int] | None:
        try:
            security.check_request()
        except security.HostileInput as error:
            return security.refusal(error, wants_json())
        return None

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        # A failed statement leaves the session unusable; the page below loads the user again.
        db.session.rollback()
        if wants_json():
            return json_error(error.code or 500, error.description or error.name)
        template = "errors/404.html" if error.code == 404 else "errors/error.html"
        return render_template(template, error=error), error.code or 500

    @app.after_request
    def _security_headers(response: Response) -> Response:
        return security.security_headers(app, response)
