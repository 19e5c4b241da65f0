"""Section 4: the Communications page while a 10,000-recipient batch sends.

The dispatcher runs in its own process (as in production: the web process and the
dispatcher share only the SQLite file); this process serves the page through the
Flask test client, logged in as an admin, first idle (the message is due but not yet
claimed), then in a loop for as long as the dispatcher runs. A "database is locked"
anywhere (a 500, the page body, the app's error log, the dispatcher's stderr) counts
as an error.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bench import throughput
from bench.common import (
    app_context,
    app_env,
    captured_errors,
    copy_database,
    median,
    percentile,
    remove_database,
)
from bench.growth import login
from bench.sink import Sink

log = logging.getLogger(__name__)


class PageProbe:
    """Requests the pages in turn and keeps every timing, per page and per phase."""

    def __init__(self, client: Any, urls: dict[str, str], gap_seconds: float):
        self.client = client
        self.urls = urls
        self.gap = gap_seconds
        #: (wall-clock start, page, milliseconds) of every request
        self.samples: list[tuple[float, str, float]] = []
        self.errors: list[str] = []

    def once(self) -> None:
        for name, url in self.urls.items():
            at = time.time()
            started = time.perf_counter()
            try:
                answer = self.client.get(url)
            except Exception as error:  # noqa: BLE001 - an error is a figure here, not a crash
                self.errors.append(f"{name}: {type(error).__name__}: {error}")
                continue
            self.samples.append((at, name, (time.perf_counter() - started) * 1000))
            body = answer.get_data()
            if answer.status_code != 200:
                self.errors.append(f"{name}: HTTP {answer.status_code}")
            if b"database is locked" in body:
                self.errors.append(f"{name}: 'database is locked' in the page")
        if self.gap:
            time.sleep(self.gap)

    def times(
        self, start: float = float("-inf"), end: float = float("inf")
    ) -> dict[str, list[float]]:
        """Timings per page of the requests that started between ``start`` and ``end``."""
        out: dict[str, list[float]] = {name: [] for name in self.urls}
        for at, name, ms in self.samples:
            if start <= at <= end:
                out[name].append(ms)
        return out


def _urls(app: Any, event_id: int) -> dict[str, str]:
    from flask import url_for

    with app.test_request_context():
        return {
            "communications": url_for("messages.communications", event_id=event_id),
            "sent_tab": url_for("messages.communications", event_id=event_id, tab="sent"),
        }


def one_run(
    broadcast: throughput.Broadcast,
    sink: Sink,
    workdir: Path,
    concurrency: int,
    idle_requests: int,
    gap_seconds: float,
) -> dict[str, Any]:
    from dashboard.extensions import db

    database = copy_database(broadcast.template, workdir / "load.sqlite3")
    try:
        with app_context(app_env(database)) as app:
            client = app.test_client()
            login(client)
            urls = _urls(app, broadcast.event_id)
            with captured_errors() as app_errors:
                idle = PageProbe(client, urls, 0.0)
                for _ in range(3):
                    idle.once()  # warm-up: templates compiled, connections open
                idle = PageProbe(client, urls, 0.0)
                for _ in range(idle_requests):
                    idle.once()
                busy = PageProbe(client, urls, gap_seconds)
                db.session.remove()
                result = throughput.dispatch_on(
                    database, broadcast, sink, workdir, concurrency, while_running=busy.once
                )
                db.session.remove()
            logged = app_errors.summary()
    finally:
        remove_database(database)
    locked = sum("database is locked" in line for line in logged) + result["locked_errors"]
    locked += sum("database is locked" in line for line in busy.errors)
    # Only requests made between the claim and the end of the batch count as "while
    # sending" (not those during the child's start-up).
    sending = busy.times(*result["window"])
    return {
        "idle_ms": {name: median(values) for name, values in idle.times().items()},
        "busy_ms": {name: median(values) for name, values in sending.items()},
        "busy_p90_ms": {name: percentile(values, 0.9) for name, values in sending.items()},
        "busy_requests": sum(len(values) for values in sending.values()),
        "errors": busy.errors + idle.errors + logged,
        "locked": locked,
        "dispatch_msg_per_s": result["msg_per_s"],
        "problems": result["problems"],
    }


def run(
    workdir: Path,
    n: int = 10_000,
    runs: int = 3,
    concurrency: int = 4,
    idle_requests: int = 20,
    gap_seconds: float = 0.05,
) -> dict[str, Any]:
    """Section 4. Median over runs of the per-run medians; errors summed over all runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    log.info("load: building %s guests", n)
    broadcast = throughput.build_broadcast(workdir / "load-template.sqlite3", n, load_guests=False)
    runs_out = []
    with Sink() as sink:
        for round_no in range(1, runs + 1):
            result = one_run(broadcast, sink, workdir, concurrency, idle_requests, gap_seconds)
            log.info(
                "load round %s: idle %s, sending %s, %s errors",
                round_no,
                {k: round(v, 1) for k, v in result["idle_ms"].items()},
                {k: round(v, 1) for k, v in result["busy_ms"].items()},
                len(result["errors"]),
            )
            runs_out.append(result)
    remove_database(broadcast.template)
    pages = list(runs_out[0]["idle_ms"])
    figures = {}
    for page in pages:
        idle = median([r["idle_ms"][page] for r in runs_out])
        busy = median([r["busy_ms"][page] for r in runs_out])
        figures[page] = {
            "idle_ms": idle,
            "sending_ms": busy,
            "sending_p90_ms": median([r["busy_p90_ms"][page] for r in runs_out]),
            "ratio": busy / idle,
        }
    return {
        "n": n,
        "runs": runs,
        "concurrency": concurrency,
        "gap_seconds": gap_seconds,
        "pages": figures,
        "requests_while_sending": [r["busy_requests"] for r in runs_out],
        "errors": sum(len(r["errors"]) for r in runs_out),
        "error_lines": sorted({line for r in runs_out for line in r["errors"]})[:10],
        "locked": sum(r["locked"] for r in runs_out),
        "dispatch_msg_per_s": median([r["dispatch_msg_per_s"] for r in runs_out]),
        "problems": [p for r in runs_out for p in r["problems"]],
    }
