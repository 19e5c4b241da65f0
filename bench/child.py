"""``python -m bench.child ARGS`` is ``python -m flask ARGS`` that also records its own peak RSS.

With ``BENCH_MAIL=plain`` it first puts back the plain-text e-mail (``bench.plain``), the
reference the HTML mail is measured against.

The peak is VmHWM of /proc/self/status, written at exit to the file named by
``BENCH_PEAK_FILE``. The parent cannot use the rusage of its child for this: on Linux a
child's ``ru_maxrss`` starts from the parent's high-water mark at fork (it survives
``exec``), so a large benchmark process would inflate every figure. VmHWM belongs to
the address space made by ``exec`` and counts only the dispatcher.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path


def peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _record() -> None:
    target = os.environ.get("BENCH_PEAK_FILE")
    if target:
        Path(target).write_text(str(peak_rss_kb()))


if __name__ == "__main__":
    atexit.register(_record)
    if os.environ.get("BENCH_MAIL") == "plain":
        from bench.plain import install

        install()
    from flask.cli import main

    main()
