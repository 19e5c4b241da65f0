"""Section 5: the Resend transport against a local server that follows Resend's API and
answers each request after 50 ms, as a provider across the internet would.

The same dispatcher (``flask --app wsgi dispatch run-due`` in a child process) sends the
same broadcast twice: with batch requests (up to 100 e-mails each, ``RESEND_BATCH_SIZE``
100) and with one request per e-mail (``RESEND_BATCH_SIZE=1``), both under the same
``DISPATCH_RATE_PER_SECOND``. The server counts every e-mail and every request, so the
figures also show that every guest got one e-mail and that no second held more requests
than the rate.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import app_env, copy_database, remove_database, run_dispatcher
from bench.throughput import _parse, build_broadcast, read_outcome
from tests.resend_server import API_KEY, ResendServer

log = logging.getLogger(__name__)

LATENCY = 0.05
#: Batched requests must deliver at least this many times faster than one per e-mail.
SPEEDUP_TARGET = 10.0
MODES = {"batched": 100, "one_per_email": 1}


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def send(
    template: Path, message_id: int, n: int, server: ResendServer, workdir: Path, **env: str
) -> dict[str, Any]:
    """One dispatcher process sends the broadcast from a fresh copy; what it did, checked."""
    database = copy_database(template, workdir / "resend.sqlite3")
    server.state.sent.clear()
    server.state.requests.clear()
    server.state.answers.clear()
    try:
        child = run_dispatcher(
            app_env(
                database,
                MAIL_TRANSPORT="resend",
                RESEND_API_KEY=API_KEY,
                RESEND_API_URL=server.url,
                **env,
            ),
            workdir,
        )
        if child.returncode != 0:
            raise RuntimeError(f"dispatcher exited {child.returncode}: {child.stderr[-2000:]}")
        outcome = read_outcome(database, message_id)
        ids = _provider_ids(database, message_id)
    finally:
        remove_database(database)
    received = Counter(server.recipients())
    batch = outcome["batches"][0]
    seconds = (_parse(batch[7]) - _parse(batch[6])).total_seconds()
    problems = []
    if outcome["deliveries"] != {"sent": n} or len(outcome["batches"]) != 1:
        problems.append(f"deliveries {outcome['deliveries']}, batches {len(outcome['batches'])}")
    if len(received) != n or any(count != 1 for count in received.values()):
        problems.append(f"{len(received)} distinct recipients, {sum(received.values())} e-mails")
    if ids != {email["id"] for email in server.sent}:
        problems.append("the provider ids kept are not those Resend answered")
    return {
        "seconds": seconds,
        "msg_per_s": n / seconds,
        "requests": len(server.requests),
        "busiest_second": busiest_second([r.at for r in server.requests]),
        "problems": problems,
    }


def _provider_ids(database: Path, message_id: int) -> set[str]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT provider_message_id FROM deliveries WHERE message_id = ?", (message_id,)
        ).fetchall()
    finally:
        conn.close()
    return {row[0] for row in rows}


def run(
    workdir: Path, n: int = 10_000, rate: float = 100.0, concurrency: int = 8
) -> dict[str, Any]:
    """Section 5: the same broadcast through batch requests and one request per e-mail."""
    workdir.mkdir(parents=True, exist_ok=True)
    broadcast = build_broadcast(workdir / "broadcast.sqlite3", n, load_guests=False)
    # A newsletter without the calendar file: Resend's batch endpoint carries no attachments
    # (a message with one goes out one request per e-mail, as the other mode does anyway).
    with sqlite3.connect(broadcast.template) as conn:
        conn.execute(
            "UPDATE messages SET attach_calendar = 0 WHERE id = ?", (broadcast.message_id,)
        )
    server = ResendServer(latency=LATENCY).start()
    modes: dict[str, dict[str, Any]] = {}
    try:
        for mode, size in MODES.items():
            log.info("resend: %s recipients, %s", n, mode)
            modes[mode] = send(
                broadcast.template,
                broadcast.message_id,
                n,
                server,
                workdir,
                RESEND_BATCH_SIZE=str(size),
                DISPATCH_CONCURRENCY=str(concurrency),
                DISPATCH_RATE_PER_SECOND=f"{rate:g}",
            )
    finally:
        server.stop()
        remove_database(broadcast.template)
    speedup = modes["batched"]["msg_per_s"] / modes["one_per_email"]["msg_per_s"]
    problems = [f"{mode}: {p}" for mode, f in modes.items() for p in f["problems"]]
    # Slots are 1/rate apart; arrival jitter may bring one more into a one-second window.
    within_rate = all(f["busiest_second"] <= rate * 1.05 + 1 for f in modes.values())
    return {
        "n": n,
        "rate": rate,
        "concurrency": concurrency,
        "latency_ms": LATENCY * 1000,
        "modes": modes,
        "speedup": speedup,
        "within_rate": within_rate,
        "problems": problems,
        "exactly_once": not problems,
    }
