"""The one APScheduler interval job that polls the database for due work."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Start the poller when SCHEDULER_ENABLED (filled in by the dispatch engine)."""


def wake(app: Flask) -> None:
    """Ask the poller to run now (after send-now or retry); a no-op when it is not running."""
    job_scheduler = app.extensions.get("dispatch_scheduler")
    if job_scheduler is not None:
        job_scheduler.wake()
