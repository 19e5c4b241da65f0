"""``GET /api/stats`` for monitoring: ``Authorization: Bearer $STATS_TOKEN`` only.

Disabled (404) while STATS_TOKEN is unset. The token is compared in constant time and
is never read from the query string, where it would end up in access logs.
"""

from __future__ import annotations

import hmac

from flask import Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from dashboard.admin.stats import StatsSettings, collect_stats
from dashboard.api import bp, public
from dashboard.api.openapi import operation
from dashboard.api.schemas import Stats
from dashboard.db_types import utcnow
from dashboard.extensions import db
from dashboard.web import json_error


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@bp.get("/stats")
@public  # the stats token is not a user: the view checks it itself
@operation(ok=Stats, tag="monitoring", errors=(401, 404, 503), security={"stats_token": []})
def stats() -> Response | tuple[Stats, dict[str, str]]:
    """Monitoring figures (Bearer STATS_TOKEN).

    Authenticate with `Authorization: Bearer $STATS_TOKEN` (not a user's API token; never
    in the query string). Disabled (404) while STATS_TOKEN is unset.
    """
    expected = current_app.config.get("STATS_TOKEN")
    if not expected:
        return json_error(404, "The stats endpoint is disabled; set STATS_TOKEN to enable it.")
    given = _bearer()
    if given is None or not hmac.compare_digest(given.encode(), str(expected).encode()):
        response = json_error(401, "Send the stats token as Authorization: Bearer <STATS_TOKEN>.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="stats"'
        return response
    try:
        figures = collect_stats(db.session, utcnow(), StatsSettings.from_config(current_app.config))
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("stats: database error")
        return json_error(503, "The database is unreachable.")
    return Stats.model_validate(figures), {"Cache-Control": "no-store"}
