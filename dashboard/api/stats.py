"""``GET /api/stats`` for monitoring: ``Authorization: Bearer $STATS_TOKEN`` only.

Disabled (404) while STATS_TOKEN is unset. The token is compared in constant time and
is never read from the query string, where it would end up in access logs.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from dashboard.admin.stats import StatsSettings, collect_stats
from dashboard.api import bp, public
from dashboard.db_types import utcnow
from dashboard.extensions import db
from dashboard.web import json_error


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@bp.get("/stats")
@public  # the stats token is not a user: the view checks it itself
def stats() -> Response:
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
    response = jsonify(figures)
    response.headers["Cache-Control"] = "no-store"
    return response


_COUNT = {"type": "integer", "minimum": 0}


def _by(names: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: _COUNT for name in names}}


_DELIVERY_STATUSES = ["pending", "sent", "failed", "skipped"]
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/stats": {
        "get": {
            "operationId": "getStats",
            "summary": "Monitoring figures (Bearer STATS_TOKEN)",
            "description": "Authenticate with `Authorization: Bearer $STATS_TOKEN` (not a user "
            "API token; never in the query string). Disabled (404) when STATS_TOKEN is unset.",
            "tags": ["monitoring"],
            "security": [],
            "responses": {
                "200": {
                    "description": "Counts from the database, computed on each call.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "generated_at": {"type": "string", "format": "date-time"},
                                    "messages": _by(
                                        [
                                            "draft",
                                            "scheduled",
                                            "sending",
                                            "sent",
                                            "sent_with_failures",
                                            "failed",
                                            "cancelled",
                                        ]
                                    ),
                                    "deliveries": {
                                        "type": "object",
                                        "properties": {
                                            "last_24h": _by(_DELIVERY_STATUSES),
                                            "all": _by(_DELIVERY_STATUSES),
                                        },
                                    },
                                    "failed_awaiting_retry": {
                                        **_COUNT,
                                        "description": "Transient failures under the attempts "
                                        "cap with a next attempt scheduled.",
                                    },
                                    "failed_permanently": {
                                        **_COUNT,
                                        "description": "Failed and not retried automatically "
                                        "(permanent error or attempts exhausted).",
                                    },
                                    "batches": _by(["running", "stuck", "interrupted_last_24h"]),
                                    "last_poll_at": {
                                        "type": ["string", "null"],
                                        "format": "date-time",
                                    },
                                    "scheduler": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "401": {
                    "description": "Missing or wrong token.",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "404": {
                    "description": "Disabled: STATS_TOKEN is not set.",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "503": {
                    "description": "The database is unreachable.",
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
    }
}
