"""Section 3: the cost of growth, at two scales (by default 10k and 100k guests).

Each scale is one database: an event with ``guests`` guests; ten sent messages to all of
them (``10 * guests`` deliveries and as many batch entries, one batch per message; the
first batch failed for 2 in 5, so "page 50 filtered to failed" exists); and ``guests``
scheduled messages with ``send_at`` in the future, spread over 100 other events. At
100k guests that is 1,000,000 delivery rows and 100,000 scheduled messages.

Pages are timed through the Flask test client, logged in as an admin, CSRF off. The
pages are found in ``app.url_map`` at run time; one that does not exist yet is
reported as missing. The scheduler poll is timed with the real ``Dispatcher.poll``,
and the plan of its due query is read with EXPLAIN QUERY PLAN on the statement it
actually executed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    app_context,
    app_env,
    captured_errors,
    median,
    migrate,
    percentile,
    remove_database,
)

log = logging.getLogger(__name__)

OTHER_EVENTS = 100
SENT_MESSAGES = 10


@dataclass(frozen=True)
class Scale:
    database: Path
    guests: int
    deliveries: int
    scheduled: int
    event_id: int
    message_id: int
    batch_id: int
    batch_entries: int
    failed_entries: int
    build_seconds: float


def build(path: Path, guests: int, sent_messages: int = SENT_MESSAGES) -> Scale:
    import sqlalchemy as sa

    from bench import data
    from dashboard.extensions import db

    started = time.perf_counter()
    remove_database(path)
    migrate(path)
    now = datetime.now(UTC)
    with app_context(app_env(path)):
        session = db.session
        session.execute(sa.text("PRAGMA cache_size = -262144"))  # 256 MB while building
        admin = data.admin_user(session)
        event = data.new_event(session, admin, now, name="Big Gala")
        data.add_guests(session, event.id, guests, now)
        history = data.add_sent_history(session, event.id, admin.id, sent_messages, now)
        others = [
            data.new_event(session, admin, now, name=f"Other event {i}").id
            for i in range(OTHER_EVENTS)
        ]
        data.add_scheduled_messages(session, others, admin.id, guests, now)
        session.commit()
        count = session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM deliveries),"
                " (SELECT count(*) FROM messages WHERE status = 'scheduled'),"
                " (SELECT count(*) FROM batch_entries WHERE batch_id = :b),"
                " (SELECT count(*) FROM batch_entries WHERE batch_id = :b AND outcome = 'failed')"
            ),
            {"b": history.failing_batch_id},
        ).one()
        scale = Scale(
            database=path,
            guests=guests,
            deliveries=count[0],
            scheduled=count[1],
            event_id=event.id,
            message_id=history.failing_message_id,
            batch_id=history.failing_batch_id,
            batch_entries=count[2],
            failed_entries=count[3],
            build_seconds=0.0,
        )
    return Scale(**{**scale.__dict__, "build_seconds": time.perf_counter() - started})


# --- finding the pages -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    choose: Callable[[Any], bool]  # a werkzeug Rule -> is it this page?
    query: dict[str, Any]
    wanted: str  # what the brief names, for the "missing" line


def _has(rule: Any, *args: str) -> bool:
    return all(arg in rule.arguments for arg in args)


def _get(rule: Any) -> bool:
    return "GET" in (rule.methods or ())


FAILED_PAGE_50 = {"status": "failed", "outcome": "failed", "page": 50}

TARGETS: tuple[Target, ...] = (
    Target(
        "recipient_count_api",
        "recipient count (API, audience=attending)",
        lambda r: r.endpoint.startswith("api.") and "recipient" in r.endpoint and _get(r),
        {"audience": "attending"},
        "api.*recipient* (GET /api/events/<id>/messages/recipient-count)",
    ),
    Target(
        "recipient_count_fragment",
        "recipient count (htmx fragment, audience=attending)",
        lambda r: r.endpoint == "messages.recipient_count" and _get(r),
        {"audience": "attending"},
        "messages.recipient_count",
    ),
    Target(
        "communications",
        "Communications page (default tab)",
        lambda r: r.endpoint == "messages.communications" and "tab" in (r.defaults or {}),
        {},
        "messages.communications",
    ),
    Target(
        "sent_tab",
        "Communications page, Sent tab",
        lambda r: r.endpoint == "messages.communications" and "tab" not in (r.defaults or {}),
        {"tab": "sent"},
        "messages.communications with <tab>",
    ),
    Target(
        "message_batches",
        "a message's batch list (page)",
        lambda r: r.endpoint == "dispatch.message_detail" and _get(r),
        {},
        "dispatch.message_detail",
    ),
    Target(
        "message_batches_api",
        "a message's batch list (API)",
        lambda r: (
            r.endpoint.startswith("api.")
            and "batch" in r.endpoint
            and _has(r, "message_id")
            and "batch_id" not in r.arguments
            and _get(r)
        ),
        {},
        "api.*batches* (GET /api/events/<id>/messages/<mid>/batches)",
    ),
    Target(
        "batch_entries_failed",
        "page 50 of a batch's entries, failed only (page)",
        lambda r: r.endpoint.startswith("dispatch.") and _has(r, "batch_id") and _get(r),
        FAILED_PAGE_50,
        "dispatch.* batch entries page",
    ),
    Target(
        "batch_entries_failed_api",
        "page 50 of a batch's entries, failed only (API)",
        lambda r: (
            r.endpoint.startswith("api.")
            and "entr" in r.endpoint
            and _has(r, "batch_id")
            and _get(r)
        ),
        FAILED_PAGE_50,
        "api.*entries* (GET /api/batches/<bid>/entries?status=failed)",
    ),
)


def discover(app: Any, ids: dict[str, int]) -> dict[str, str | None]:
    """The URL of each target in this build of the app, or None when it does not exist yet."""
    from flask import url_for

    rules = list(app.url_map.iter_rules())
    urls: dict[str, str | None] = {}
    with app.test_request_context():
        for target in TARGETS:
            found = [rule for rule in rules if target.choose(rule)]
            # Prefer an entries page over a batch summary page when both exist.
            found.sort(key=lambda r: ("entr" not in r.endpoint, len(r.rule)))
            if not found:
                urls[target.key] = None
                continue
            rule = found[0]
            values = {name: ids[name] for name in rule.arguments if name in ids}
            query = {k: v for k, v in target.query.items() if k not in rule.arguments}
            if "tab" in rule.arguments and "tab" not in (rule.defaults or {}):
                values["tab"] = target.query.get("tab", "sent")
            query.pop("tab", None)
            urls[target.key] = url_for(rule.endpoint, **values, **query)
    return urls


def login(client: Any) -> None:
    from flask import url_for

    with client.application.test_request_context():
        url = url_for("auth.login")
    answer = client.post(url, data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    if answer.status_code not in (200, 302, 303):
        raise RuntimeError(f"login answered {answer.status_code}")


def time_get(client: Any, url: str, repeats: int, warmup: int = 2) -> dict[str, Any]:
    for _ in range(warmup):
        client.get(url)
    times: list[float] = []
    statuses: set[int] = set()
    size = 0
    locked = 0
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        statuses.add(answer.status_code)
        body = answer.get_data()
        size = len(body)
        locked += b"database is locked" in body
    return {
        "url": url,
        "median_ms": median(times),
        "p90_ms": percentile(times, 0.9),
        "statuses": sorted(statuses),
        "bytes": size,
        "locked": locked,
    }


# --- the scheduler poll ------------------------------------------------------------------


def time_poll(repeats: int) -> dict[str, Any]:
    """Median of ``Dispatcher.poll()`` with nothing due, and the plan of its due query."""
    import sqlalchemy as sa
    from flask import current_app

    from dashboard.dispatch.scheduler import build_dispatcher
    from dashboard.extensions import db

    dispatcher = build_dispatcher(current_app, db.session, worker="bench-poll")
    for _ in range(3):
        report = dispatcher.poll()
        assert not report.batches, "something was due; the poll benchmark needs nothing due"
    statements: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        dispatcher.poll()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        dispatcher.poll()
        times.append((time.perf_counter() - started) * 1000)
    due = [
        (sql, params)
        for sql, params in statements
        if sql.lstrip().upper().startswith("SELECT")
        and "FROM messages" in sql
        and "send_at <=" in sql
    ]
    plan: list[str] = []
    uses_index = False
    if due:
        sql, params = due[0]
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
        plan = [str(row[-1]) for row in rows]
        uses_index = any("ix_messages_due" in line for line in plan)
    return {
        "median_ms": median(times),
        "p90_ms": percentile(times, 0.9),
        "statements_per_poll": len(statements),
        "due_sql": " ".join(due[0][0].split()) if due else None,
        "plan": plan,
        "uses_partial_index": uses_index,
    }


# --- the section -------------------------------------------------------------------------


def measure(scale: Scale, repeats: int, poll_repeats: int) -> dict[str, Any]:
    from dashboard.extensions import db

    with app_context(app_env(scale.database)) as app:
        client = app.test_client()
        login(client)
        urls = discover(
            app,
            {
                "event_id": scale.event_id,
                "message_id": scale.message_id,
                "batch_id": scale.batch_id,
            },
        )
        pages: dict[str, Any] = {}
        for target in TARGETS:
            url = urls[target.key]
            if url is None:
                pages[target.key] = {"missing": True, "wanted": target.wanted}
                continue
            log.info("growth %s guests: %s", scale.guests, url)
            with captured_errors() as errors:
                pages[target.key] = time_get(client, url, repeats)
            pages[target.key]["errors"] = errors.summary()
        poll = time_poll(poll_repeats)
        db.session.remove()
    return {"pages": pages, "poll": poll}


def run(
    workdir: Path,
    scales: tuple[int, ...] = (10_000, 100_000),
    repeats: int = 15,
    poll_repeats: int = 50,
    sent_messages: int = SENT_MESSAGES,
) -> dict[str, Any]:
    """Section 3. Builds one database per scale, measures it, removes it."""
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"scales": [], "targets": {t.key: t.label for t in TARGETS}}
    for guests in scales:
        log.info("growth: building %s guests x %s sent messages", guests, sent_messages)
        scale = build(workdir / f"growth-{guests}.sqlite3", guests, sent_messages)
        log.info("growth: built in %.1f s; measuring", scale.build_seconds)
        try:
            figures = measure(scale, repeats, poll_repeats)
        finally:
            remove_database(scale.database)
        results["scales"].append(
            {
                "guests": guests,
                "deliveries": scale.deliveries,
                "scheduled": scale.scheduled,
                "batch_entries": scale.batch_entries,
                "failed_entries": scale.failed_entries,
                "build_seconds": scale.build_seconds,
                **figures,
            }
        )
    results["missing"] = sorted(
        {
            key
            for scale in results["scales"]
            for key, page in scale["pages"].items()
            if page.get("missing")
        }
    )
    return results
