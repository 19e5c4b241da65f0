"""Section 2: peak RSS of the dispatcher process sending one large message.

The dispatcher is the real CLI in a child process (``bench.child``, which records the
child's own VmHWM); the broadcast goes to the counting sink, and afterwards every
guest is checked to have exactly one outcome. For scale, the same figure is taken
for a dispatcher that finds nothing to do (the cost of the process itself).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench import throughput
from bench.common import app_env, median, migrate, remove_database, run_dispatcher
from bench.sink import Sink

log = logging.getLogger(__name__)


def idle_peak_mb(workdir: Path) -> float:
    """Peak RSS of ``dispatch run-due`` on an empty database (imports, app, one poll)."""
    database = workdir / "idle.sqlite3"
    migrate(database)
    try:
        child = run_dispatcher(app_env(database), workdir)
        if child.returncode != 0:
            raise RuntimeError(f"idle dispatcher exited {child.returncode}: {child.stderr[-2000:]}")
        return child.max_rss_kb / 1024
    finally:
        remove_database(database)


def run(workdir: Path, n: int = 100_000, runs: int = 3, concurrency: int = 4) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    log.info("memory: building %s guests", n)
    broadcast = throughput.build_broadcast(workdir / "memory.sqlite3", n, load_guests=False)
    results = []
    with Sink() as sink:
        for round_no in range(1, runs + 1):
            result = throughput.dispatch_once(broadcast, sink, workdir, concurrency)
            log.info(
                "memory round %s: peak %.1f MB, %.0f msg/s",
                round_no,
                result["max_rss_mb"],
                result["msg_per_s"],
            )
            results.append(result)
    remove_database(broadcast.template)
    return {
        "n": n,
        "runs": runs,
        "concurrency": concurrency,
        "peak_rss_mb": median([r["max_rss_mb"] for r in results]),
        "peak_rss_runs_mb": [round(r["max_rss_mb"], 1) for r in results],
        "idle_peak_rss_mb": idle_peak_mb(workdir),
        "msg_per_s": median([r["msg_per_s"] for r in results]),
        "problems": [p for r in results for p in r["problems"]],
        "exactly_once": all(not r["problems"] for r in results),
        "verification": {
            "deliveries": results[-1]["deliveries"],
            "entries": results[-1]["entries"],
            "sink": results[-1]["received"],
        },
    }
