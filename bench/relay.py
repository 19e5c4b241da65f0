"""Section 6: a real relay's latency, loopback end to end, and the dispatcher's CPU.

- **Relay latency.** The sink waits 20 ms (then 100 ms) before it answers each message,
  as a real relay does while it queues and checks one. Raw ``smtplib`` over one
  connection is bound by that latency; the dispatcher at ``DISPATCH_CONCURRENCY`` 4 and
  16 should approach 4x and 16x of it (targets: 3.6x and 12x). Its rate is the batch's
  ``started_at`` to ``finished_at``, as in section 1. The same dispatcher composing the
  plain-text e-mail of before (``BENCH_MAIL=plain``) shows what HTML and .ics cost when a
  relay, not the loopback sink's CPU, sets the pace.
- **Loopback end to end.** The sink answering at once; the dispatcher at the default
  settings timed from process start to exit, minus an idle ``run-due`` (the interpreter
  and app start, with nothing to send), against raw ``smtplib`` on one connection sending
  the same pre-rendered bytes (target: at least 1.0x).
- **CPU per message.** User + system time of the dispatcher process (``wait4``), minus
  the idle run's, over the messages sent (target: at most 0.4 ms); and the same for the
  plain-text e-mail of before (``BENCH_MAIL=plain``), to show what HTML and .ics cost,
  and for a sink that does not offer PIPELINING (one command per round trip).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bench.common import app_env, copy_database, median, remove_database, run_dispatcher
from bench.sink import Sink
from bench.throughput import (
    build_broadcast,
    dispatch_on,
    prerender,
    transport_ceiling,
)

log = logging.getLogger(__name__)

#: Messages per run: each run lasts a few seconds at the rate expected of it.
RELAY_SIZES = {
    0.02: {"raw": 100, 4: 600, 16: 2000},
    0.1: {"raw": 30, 4: 200, 16: 800},
}


def _idle(broadcast_db: Path, sink: Sink, workdir: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a ``run-due`` with nothing due (a database already sent)."""
    env = app_env(broadcast_db, **sink.mail_env())
    child = run_dispatcher(env, workdir)
    if child.returncode != 0:
        raise RuntimeError(f"idle dispatcher exited {child.returncode}: {child.stderr[-2000:]}")
    return child.wall_seconds, child.cpu_seconds


def _dispatcher(
    template: Path, broadcast: Any, sink: Sink, workdir: Path, concurrency: int, **env: str
) -> dict[str, Any]:
    database = copy_database(template, workdir / "relay.sqlite3")
    try:
        return dispatch_on(database, broadcast, sink, workdir, concurrency, **env)
    finally:
        remove_database(database)


def relay_latency(
    workdir: Path, delays: tuple[float, ...], runs: int, sizes: dict[float, dict[Any, int]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for delay in delays:
        size = sizes[delay]
        broadcasts = {
            c: build_broadcast(workdir / f"relay-{delay}-{c}.sqlite3", size[c], load_guests=c == 4)
            for c in (4, 16)
        }
        raw_bytes = prerender(broadcasts[4], min(size["raw"], size[4]))
        samples: dict[str, list[float]] = {
            key: [] for key in ("raw", "c4", "c16", "plain_c4", "plain_c16")
        }
        problems: list[str] = []
        with Sink(delay=delay) as sink:
            for round_no in range(1, runs + 1):
                sink.reset()
                samples["raw"].append(len(raw_bytes) / transport_ceiling(sink, raw_bytes))
                sink.reset()
                for c in (4, 16):
                    # The e-mail the application sends, then the plain-text one of before.
                    for key, env in ((f"c{c}", {}), (f"plain_c{c}", {"BENCH_MAIL": "plain"})):
                        result = _dispatcher(
                            broadcasts[c].template, broadcasts[c], sink, workdir, c, **env
                        )
                        samples[key].append(result["msg_per_s"])
                        problems += [
                            f"{delay}s {key} round {round_no}: {p}" for p in result["problems"]
                        ]
                log.info(
                    "relay %.0f ms round %s: %s",
                    delay * 1000,
                    round_no,
                    {k: round(v[-1], 1) for k, v in samples.items()},
                )
        for broadcast in broadcasts.values():
            remove_database(broadcast.template)
        raw = median(samples["raw"])
        out[f"{delay * 1000:.0f}"] = {
            "delay_ms": delay * 1000,
            "sizes": {str(k): v for k, v in size.items()},
            "raw_msg_per_s": raw,
            "c4_msg_per_s": median(samples["c4"]),
            "c16_msg_per_s": median(samples["c16"]),
            "c4_ratio": median(samples["c4"]) / raw,
            "c16_ratio": median(samples["c16"]) / raw,
            "plain_c4_msg_per_s": median(samples["plain_c4"]),
            "plain_c16_msg_per_s": median(samples["plain_c16"]),
            "html_vs_plain_c4": median(samples["c4"]) / median(samples["plain_c4"]),
            "html_vs_plain_c16": median(samples["c16"]) / median(samples["plain_c16"]),
            "runs": {k: [round(v, 1) for v in values] for k, values in samples.items()},
            "problems": problems,
        }
    return out


def _cpu_seconds(
    broadcast: Any, *, sink: Sink, workdir: Path, label: str, problems: list[str], **env: str
) -> float:
    """CPU seconds of one ``run-due`` sending the broadcast (from a fresh copy) to ``sink``."""
    database = copy_database(broadcast.template, workdir / "loopback-run.sqlite3")
    try:
        child = run_dispatcher(app_env(database, **sink.mail_env(), **env), workdir)
        received = sink.reset()
        if child.returncode != 0 or received["messages"] != broadcast.n:
            problems.append(f"{label}: exit {child.returncode}, sink {received}")
        return child.cpu_seconds
    finally:
        remove_database(database)


def loopback(workdir: Path, n: int, runs: int) -> dict[str, Any]:
    """End to end at the default settings, and the CPU per message, on a sink that answers
    at once."""
    broadcast = build_broadcast(workdir / "loopback.sqlite3", n)
    prepared = prerender(broadcast, n)
    raw, ends, cpus, idles, idle_cpus, problems = [], [], [], [], [], []
    plain_cpus, one_at_a_time_cpus = [], []
    with Sink() as sink, Sink(pipelining=False) as old_sink:
        for round_no in range(1, runs + 1):
            sink.reset()
            raw.append(transport_ceiling(sink, prepared))
            sink.reset()
            database = copy_database(broadcast.template, workdir / "loopback-run.sqlite3")
            try:
                started = time.perf_counter()
                env = app_env(database, **sink.mail_env())
                child = run_dispatcher(env, workdir)
                wall = time.perf_counter() - started
                received = sink.reset()
                if child.returncode != 0 or received["messages"] != n:
                    problems.append(f"round {round_no}: exit {child.returncode}, sink {received}")
                idle_wall, idle_cpu = _idle(database, sink, workdir)  # now nothing is due
            finally:
                remove_database(database)
            # The plain-text e-mail of before (``bench.plain``): what HTML costs; and the
            # application's e-mail to a relay without PIPELINING (a round trip a command).
            plain_cpus.append(
                _cpu_seconds(
                    broadcast,
                    sink=sink,
                    workdir=workdir,
                    label=f"plain round {round_no}",
                    problems=problems,
                    BENCH_MAIL="plain",
                )
                - idle_cpu
            )
            one_at_a_time_cpus.append(
                _cpu_seconds(
                    broadcast,
                    sink=old_sink,
                    workdir=workdir,
                    label=f"no PIPELINING round {round_no}",
                    problems=problems,
                )
                - idle_cpu
            )
            ends.append(wall - idle_wall)
            idles.append(idle_wall)
            cpus.append(child.cpu_seconds - idle_cpu)
            idle_cpus.append(idle_cpu)
            log.info(
                "loopback round %s: raw %.2f s, dispatcher %.2f s (idle %.2f s), CPU %.2f s",
                round_no,
                raw[-1],
                ends[-1],
                idle_wall,
                cpus[-1],
            )
    remove_database(broadcast.template)
    return {
        "n": n,
        "raw_seconds": median(raw),
        "dispatcher_seconds": median(ends),
        "idle_seconds": median(idles),
        "ratio": median(raw) / median(ends),
        "cpu_ms_per_message": median(cpus) / n * 1000,
        "plain_cpu_ms_per_message": median(plain_cpus) / n * 1000,
        "no_pipelining_cpu_ms_per_message": median(one_at_a_time_cpus) / n * 1000,
        "idle_cpu_seconds": median(idle_cpus),
        "runs": {
            "raw_s": [round(v, 2) for v in raw],
            "dispatcher_s": [round(v, 2) for v in ends],
            "cpu_ms_per_message": [round(v / n * 1000, 3) for v in cpus],
        },
        "problems": problems,
    }


def run(
    workdir: Path,
    delays: tuple[float, ...] = (0.02, 0.1),
    loopback_n: int = 3000,
    runs: int = 3,
    sizes: dict[float, dict[Any, int]] | None = None,
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    relay = relay_latency(workdir, delays, runs, sizes or RELAY_SIZES)
    end_to_end = loopback(workdir, loopback_n, runs)
    problems = [p for section in relay.values() for p in section["problems"]]
    problems += end_to_end["problems"]
    return {
        "runs": runs,
        "relay": relay,
        "loopback": end_to_end,
        "problems": problems,
        "exactly_once": not problems,
    }
