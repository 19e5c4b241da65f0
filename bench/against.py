"""``python -m bench.against [REV] [--guests N] [--concurrency C] [--rounds R]``: the
dispatcher's CPU per message here against an earlier commit's, on the same machine.

A figure in milliseconds says as much about the machine as about the code: the same
commit spent 0.250 ms a message on one 2-core VM and 0.544 ms on another. This compares
two versions in one run instead. REV (by default 1fd8fa8, the last commit before issue
18's changes; it already sends issue 17's HTML e-mail with its invitation, as this one
does) is checked out in a temporary git worktree; each round sends one broadcast of N
recipients to the counting sink with the real ``Dispatcher.poll()`` in a fresh process
of each version, in turn, and reads ``getrusage`` around the poll (every thread, no
interpreter start-up). Prints the medians and their ratio; issue 18's target, 0.4 ms
against 0.57, is a ratio of 0.70.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT

#: The last commit before issue 18's pipelining, cheap recording and PIPELINING transport.
BEFORE_ISSUE_18 = "1fd8fa8"
#: Issue 18: "dispatcher CPU at most 0.4 ms per message", measured at 0.57.
TARGET_RATIO = 0.4 / 0.57

#: Run in the version's own tree, so it imports that version's ``dashboard`` and ``bench``
#: (the helpers it uses have the same names and meanings in both).
MEASURE = """
import json, resource, sys, tempfile
from pathlib import Path
from bench import throughput
from bench.common import app_context, app_env, remove_database
from bench.sink import Sink
from dashboard.dispatch.scheduler import build_dispatcher
from dashboard.extensions import db

guests, concurrency = int(sys.argv[1]), sys.argv[2]
with tempfile.TemporaryDirectory(prefix="bench-against-") as tmp:
    broadcast = throughput.build_broadcast(Path(tmp) / "a.sqlite3", guests, load_guests=False)
    try:
        with Sink() as sink:
            env = app_env(broadcast.template, **sink.mail_env(), DISPATCH_CONCURRENCY=concurrency)
            with app_context(env) as app:
                dispatcher = build_dispatcher(app, db.session, worker="bench-against")
                before = resource.getrusage(resource.RUSAGE_SELF)
                dispatcher.poll()
                after = resource.getrusage(resource.RUSAGE_SELF)
            received = sink.count()
    finally:
        remove_database(broadcast.template)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({"cpu_ms_per_message": cpu / guests * 1000, "received": received}))
"""


def measure(tree: Path, guests: int, concurrency: int) -> float:
    """One broadcast sent by the version in ``tree``: its CPU per message, in ms."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(guests), str(concurrency)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    received = result["received"]
    if (received["messages"], received["recipients"], received["duplicates"]) != (
        guests,
        guests,
        0,
    ):
        raise RuntimeError(f"the run in {tree} did not send each guest once: {received}")
    return float(result["cpu_ms_per_message"])


def compare(rev: str, guests: int, concurrency: int, rounds: int) -> dict[str, Any]:
    """Interleaved rounds of REV and this checkout; medians and their ratio."""
    with tempfile.TemporaryDirectory(prefix="bench-against-tree-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), rev],
            check=True,
            capture_output=True,
            text=True,
        )
        try:
            then: list[float] = []
            now: list[float] = []
            for _ in range(rounds):
                then.append(measure(tree, guests, concurrency))
                now.append(measure(ROOT, guests, concurrency))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )
    before, after = statistics.median(then), statistics.median(now)
    return {
        "rev_ms": then,
        "here_ms": now,
        "rev_median_ms": before,
        "here_median_ms": after,
        "ratio": after / before,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.against", description=__doc__)
    parser.add_argument("rev", nargs="?", default=BEFORE_ISSUE_18)
    parser.add_argument("--guests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    result = compare(args.rev, args.guests, args.concurrency, args.rounds)
    runs = ", ".join(
        f"{a:.3f}/{b:.3f}" for a, b in zip(result["rev_ms"], result["here_ms"], strict=True)
    )
    print(
        f"CPU per message, {args.guests:,} recipients, DISPATCH_CONCURRENCY={args.concurrency}: "
        f"{args.rev} {result['rev_median_ms']:.3f} ms, here {result['here_median_ms']:.3f} ms, "
        f"ratio {result['ratio']:.2f} (issue 18's 0.4 against 0.57 ms is {TARGET_RATIO:.2f}); "
        f"rounds {args.rev}/here: {runs}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
