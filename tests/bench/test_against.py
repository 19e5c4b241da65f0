"""bench.against's measuring run, at a tiny size: it sends each guest once and reads a CPU figure."""

from __future__ import annotations

import pytest

from bench import against
from bench.common import ROOT

pytestmark = pytest.mark.slow


def test_a_measuring_run_sends_each_guest_once_and_reports_its_cpu():
    ms = against.measure(ROOT, guests=20, concurrency=2)
    assert 0 < ms < 1000


def test_a_run_that_fails_says_so(tmp_path):
    with pytest.raises(RuntimeError, match="failed"):
        against.measure(tmp_path, guests=20, concurrency=2)  # no code there to import
