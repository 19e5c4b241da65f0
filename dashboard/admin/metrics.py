"""``GET /metrics`` in the Prometheus text format: ``Authorization: Bearer $STATS_TOKEN``.

Disabled (404) while STATS_TOKEN is unset, like ``/api/stats``.

Every figure but the send latency is read from the database when Prometheus scrapes, so
it is the same whichever gunicorn worker answers and whichever process sent the mail (the
scheduler in a web worker, a ``flask dispatch run-due`` cron, another machine):

- counters are counts of rows that only grow: the batch entries by outcome, channel and
  transport, and the batches a recovery took over. The daily cleanup deletes batch logs
  older than LOG_RETENTION_DAYS, which Prometheus reads as a counter reset (``rate()`` and
  ``increase()`` handle it);
- gauges are counts of messages in a state now, and the seconds since the scheduler's last
  successful poll;
- the batch duration is a histogram of the finished batches (started to finished).

The send latency can only be measured where the send happens (the dispatcher's sending
threads, ``dispatch.pool.SEND_SECONDS``): with several processes on a host, set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory for all of them (gunicorn workers and
``flask dispatch`` commands) and every scrape adds up all processes' histograms
(prometheus-client's multiprocess mode); without it, a scrape shows the answering
process's own.
"""

from __future__ import annotations

import hmac
import math
import os
from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dashboard.admin.stats import StatsSettings, last_poll_at, stuck_clause
from dashboard.db_types import utcnow
from dashboard.dispatch.models import Batch, BatchEntry, BatchStatus
from dashboard.dispatch.pool import SEND_SECONDS
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus

bp = Blueprint("metrics", __name__)

#: How a batch that a recovery took over begins its error (``Dispatcher.recover``).
TAKEN_OVER = "The dispatcher stopped responding%"
BATCH_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class DatabaseCollector(Collector):
    """The figures of one scrape, read from the database."""

    def __init__(self, session: Session, now: datetime, settings: StatsSettings):
        self.session = session
        self.now = now
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        yield self._sends()
        yield from self._messages()
        yield from self._batches()
        lag = GaugeMetricFamily(
            "dashboard_scheduler_lag_seconds",
            "Seconds since the scheduler's last successful poll (NaN: it never polled).",
        )
        last = last_poll_at(self.session)
        lag.add_metric([], (self.now - last).total_seconds() if last else math.nan)
        yield lag

    def _sends(self) -> Metric:
        family = CounterMetricFamily(
            "dashboard_sends",
            "Recipients processed by batches, by outcome, channel and transport.",
            labels=["outcome", "channel", "transport"],
        )
        rows = self.session.execute(
            sa.select(BatchEntry.outcome, Message.channel, Batch.transport, sa.func.count())
            .join(Batch, Batch.id == BatchEntry.batch_id)
            .join(Message, Message.id == Batch.message_id)
            .group_by(BatchEntry.outcome, Message.channel, Batch.transport)
        )
        for outcome, channel, transport, count in rows:
            family.add_metric([str(outcome), str(channel), transport or "unknown"], count)
        return family

    def _messages(self) -> Iterator[Metric]:
        due = sa.and_(Message.status == MessageStatus.SCHEDULED, Message.send_at <= self.now)
        row = self.session.execute(
            sa.select(
                sa.func.count().filter(due),
                sa.func.count().filter(Message.status == MessageStatus.OVERDUE),
                sa.func.count().filter(Message.status == MessageStatus.PAUSED),
                sa.func.count().filter(Message.status == MessageStatus.SENDING),
            )
        ).one()
        family = GaugeMetricFamily(
            "dashboard_messages",
            "Messages due (scheduled, send time passed), overdue, paused and sending now.",
            labels=["state"],
        )
        for state, count in zip(("due", "overdue", "paused", "sending"), row, strict=True):
            family.add_metric([state], count)
        yield family

    def _batches(self) -> Iterator[Metric]:
        session = self.session
        running, stuck, taken_over = session.execute(
            sa.select(
                sa.func.count().filter(Batch.status == BatchStatus.RUNNING),
                sa.func.count().filter(stuck_clause(self.now, self.settings.lease)),
                sa.func.count().filter(Batch.error.like(TAKEN_OVER)),
            )
        ).one()
        gauge = GaugeMetricFamily(
            "dashboard_batches_running", "Batches running now, and those without a heartbeat"
            " for longer than the lease (stuck).", labels=["heartbeat"]
        )  # fmt: skip
        gauge.add_metric(["ok"], running - stuck)
        gauge.add_metric(["stale"], stuck)
        yield gauge
        takeovers = CounterMetricFamily(
            "dashboard_recovery_takeovers",
            "Batches whose dispatcher stopped responding and that another process took over.",
        )
        takeovers.add_metric([], taken_over)
        yield takeovers
        yield self._durations()

    def _durations(self) -> Metric:
        rows = self.session.execute(
            sa.select(Batch.started_at, Batch.finished_at).where(Batch.finished_at.is_not(None))
        )
        seconds = [(finished - started).total_seconds() for started, finished in rows]
        buckets = [
            (str(bound), sum(1 for value in seconds if value <= bound)) for bound in BATCH_BUCKETS
        ]
        family = HistogramMetricFamily(
            "dashboard_batch_duration_seconds", "How long finished batches ran (start to end)."
        )
        family.add_metric([], [*buckets, ("+Inf", len(seconds))], sum_value=sum(seconds))
        return family


def exposition(session: Session, now: datetime, settings: StatsSettings) -> bytes:
    """The text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(session, now, settings))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(SEND_SECONDS)
    return generate_latest(registry)


def _refusal() -> Response | None:
    expected = current_app.config.get("STATS_TOKEN")
    if not expected:
        return Response("metrics are disabled; set STATS_TOKEN\n", 404, mimetype="text/plain")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if (
        scheme.lower() != "bearer"
        or not given
        or not hmac.compare_digest(given.encode(), str(expected).encode())
    ):
        response = Response(
            "send the stats token as Authorization: Bearer <STATS_TOKEN>\n",
            401,
            mimetype="text/plain",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return None


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus scrape target (Bearer STATS_TOKEN; never in the query string)."""
    refused = _refusal()
    if refused is not None:
        return refused
    settings = StatsSettings.from_config(current_app.config)
    try:
        body = exposition(db.session, utcnow(), settings)
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("metrics: database error")
        return Response("the database is unreachable\n", 503, mimetype="text/plain")
    finally:
        db.session.rollback()  # a read: end it
    return Response(body, 200, {"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
