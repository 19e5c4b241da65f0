"""Helpers shared by every blueprint: page-or-fragment rendering, pagination, errors, filters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from dashboard.extensions import db

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 200


def wants_fragment() -> bool:
    """htmx asks for a fragment, except when it restores history (it needs the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_page_or_fragment(page: str, fragment: str, **context: Any) -> Response:
    """Answer the full page, or only its fragment for htmx; both vary on HX-Request."""
    template = fragment if wants_fragment() else page
    response = make_response(render_template(template, **context))
    response.headers.add("Vary", "HX-Request")
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
    return max(1, page), min(max(1, per_page), MAX_PER_PAGE)


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
    paged = stmt.limit(per_page).offset((page - 1) * per_page)
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


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local"] = format_local

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        if wants_json():
            return json_error(error.code or 500, error.description or error.name)
        template = "errors/404.html" if error.code == 404 else "errors/error.html"
        return render_template(template, error=error), error.code or 500

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
