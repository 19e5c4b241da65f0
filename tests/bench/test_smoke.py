"""The benchmark at tiny sizes, so it cannot rot: correctness only, never timings."""

from __future__ import annotations

import math

import pytest

from bench import growth, run

pytestmark = pytest.mark.slow

TINY = {
    "throughput": {
        "n": 100,
        "baseline_n": 100,
        "slow_baseline_n": 20,
        "concurrencies": (2,),
        "runs": 1,
    },
    "memory": {"n": 100, "runs": 1},
    "growth": {"scales": (100, 200), "repeats": 1, "poll_repeats": 2, "sent_messages": 2},
    "load": {"n": 100, "runs": 1, "idle_requests": 2},
    "resend": {"n": 120, "rate": 200.0, "concurrency": 2},
    "relay": {
        "delays": (0.01,),
        "loopback_n": 60,
        "runs": 1,
        "sizes": {0.01: {"raw": 10, 4: 40, 16: 80}},
    },
}


def test_every_section_at_tiny_sizes(tmp_path):
    results, seconds = run.run_sections(tmp_path / "work", TINY)
    assert set(results) == set(run.SECTIONS) == set(seconds)

    tp = results["throughput"]
    assert tp["exactly_once"], tp["problems"]
    assert set(tp["figures"]) == {
        "ceiling",
        "plain_ceiling",
        "line_ceiling",
        "line_plain_ceiling",
        "email_message",
        "flask_mail",
        "dispatcher_c2",
        "plain_c2",
    }
    for name in ("dispatcher_c2", "plain_c2"):
        assert tp["verification"][name]["deliveries"] == {"sent": 100}
        assert tp["verification"][name]["sink"]["recipients"] == 100
    # The HTML e-mail with its invitation is the bigger one; the plain text is the reference.
    assert tp["sizes"]["html"] > 2 * tp["sizes"]["plain"]
    assert tp["compose_us"]["html"] > 0 and tp["compose_us"]["plain"] > 0
    assert tp["sizes"]["html_lines"] > tp["sizes"]["plain_lines"] > 0
    assert set(tp["sink_cpu_us"]) == {"html", "plain", "line_html", "line_plain"}
    assert all(f["msg_per_s"] > 0 for f in tp["figures"].values())

    mem = results["memory"]
    assert mem["exactly_once"], mem["problems"]
    assert mem["verification"]["entries"] == 100
    assert mem["peak_rss_mb"] > 0 and mem["idle_peak_rss_mb"] > 0

    grown = results["growth"]
    assert [s["guests"] for s in grown["scales"]] == [100, 200]
    for scale in grown["scales"]:
        assert scale["deliveries"] == 2 * scale["guests"]
        assert set(scale["pages"]) == {t.key for t in growth.TARGETS}
        assert scale["poll"]["uses_partial_index"], scale["poll"]["plan"]
        assert not math.isnan(scale["poll"]["median_ms"])

    load = results["load"]
    assert load["problems"] == []
    assert load["locked"] == 0
    assert set(load["pages"]) == {"communications", "sent_tab"}

    resend = results["resend"]
    assert resend["exactly_once"], resend["problems"]
    assert resend["modes"]["batched"]["requests"] == 2  # 100 + 20 e-mails
    assert resend["modes"]["one_per_email"]["requests"] == 120

    relay = results["relay"]
    assert relay["exactly_once"], relay["problems"]
    assert relay["relay"]["10"]["raw_msg_per_s"] > 0 and relay["relay"]["10"]["c16_ratio"] > 0
    # A figure, not its size: at 60 messages the idle run's CPU, which is subtracted,
    # varies by more than the sending costs (CI once saw -2.6 ms a message).
    assert math.isfinite(relay["loopback"]["cpu_ms_per_message"])
    assert "no_pipelining_cpu_ms_per_message" in relay["loopback"]
    # The plain-text e-mail of before at the same relay, for what HTML costs there.
    assert relay["relay"]["10"]["plain_c4_msg_per_s"] > 0
    assert relay["relay"]["10"]["html_vs_plain_c16"] > 0

    out = tmp_path / "RESULTS.md"
    text = run.write_report(
        out, results, command="pytest", mode="smoke", duration=1.0, section_seconds=seconds
    )
    assert out.read_text() == text
    for heading in (
        "## Machine",
        "## Summary against the targets",
        "## 1. Sending throughput",
        "HTML + .ics against plain text",
        "HTML + .ics against plain text, relay answering in 10 ms",
        "dispatcher CPU per message (user + system)",
        "## 2. Memory",
        "## 3. Cost of growth",
        "## 6. A relay's latency",
        "## 4. UI under load",
        "ix_messages_due",
    ):
        assert heading in text
