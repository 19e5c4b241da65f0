"""RESULTS.md: the figures, the machine, the versions, the date and the command."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT

LIBRARIES = (
    "Flask",
    "Werkzeug",
    "SQLAlchemy",
    "Flask-SQLAlchemy",
    "Flask-Mail",
    "Flask-Login",
    "APScheduler",
    "aiosmtpd",
)

#: The targets the benchmark checks.
THROUGHPUT_TARGET = 0.7
THROUGHPUT_STRETCH = 1.0
#: The HTML e-mail with its calendar invitation against the plain-text one (same run).
HTML_COST_TARGET = 0.85
MEMORY_TARGET_MB = 150.0
PAGE_TARGET_MS = 50.0
POLL_TARGET_MS = 5.0
LOAD_TARGET_RATIO = 3.0
#: Share of the machine's CPU taken by other processes above which a section is flagged.
CONTENTION_SHARE = 0.10


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git(*args: str) -> str:
    """Read-only git queries (the commit the figures belong to)."""
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain"))
    return {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _memory_total(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "libraries": versions,
        "commit": (commit + (" (with uncommitted changes)" if dirty else "")) or "unknown",
    }


# --- formatting --------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _growth_word(factor: float, scale_factor: float) -> str:
    """How a figure grew when the data grew ``scale_factor`` times (10 by default)."""
    if math.isnan(factor):
        return "n/a"
    if factor <= 1.5:
        return "flat (log n or better)"
    if factor <= scale_factor**0.5:
        return "sub-linear"
    if factor <= scale_factor * 0.6:
        return "between sqrt(n) and n"
    return "**linear in n**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --- sections ----------------------------------------------------------------------------


def _summary(results: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    tp = results.get("throughput")
    if tp:
        figures = tp["figures"]
        for c in tp["concurrencies"]:
            f = figures[f"dispatcher_c{c}"]
            rows.append(
                [
                    f"dispatcher, DISPATCH_CONCURRENCY={c}, {tp['n']:,} recipients",
                    f"{f['msg_per_s']:.0f} msg/s = {f['ratio']:.2f}x ceiling",
                    f">= {THROUGHPUT_TARGET}x (stretch {THROUGHPUT_STRETCH}x)",
                    _verdict(f["ratio"] >= THROUGHPUT_TARGET)
                    + (" (stretch met)" if f["ratio"] >= THROUGHPUT_STRETCH else ""),
                ]
            )
        for c in tp["concurrencies"]:
            rows.append(_html_cost_row(tp, c))
        rows += _html_cost_notes(tp)
        rows.append(
            [
                "exactly one outcome per guest (every dispatcher run)",
                "yes" if tp["exactly_once"] else "NO",
                "yes",
                _verdict(tp["exactly_once"]),
            ]
        )
    relay = results.get("relay")
    if relay:
        rows += _relay_rows(relay)
    mem = results.get("memory")
    if mem:
        rows.append(
            [
                f"peak RSS sending {mem['n']:,} recipients",
                f"{mem['peak_rss_mb']:.0f} MB",
                f"< {MEMORY_TARGET_MB:.0f} MB",
                _verdict(mem["peak_rss_mb"] < MEMORY_TARGET_MB and mem["exactly_once"]),
            ]
        )
        if tp:
            ceiling = tp["figures"]["ceiling"]["msg_per_s"]
            rows.append(
                [
                    f"dispatcher throughput sending {mem['n']:,} recipients (same runs)",
                    f"{mem['msg_per_s']:.0f} msg/s = {mem['msg_per_s'] / ceiling:.2f}x ceiling",
                    "(information: the target is set at 10,000)",
                    "-",
                ]
            )
    growth = results.get("growth")
    if growth and growth["scales"]:
        largest = growth["scales"][-1]
        for key, label in growth["targets"].items():
            page = largest["pages"].get(key, {})
            if page.get("missing"):
                rows.append([f"{label} at {largest['guests']:,} guests", "missing", "< 50 ms", "-"])
                continue
            ok = page["median_ms"] < PAGE_TARGET_MS and page["statuses"] == [200]
            shown = _ms(page["median_ms"])
            if page["statuses"] != [200]:
                shown += f" (HTTP {', '.join(map(str, page['statuses']))})"
            rows.append(
                [f"{label} at {largest['guests']:,} guests", shown, "< 50 ms", _verdict(ok)]
            )
        poll = largest["poll"]
        rows.append(
            [
                f"scheduler poll, nothing due, {largest['scheduled']:,} scheduled messages",
                _ms(poll["median_ms"])
                + (
                    ", uses ix_messages_due" if poll["uses_partial_index"] else ", NO partial index"
                ),
                "< 5 ms, partial index",
                _verdict(poll["median_ms"] < POLL_TARGET_MS and poll["uses_partial_index"]),
            ]
        )
    load = results.get("load")
    if load:
        page = load["pages"]["communications"]
        rows.append(
            [
                "Communications page while sending / idle",
                f"{page['ratio']:.1f}x ({_ms(page['sending_ms'])} / {_ms(page['idle_ms'])})",
                f"<= {LOAD_TARGET_RATIO:.0f}x",
                _verdict(page["ratio"] <= LOAD_TARGET_RATIO),
            ]
        )
        rows.append(
            [
                '"database is locked" errors while sending',
                str(load["locked"]),
                "0",
                _verdict(load["locked"] == 0),
            ]
        )
    busy = [
        f"{name} ({section['other_cpu']['share']:.0%})"
        for name, section in results.items()
        if section.get("other_cpu", {}).get("share", 0) > CONTENTION_SHARE
    ]
    warning = (
        [
            "Other processes took more than "
            f"{CONTENTION_SHARE:.0%} of the CPU during: {', '.join(busy)}; those figures are "
            "pessimistic. Run again on a quiet machine to compare against the targets.",
            "",
        ]
        if busy
        else []
    )
    return [
        "## Summary against the targets",
        "",
        *warning,
        *_table(["figure (median)", "measured", "target", "verdict"], rows),
        "",
    ]


def _html_cost_row(tp: dict[str, Any], c: int) -> list[str]:
    """The HTML e-mail with its invitation against the plain-text one, same run and sink."""
    html, plain = tp["figures"][f"dispatcher_c{c}"], tp["figures"][f"plain_c{c}"]
    share = html["msg_per_s"] / plain["msg_per_s"]
    return [
        f"HTML + .ics against plain text, DISPATCH_CONCURRENCY={c}",
        f"{html['msg_per_s']:.0f} / {plain['msg_per_s']:.0f} msg/s = {share:.2f}x "
        f"(of their own ceilings: {html['ratio']:.2f}x / {plain['ratio']:.2f}x)",
        f">= {HTML_COST_TARGET}x",
        _verdict(share >= HTML_COST_TARGET),
    ]


def _share(part: float, whole: float) -> str:
    """``part / whole`` as a ratio, or n/a when a tiny run measured nothing."""
    return f"{part / whole:.2f}x" if whole > 0 else "n/a"


def _relay_rows(relay: dict[str, Any]) -> list[list[str]]:
    """Section 6's targets, and what HTML costs when a relay sets the pace."""
    rows = []
    for r in relay["relay"].values():
        for c, target in ((4, 3.6), (16, 12)):
            ratio = r[f"c{c}_ratio"]
            rows.append(
                [
                    f"relay answering in {r['delay_ms']:.0f} ms: dispatcher, "
                    f"DISPATCH_CONCURRENCY={c}, against raw smtplib on one connection",
                    f"{r[f'c{c}_msg_per_s']:.1f} / {r['raw_msg_per_s']:.1f} msg/s = {ratio:.2f}x",
                    f">= {target:g}x",
                    _verdict(ratio >= target),
                ]
            )
    for r in relay["relay"].values():
        for c in (4, 16):
            share = r[f"html_vs_plain_c{c}"]
            rows.append(
                [
                    f"HTML + .ics against plain text, relay answering in {r['delay_ms']:.0f} ms, "
                    f"DISPATCH_CONCURRENCY={c}",
                    f"{r[f'c{c}_msg_per_s']:.1f} / {r[f'plain_c{c}_msg_per_s']:.1f} msg/s "
                    f"= {share:.2f}x",
                    f">= {HTML_COST_TARGET}x",
                    _verdict(share >= HTML_COST_TARGET),
                ]
            )
    loop = relay["loopback"]
    cpu, plain_cpu = loop["cpu_ms_per_message"], loop["plain_cpu_ms_per_message"]
    rows += [
        [
            f"loopback end to end, {loop['n']:,} messages at the default settings, against raw "
            "smtplib on one connection",
            f"{loop['ratio']:.2f}x",
            ">= 1.0x",
            _verdict(loop["ratio"] >= 1.0),
        ],
        [
            "dispatcher CPU per message (user + system)",
            f"{cpu:.3f} ms",
            "<= 0.4 ms",
            _verdict(cpu <= 0.4),
        ],
        [
            "dispatcher CPU per message, relay without PIPELINING (one command per round trip)",
            f"{loop['no_pipelining_cpu_ms_per_message']:.3f} ms",
            "(information)",
            "-",
        ],
        [
            "dispatcher CPU per message, plain text against HTML + .ics",
            f"{plain_cpu:.3f} / {cpu:.3f} ms = " + _share(plain_cpu, cpu),
            "(information)",
            "-",
        ],
    ]
    return rows


def _html_cost_notes(tp: dict[str, Any]) -> list[list[str]]:
    """Where the difference comes from: the sink receiving a bigger e-mail, and our CPU."""
    html, plain = tp["figures"]["ceiling"], tp["figures"]["plain_ceiling"]
    line, line_plain = tp["figures"]["line_ceiling"], tp["figures"]["line_plain_ceiling"]
    compose, sink_cpu = tp["compose_us"], tp["sink_cpu_us"]
    return [
        [
            "the sink alone: transport ceiling of the HTML + .ics e-mail against plain text",
            f"{html['msg_per_s']:.0f} / {plain['msg_per_s']:.0f} msg/s = "
            f"{html['msg_per_s'] / plain['msg_per_s']:.2f}x "
            f"({tp['sizes']['html'] / 1024:.1f} KB in {tp['sizes']['html_lines']:.0f} lines / "
            f"{tp['sizes']['plain'] / 1024:.1f} KB in {tp['sizes']['plain_lines']:.0f} lines)",
            "(information)",
            "-",
        ],
        [
            "the sink's own CPU per e-mail received, HTML + .ics / plain text",
            f"{sink_cpu['html']:.0f} µs / {sink_cpu['plain']:.0f} µs = "
            + _share(sink_cpu["plain"], sink_cpu["html"]),
            "(information)",
            "-",
        ],
        [
            "a Python relay (aiosmtpd's own DATA loop, Python code for every line): transport "
            "ceiling HTML + .ics / plain text, and its CPU per e-mail",
            f"{line['msg_per_s']:.0f} / {line_plain['msg_per_s']:.0f} msg/s = "
            f"{line['msg_per_s'] / line_plain['msg_per_s']:.2f}x; "
            f"{sink_cpu['line_html']:.0f} µs / {sink_cpu['line_plain']:.0f} µs",
            "(information)",
            "-",
        ],
        [
            "composing one e-mail (render, layout values, MIME), HTML + .ics / plain text",
            f"{compose['html']:.0f} µs / {compose['plain']:.0f} µs",
            "(information)",
            "-",
        ],
    ]


def _throughput(tp: dict[str, Any]) -> list[str]:
    names = {
        "ceiling": f"transport ceiling: smtplib.sendmail of pre-rendered bytes, one connection ({tp['baseline_n']:,} messages)",
        "email_message": f"smtplib.send_message of an EmailMessage built per recipient, one connection ({tp['slow_baseline_n']:,})",
        "flask_mail": f"naive Flask-Mail loop: Mail.send per message, a connection each ({tp['slow_baseline_n']:,})",
    }
    for c in tp["concurrencies"]:
        names[f"dispatcher_c{c}"] = (
            f"**the dispatcher**, DISPATCH_CONCURRENCY={c} ({tp['n']:,} recipients, claim to finish)"
        )
    names["plain_ceiling"] = (
        f"plain text: transport ceiling of the plain-text e-mail ({tp['baseline_n']:,} messages)"
    )
    for c in tp["concurrencies"]:
        names[f"plain_c{c}"] = (
            f"plain text: the dispatcher composing the plain-text e-mail, DISPATCH_CONCURRENCY={c}"
        )
    rows = []
    for key, label in names.items():
        f = tp["figures"][key]
        rows.append(
            [
                label,
                f"{f['msg_per_s']:.0f}",
                f"{f['ratio']:.2f}x",
                ", ".join(f"{v:.0f}" for v in f["runs"]),
            ]
        )
    lines = [
        "## 1. Sending throughput",
        "",
        f"One broadcast of {tp['n']:,} recipients to an aiosmtpd sink in its own process on "
        "loopback (it counts messages and distinct recipients, keeps no bodies, and reads "
        "each message's content in one piece, as a relay in C does). The dispatcher "
        "is `flask --app wsgi dispatch run-due` in a child process on a fresh copy of a SQLite "
        "file built by the migrations; its time is the batch's `started_at` (the claim) to "
        "`finished_at`, as written by the dispatcher. Body about 1 KB with every placeholder; "
        "one guest in ten has a non-ASCII name. "
        f"Medians of {tp['runs']} interleaved rounds.",
        "",
        "The e-mail is the one the application sends: text and HTML alternatives with the "
        "event's calendar invitation attached "
        f"({tp['sizes']['html'] / 1024:.1f} KB on average). The *plain text* rows are the "
        "same dispatcher composing the plain-text e-mail of before (`bench/plain.py`, "
        f"{tp['sizes']['plain'] / 1024:.1f} KB) against that e-mail's own ceiling, in the "
        "same rounds: what the HTML and the invitation cost. Their ratios are to their own "
        "ceiling.",
        "",
        *_table(["sender", "msg/s", "ratio to ceiling", "runs (msg/s)"], rows),
        "",
    ]
    extra = []
    for c in tp["concurrencies"]:
        f = tp["figures"][f"dispatcher_c{c}"]
        extra.append(
            f"- DISPATCH_CONCURRENCY={c}: process wall time {f['wall_seconds']:.1f} s "
            f"(start-up included), peak RSS {f['max_rss_mb']:.0f} MB, "
            f"'database is locked' in its log: {f['locked_errors']}"
        )
    lines += extra
    lines.append("")
    lines.append("Verification after every dispatcher run (last run shown):")
    lines.append("")
    for name, v in tp["verification"].items():
        lines.append(
            f"- {name}: deliveries by status {v['deliveries']}, batch entries {v['entries']:,}, "
            f"sink received {v['sink']['messages']:,} messages to {v['sink']['recipients']:,} "
            f"distinct recipients, {v['sink']['duplicates']} duplicates"
        )
    if tp["problems"]:
        lines += ["", "**Problems:**", "", *[f"- {p}" for p in tp["problems"]]]
    lines.append("")
    return lines


def _memory(mem: dict[str, Any], tp: dict[str, Any] | None) -> list[str]:
    lines = [
        "## 2. Memory",
        "",
        f"Peak RSS (VmHWM) of the dispatcher process sending {mem['n']:,} recipients "
        f"(DISPATCH_CONCURRENCY={mem['concurrency']}), median of {mem['runs']} runs: "
        f"**{mem['peak_rss_mb']:.1f} MB** (runs: {', '.join(f'{v} MB' for v in mem['peak_rss_runs_mb'])}). "
        f"The same process with nothing to send: {mem['idle_peak_rss_mb']:.1f} MB.",
    ]
    if tp:
        c = (
            mem["concurrency"]
            if f"dispatcher_c{mem['concurrency']}" in tp["figures"]
            else tp["concurrencies"][-1]
        )
        small = tp["figures"][f"dispatcher_c{c}"]
        lines.append(
            f"At {tp['n']:,} recipients (section 1, concurrency {c}): {small['max_rss_mb']:.1f} MB, "
            "so memory does not grow with the audience (recipients are streamed)."
        )
        lines.append("")
        lines.append(
            f"Throughput of these {mem['n']:,}-recipient runs: {mem['msg_per_s']:.0f} msg/s, "
            f"against {small['msg_per_s']:.0f} msg/s at {tp['n']:,}."
        )
    else:
        lines.append("")
        lines.append(f"Throughput of these runs: {mem['msg_per_s']:.0f} msg/s.")
    v = mem["verification"]
    lines += [
        "",
        f"Verification (last run): deliveries {v['deliveries']}, batch entries {v['entries']:,}, "
        f"sink {v['sink']['messages']:,} messages to {v['sink']['recipients']:,} distinct "
        f"recipients, {v['sink']['duplicates']} duplicates.",
        "",
    ]
    if mem["problems"]:
        lines += ["**Problems:**", "", *[f"- {p}" for p in mem["problems"]], ""]
    return lines


def _growth(growth: dict[str, Any]) -> list[str]:
    scales = growth["scales"]
    if not scales:
        return []
    first, last = scales[0], scales[-1]
    factor = last["guests"] / first["guests"]
    lines = [
        "## 3. Cost of growth",
        "",
        "Each scale is its own database: one event with N guests, ten sent messages to all "
        "of them (10 N deliveries, one batch each with N entries; the first batch failed for "
        "2 in 5 recipients), and N scheduled messages (send_at in the future) over 100 other "
        "events. Pages through the Flask test client, logged in as an admin, CSRF off; "
        "median of the repeated requests after two warm-ups.",
        "",
        *_table(
            [
                "scale",
                "guests",
                "deliveries",
                "scheduled messages",
                "entries in the batch",
                "failed in it",
                "built in",
            ],
            [
                [
                    f"{s['guests'] // 1000}k",
                    f"{s['guests']:,}",
                    f"{s['deliveries']:,}",
                    f"{s['scheduled']:,}",
                    f"{s['batch_entries']:,}",
                    f"{s['failed_entries']:,}",
                    f"{s['build_seconds']:.1f} s",
                ]
                for s in scales
            ],
        ),
        "",
    ]
    rows = []
    for key, label in growth["targets"].items():
        a, b = first["pages"].get(key, {}), last["pages"].get(key, {})
        if a.get("missing") or b.get("missing"):
            rows.append([label, "missing", "missing", "-", "-", "-"])
            continue
        g = b["median_ms"] / a["median_ms"] if a["median_ms"] else float("nan")
        status = ", ".join(str(s) for s in sorted(set(a["statuses"]) | set(b["statuses"])))
        rows.append(
            [
                f"{label}<br>`{b['url']}`",
                _ms(a["median_ms"]),
                _ms(b["median_ms"]),
                f"{g:.1f}x",
                _growth_word(g, factor),
                status,
            ]
        )
    pa, pb = first["poll"], last["poll"]
    g = pb["median_ms"] / pa["median_ms"]
    rows.append(
        [
            f"scheduler poll, nothing due ({pb['statements_per_poll']} statements)",
            _ms(pa["median_ms"]),
            _ms(pb["median_ms"]),
            f"{g:.1f}x",
            _growth_word(g, factor),
            "-",
        ]
    )
    lines += _table(
        [
            "figure (median)",
            f"{first['guests'] // 1000}k guests",
            f"{last['guests'] // 1000}k guests",
            "growth",
            f"shape ({factor:.0f}x data)",
            "HTTP",
        ],
        rows,
    )
    lines.append("")
    errors = [
        (label, line)
        for key, label in growth["targets"].items()
        for s in scales
        for line in s["pages"].get(key, {}).get("errors", [])
    ]
    if errors:
        lines += ["Errors logged by the app while timing (each is a 500 the page still has):", ""]
        lines += sorted({f"- {label}: `{line}`" for label, line in errors})
        lines.append("")
    if growth["missing"]:
        lines += [
            "Not in the app's url_map when this ran (reported, not failed): "
            + ", ".join(
                f"{growth['targets'][k]} (`{last['pages'][k]['wanted']}`)"
                for k in growth["missing"]
            )
            + ".",
            "",
        ]
    lines += [
        "The due query of the poll, as `Dispatcher.poll()` executed it, and its plan "
        f"(with {last['scheduled']:,} scheduled messages):",
        "",
        "```sql",
        pb["due_sql"] or "(not captured)",
        "```",
        "",
        "```",
        "EXPLAIN QUERY PLAN",
        *(pb["plan"] or ["(none)"]),
        "```",
        "",
        "Uses the partial index ix_messages_due: "
        + ("**yes**" if pb["uses_partial_index"] else "**no**")
        + ".",
        "",
    ]
    return lines


def _load(load: dict[str, Any]) -> list[str]:
    rows = [
        [
            name.replace("_", " "),
            _ms(f["idle_ms"]),
            _ms(f["sending_ms"]),
            _ms(f["sending_p90_ms"]),
            f"{f['ratio']:.1f}x",
        ]
        for name, f in load["pages"].items()
    ]
    lines = [
        "## 4. UI under load",
        "",
        f"A {load['n']:,}-recipient batch sent by a dispatcher process "
        f"(DISPATCH_CONCURRENCY={load['concurrency']}) while this process requests the "
        f"Communications page and its Sent tab in a loop ({load['gap_seconds'] * 1000:.0f} ms pause "
        "between rounds) through the test client, on the same SQLite file (WAL). Idle: the "
        f"same pages just before the send. Medians of {load['runs']} runs.",
        "",
        *_table(["page", "idle", "while sending", "p90 while sending", "ratio"], rows),
        "",
        f"- requests served while sending, per run: {', '.join(map(str, load['requests_while_sending']))}",
        f"- errors (non-200, exceptions, error log): {load['errors']}; "
        f"'database is locked' anywhere (pages, app log, dispatcher log): {load['locked']}",
        f"- the dispatcher's throughput meanwhile: {load['dispatch_msg_per_s']:.0f} msg/s",
    ]
    if load["error_lines"]:
        lines += ["", *[f"- `{line}`" for line in load["error_lines"]]]
    if load["problems"]:
        lines += ["", "**Problems:**", "", *[f"- {p}" for p in load["problems"]]]
    lines.append("")
    return lines


def render(results: dict[str, Any], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{meta['command']}` on {meta['date']} "
        f"({meta['mode']} run, {meta['duration_seconds'] / 60:.1f} min). "
        "`make bench` runs `.venv/bin/python -m bench.run`; `--quick` makes a shorter run "
        "with smaller sizes. Regenerate this file rather than editing it.",
        "",
        "## Machine",
        "",
        f"- {m['nproc']} CPUs ({m['cpu']}), {m['memory']} memory, {m['os']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}; "
        + ", ".join(f"{k} {v}" for k, v in m["libraries"].items()),
        f"- code: commit {m['commit']}",
        "- section durations: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in meta.get("section_seconds", {}).items()),
        "- CPU taken by other processes of the machine during each section (should be near "
        "0%; more means the figures are pessimistic): "
        + ", ".join(
            f"{name} {section['other_cpu']['seconds']:.0f} CPU-s "
            f"({section['other_cpu']['share']:.0%} of the machine)"
            for name, section in results.items()
            if "other_cpu" in section
        ),
        "",
        *_summary(results),
    ]
    if "throughput" in results:
        lines += _throughput(results["throughput"])
    if "memory" in results:
        lines += _memory(results["memory"], results.get("throughput"))
    if "growth" in results:
        lines += _growth(results["growth"])
    if "load" in results:
        lines += _load(results["load"])
    if "resend" in results:
        lines += _resend(results["resend"])
    if "relay" in results:
        lines += _relay(results["relay"])
    notes = meta.get("notes")
    if notes:
        lines += ["## Notes", "", *notes, ""]
    return "\n".join(lines).rstrip() + "\n"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _resend(section: dict[str, Any]) -> list[str]:
    modes = section["modes"]
    rows = [
        [
            name.replace("_", " "),
            f"{f['seconds']:.1f} s",
            f"{f['msg_per_s']:.0f} e-mails/s",
            f"{f['requests']:,}",
            f"{f['busiest_second']}",
        ]
        for name, f in modes.items()
    ]
    return [
        "## 5. Resend: batch requests against one request per e-mail",
        "",
        f"{section['n']:,} recipients through the Resend transport to a local server that "
        f"follows Resend's API and answers after {section['latency_ms']:.0f} ms, "
        f"`DISPATCH_RATE_PER_SECOND={section['rate']:g}` requests, "
        f"`DISPATCH_CONCURRENCY={section['concurrency']}`.",
        "",
        *_table(["requests", "batch", "throughput", "requests made", "busiest second"], rows),
        "",
        f"- batched is {section['speedup']:.1f}x faster (target: at least 10x): "
        + _verdict(section["speedup"] >= 10),
        "- no second held more requests than the rate: " + _verdict(section["within_rate"]),
        "- every guest got one e-mail, with Resend's id kept on its delivery: "
        + _verdict(section["exactly_once"])
        + ("" if section["exactly_once"] else f" ({'; '.join(section['problems'])})"),
        "",
    ]


def _relay(section: dict[str, Any]) -> list[str]:
    rows = [
        [
            f"{r['delay_ms']:.0f} ms",
            f"{r['raw_msg_per_s']:.1f}/s",
            f"{r['c4_msg_per_s']:.1f}/s",
            f"{r['c4_ratio']:.2f}x " + _verdict(r["c4_ratio"] >= 3.6),
            f"{r['c16_msg_per_s']:.1f}/s",
            f"{r['c16_ratio']:.2f}x " + _verdict(r["c16_ratio"] >= 12),
        ]
        for r in section["relay"].values()
    ]
    loop = section["loopback"]
    return [
        "## 6. A relay's latency, loopback end to end, CPU per message",
        "",
        "The sink waits the given time before answering each message (a real relay's "
        "latency). Raw `smtplib` sends pre-rendered bytes over one connection; the dispatcher "
        "(`flask dispatch run-due`, batch start to end) at `DISPATCH_CONCURRENCY` 4 and 16. "
        f"Medians of {section['runs']}.",
        "",
        *_table(
            [
                "relay latency",
                "raw, 1 connection",
                "dispatcher c=4",
                "ratio (>= 3.6x)",
                "dispatcher c=16",
                "ratio (>= 12x)",
            ],
            rows,
        ),  # fmt: skip
        "",
        f"- loopback, {loop['n']:,} messages at the default settings, process start to exit "
        f"minus an idle run ({loop['idle_seconds']:.2f} s): {loop['dispatcher_seconds']:.2f} s "
        f"against raw one connection {loop['raw_seconds']:.2f} s, **{loop['ratio']:.2f}x** "
        "(target: at least 1.0x): " + _verdict(loop["ratio"] >= 1.0),
        f"- dispatcher CPU (user + system, minus the idle run's {loop['idle_cpu_seconds']:.2f} s): "
        f"**{loop['cpu_ms_per_message']:.3f} ms per message** (target: at most 0.4 ms): "
        + _verdict(loop["cpu_ms_per_message"] <= 0.4)
        + f"; the plain-text e-mail: {loop['plain_cpu_ms_per_message']:.3f} ms; a sink "
        "without PIPELINING (one command per round trip): "
        f"{loop['no_pipelining_cpu_ms_per_message']:.3f} ms",
        *[
            f"- the plain-text e-mail of before at {r['delay_ms']:.0f} ms: "
            f"{r['plain_c4_msg_per_s']:.1f}/s at c=4, {r['plain_c16_msg_per_s']:.1f}/s at c=16; "
            f"the application's HTML + .ics e-mail goes at {r['html_vs_plain_c4']:.2f}x and "
            f"{r['html_vs_plain_c16']:.2f}x of it"
            for r in section["relay"].values()
        ],
        "- every guest got one e-mail, every delivery sent once: "
        + _verdict(section["exactly_once"])
        + ("" if section["exactly_once"] else f" ({'; '.join(section['problems'][:5])})"),
        "",
    ]
