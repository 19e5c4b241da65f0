"""The benchmark: ``.venv/bin/python -m bench.run [--quick] [--out PATH] [--only SECTIONS]``.

Runs the four sections of the benchmark and writes ``bench/RESULTS.md``. Everything it
creates (databases, logs) lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import growth, load, memory, relay, report, resend, throughput
from bench.common import cpu_seconds

log = logging.getLogger("bench")

SECTIONS = ("throughput", "memory", "growth", "load", "resend", "relay")

#: Sizes of a full run (about 6 minutes on 2 quiet cores, of which the Resend section's one
#: request per e-mail takes 100 s) and of a quick one (about 2).
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "throughput": {
            "n": 10_000,
            "baseline_n": 10_000,
            "slow_baseline_n": 3_000,
            "concurrencies": (1, 4, 8),
            "runs": 3,
        },
        "memory": {"n": 100_000, "runs": 3},
        "growth": {"scales": (10_000, 100_000), "repeats": 15, "poll_repeats": 50},
        "load": {"n": 10_000, "runs": 3},
        "resend": {"n": 10_000, "rate": 100.0, "concurrency": 8},
        "relay": {"loopback_n": 3_000, "runs": 3},
    },
    "quick": {
        "throughput": {
            "n": 3_000,
            "baseline_n": 3_000,
            "slow_baseline_n": 1_000,
            "concurrencies": (1, 4),
            "runs": 3,
        },
        "memory": {"n": 20_000, "runs": 3},
        "growth": {"scales": (2_000, 20_000), "repeats": 7, "poll_repeats": 20},
        "load": {"n": 3_000, "runs": 3},
        "resend": {"n": 2_000, "rate": 100.0, "concurrency": 8},
        "relay": {"loopback_n": 1_000, "runs": 1},
    },
}

RUNNERS = {
    "throughput": throughput.run,
    "memory": memory.run,
    "growth": growth.run,
    "load": load.run,
    "resend": resend.run,
    "relay": relay.run,
}


def run_sections(
    workdir: Path, sizes: dict[str, dict[str, Any]], sections: tuple[str, ...] = SECTIONS
) -> tuple[dict[str, Any], dict[str, float]]:
    """Run the chosen sections with the given sizes; return their results and durations."""
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in sections:
        log.info("section %s: %s", name, sizes[name])
        busy, own = cpu_seconds()
        started = time.perf_counter()
        results[name] = RUNNERS[name](workdir / name, **sizes[name])
        seconds[name] = time.perf_counter() - started
        busy_after, own_after = cpu_seconds()
        other = max(0.0, (busy_after - busy) - (own_after - own))
        results[name]["other_cpu"] = {
            "seconds": other,
            "share": other / (seconds[name] * (os.cpu_count() or 1)),
        }
        log.info(
            "section %s done in %.0f s; other processes used %.0f CPU-seconds meanwhile",
            name,
            seconds[name],
            other,
        )
    return results, seconds


def write_report(
    out: Path,
    results: dict[str, Any],
    *,
    command: str,
    mode: str,
    duration: float,
    section_seconds: dict[str, float],
) -> str:
    meta = {
        "command": command,
        "mode": mode,
        "date": report.now_text(),
        "duration_seconds": duration,
        "section_seconds": section_seconds,
        "machine": report.machine(),
        "notes": NOTES,
    }
    text = report.render(results, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


NOTES = [
    "- The sink is a bare aiosmtpd server that only counts (no message storage, no "
    "Controller thread), so its ceiling is higher than that of the test suite's recording "
    "server; every ratio is against the ceiling measured on this same sink in this run.",
    "- The sink offers PIPELINING, as production relays do (Postfix, Exim, Amazon SES); the "
    "dispatcher then sends a message's envelope and DATA in one write, two round trips a "
    "message instead of the four of raw `smtplib` (the ceiling), which is why it passes "
    "the one-connection ceiling even at `DISPATCH_CONCURRENCY=1`.",
    "- The sink reads each message's content in one piece, as a relay written in C does. "
    "aiosmtpd's own DATA loop runs Python for every line (about 2.6 µs a line here), which "
    "made the sink, not the dispatcher, set the pace on loopback, and made an e-mail cost "
    "what its lines cost a Python relay: the HTML + .ics e-mail has nearly twice the lines "
    'of the plain-text one. Section 1\'s notes keep that figure ("a Python relay"); '
    "section 6 compares the two e-mails against a relay's latency, and the dispatcher's "
    "own CPU for each.",
    "- On 2 CPUs the sink, the dispatcher and (in section 4) the web process share the "
    "same cores; the connection pool helps by overlapping SMTP round-trips with the "
    "dispatcher's own work, up to the point where the sink is CPU-bound.",
    "- Peak RSS is VmHWM of the dispatcher process itself, recorded at its exit "
    "(`bench/child.py`); `getrusage` of a child is not used because on Linux it starts "
    "from the parent's high-water mark.",
    "- Where the time goes: `bench/HOTSPOTS.md`; reproduce with "
    "`.venv/bin/python -m bench.profile --guests 30000` (dispatcher) and "
    "`.venv/bin/python -m bench.profile --pages --guests 100000` (pages).",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 1.5 minutes")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})",
    )
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    mode = "quick" if args.quick else "full"
    command = "python -m bench.run" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv)
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        results, section_seconds = run_sections(Path(tmp), SIZES[mode], sections)
    duration = time.perf_counter() - started
    write_report(
        args.out,
        results,
        command=command,
        mode=mode,
        duration=duration,
        section_seconds=section_seconds,
    )
    log.info("wrote %s after %.1f min", args.out, duration / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
