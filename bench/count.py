"""``python -m bench.count [--guests N]``: the live recipient count against the aggregate.

Builds one event with N guests (100,000 by default) on SQLite and prints the median of 15
calls of ``count_recipients`` (the kept per-event counts) and ``count_recipients_live``
(one aggregate over the guests) for two audiences. Target: at most 3 ms at 100,000.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from bench import data
    from bench.common import app_context, app_env, migrate
    from dashboard.extensions import db
    from dashboard.messages.audience import count_recipients, count_recipients_live
    from dashboard.messages.models import Audience

    parser = argparse.ArgumentParser(prog="python -m bench.count", description=__doc__)
    parser.add_argument("--guests", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-count-") as tmp:
        path = Path(tmp) / "count.sqlite3"
        migrate(path)
        now = datetime.now(UTC)
        with app_context(app_env(path)):
            admin = data.admin_user(db.session)
            event = data.new_event(db.session, admin, now)
            started = time.perf_counter()
            data.add_guests(db.session, event.id, args.guests, now)
            db.session.commit()
            print(f"{args.guests:,} guests inserted in {time.perf_counter() - started:.2f} s")
            for name, count in (
                ("kept counts", count_recipients),
                ("aggregate", count_recipients_live),
            ):
                for audience in (Audience.ATTENDING, Audience.EVERYONE):
                    times = []
                    for _ in range(15):
                        started = time.perf_counter()
                        result = count(db.session, event.id, audience)
                        db.session.commit()
                        times.append(time.perf_counter() - started)
                    print(
                        f"{name:12} {audience.value:10} median "
                        f"{statistics.median(times) * 1000:.2f} ms ({result.will_receive:,} receive)"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
