"""``GET /api/stats`` for monitoring: ``Authorization: Bearer $STATS_TOKEN`` only.

Disabled (404) while STATS_TOKEN is unset. The token is compared in constant time and
is never read from the query string, where it would end up in access logs.
"""

from __future__ import annotations

import hmac
from typing import Any, Literal

from flask import Response, current_app, request
from pydantic import BaseModel, Field, create_model
from sqlalchemy.exc import SQLAlchemyError

from dashboard.admin.stats import StatsSettings, collect_stats
from dashboard.api import bp, public
from dashboard.api.openapi import operation
from dashboard.api.schemas import Count, IsoText
from dashboard.db_types import utcnow
from dashboard.dispatch.models import DeliveryStatus, Outcome
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from dashboard.web import json_error

# --- the document's shape -----------------------------------------------------------


def _each(enum: type[Any], title: str) -> type[BaseModel]:
    """A count per value of ``enum`` (every value is always present)."""
    fields: dict[str, Any] = {member.value: (Count, ...) for member in enum}
    return create_model(title, **fields)


MessagesByStatus = _each(MessageStatus, "MessagesByStatus")
DeliveriesByStatus = _each(DeliveryStatus, "DeliveriesByStatus")
OutcomesByKind = _each(Outcome, "OutcomesByKind")


class DeliveryStats(BaseModel):
    last_24h: DeliveriesByStatus  # type: ignore[valid-type]
    all: DeliveriesByStatus  # type: ignore[valid-type]


class OutcomeStats(BaseModel):
    """What batches recorded per recipient: a dry run is counted apart from a skip."""

    last_24h: OutcomesByKind  # type: ignore[valid-type]
    all: OutcomesByKind  # type: ignore[valid-type]


class BatchStats(BaseModel):
    running: Count
    stuck: Count = Field(description="Running without a heartbeat for longer than the lease.")
    interrupted_last_24h: Count


class SchedulerState(BaseModel):
    enabled: bool
    poll_seconds: float
    last_poll_at: IsoText | None
    seconds_since_poll: float | None
    status: Literal["disabled", "never polled", "late", "ok"]


class Stats(BaseModel):
    """Counts from the database, computed on each call."""

    generated_at: IsoText
    messages: MessagesByStatus  # type: ignore[valid-type]
    deliveries: DeliveryStats
    outcomes: OutcomeStats
    failed_awaiting_retry: Count = Field(
        description="Transient failures under the attempts cap with a next attempt scheduled."
    )
    failed_permanently: Count = Field(
        description="Failed and not retried automatically (permanent error or attempts exhausted)."
    )
    batches: BatchStats
    last_poll_at: IsoText | None
    scheduler: SchedulerState


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
