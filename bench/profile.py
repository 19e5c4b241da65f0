"""Where the time goes, for the hotspots in RESULTS.md.

``python -m bench.profile [--guests N] [--concurrency C] [--top K] [--cpu]`` builds a
broadcast, sends it to the counting sink with the real ``Dispatcher.poll()`` in this
process and prints the functions with the most cumulative and own time. cProfile sees
only the calling thread, which is the one that matters: it does all database work,
rendering and MIME, while the pool threads only wait on SMTP. Time in
``SenderPool.wait`` is the main thread waiting for the slowest send of a group;
``--cpu`` counts the main thread's CPU instead of the wall clock, so waits drop out.

``python -m bench.profile --pages [--guests N]`` builds the section 3 database and, for
each page found, prints its time and its slowest SQL statements (each re-run on its own
with the same parameters, fetching every row, so an aggregate's cost is counted).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import throughput
from bench.common import app_context, app_env, remove_database
from bench.sink import Sink

log = logging.getLogger(__name__)


def profile_dispatch(
    workdir: Path, guests: int, concurrency: int = 4, top: int = 25, cpu: bool = False
) -> dict[str, Any]:
    from dashboard.dispatch.scheduler import build_dispatcher
    from dashboard.extensions import db

    broadcast = throughput.build_broadcast(workdir / "profile.sqlite3", guests, load_guests=False)
    try:
        with Sink() as sink:
            env = app_env(
                broadcast.template, **sink.mail_env(), DISPATCH_CONCURRENCY=str(concurrency)
            )
            with app_context(env) as app:
                dispatcher = build_dispatcher(app, db.session, worker="bench-profile")
                # CPU of the main thread, or the wall clock (waits included).
                profiler = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()
                started = time.perf_counter()
                profiler.enable()
                report = dispatcher.poll()
                profiler.disable()
                seconds = time.perf_counter() - started
            received = sink.count()
    finally:
        remove_database(broadcast.template)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return {
        "guests": guests,
        "seconds": seconds,
        "msg_per_s": guests / seconds,
        "batches": report.batches,
        "received": received,
        "stats": out.getvalue(),
    }


def profile_pages(workdir: Path, guests: int, top: int = 4) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from bench import growth
    from dashboard.extensions import db

    scale = growth.build(workdir / "pages.sqlite3", guests)
    out = []
    try:
        with app_context(app_env(scale.database)) as app:
            client = app.test_client()
            growth.login(client)
            ids = {
                "event_id": scale.event_id,
                "message_id": scale.message_id,
                "batch_id": scale.batch_id,
            }
            for key, url in growth.discover(app, ids).items():
                if url is None:
                    out.append({"page": key, "url": None})
                    continue
                client.get(url)
                statements: list[tuple[str, Any]] = []

                def capture(_c, _cur, statement, parameters, _ctx, _many):  # type: ignore[no-untyped-def]
                    statements.append((statement, parameters))  # noqa: B023 - used at once

                sa.event.listen(db.engine, "before_cursor_execute", capture)
                started = time.perf_counter()
                status = client.get(url).status_code
                total = (time.perf_counter() - started) * 1000
                sa.event.remove(db.engine, "before_cursor_execute", capture)
                costs = []
                with db.engine.connect() as conn:
                    for sql, params in statements:
                        began = time.perf_counter()
                        conn.exec_driver_sql(sql, params).all()
                        costs.append(((time.perf_counter() - began) * 1000, " ".join(sql.split())))
                costs.sort(reverse=True)
                out.append(
                    {
                        "page": key,
                        "url": url,
                        "status": status,
                        "total_ms": total,
                        "sql_ms": sum(c for c, _ in costs),
                        "statements": len(costs),
                        "slowest": costs[:top],
                    }
                )
    finally:
        remove_database(scale.database)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pages", action="store_true", help="profile the pages of section 3")
    parser.add_argument(
        "--cpu", action="store_true", help="time the main thread's CPU, not the wall clock"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.pages:
        with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
            pages = profile_pages(Path(tmp), args.guests)
        for page in pages:
            if page["url"] is None:
                log.info("%s: missing", page["page"])
                continue
            log.info(
                "%s %s: HTTP %s, %.1f ms, of which SQL about %.1f ms in %s statements",
                page["page"],
                page["url"],
                page["status"],
                page["total_ms"],
                page["sql_ms"],
                page["statements"],
            )
            for ms, sql in page["slowest"]:
                log.info("    %7.1f ms  %s", ms, sql[:240])
        return
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        result = profile_dispatch(Path(tmp), args.guests, args.concurrency, args.top, args.cpu)
    log.info(
        "%s guests in %.2f s (%.0f msg/s under the profiler); sink %s",
        result["guests"],
        result["seconds"],
        result["msg_per_s"],
        result["received"],
    )
    log.info("\n%s", result["stats"])


if __name__ == "__main__":
    main()
