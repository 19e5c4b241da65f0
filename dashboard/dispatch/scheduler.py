"""The one APScheduler interval job that polls the database for due work.

The schedule lives in the database, not in APScheduler: one job per process
(``max_instances=1``, ``coalesce=True``), safe to run in several processes at once
because every claim is a conditional UPDATE.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import UTC, datetime

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy.orm import Session

from dashboard.admin.retention import add_retention_job
from dashboard.extensions import db

log = logging.getLogger(__name__)

POLL_JOB = "dispatch-poll"


def build_dispatcher(app: Flask, session: Session, worker: str | None = None, actor=None):  # type: ignore[no-untyped-def]
    """A Dispatcher wired from the app's configuration (used by the job, the CLI and tests);
    the batches it starts are the scheduler's unless ``actor`` (a CLI command) says otherwise."""
    from dashboard.audit.services import SCHEDULER
    from dashboard.dispatch.channels import Channel
    from dashboard.dispatch.poll import Dispatcher
    from dashboard.dispatch.settings import DispatchSettings, process_name

    mail = app.extensions["mail"]

    def transports(channel: Channel):  # type: ignore[no-untyped-def]
        return channel.transport(app.config, mail)

    settings = DispatchSettings.from_config(app.config)
    return Dispatcher(
        session, settings, transports, worker or process_name(), actor=actor or SCHEDULER
    )


class DispatchScheduler:
    def __init__(self, app: Flask):
        from dashboard.dispatch.settings import process_name

        self.app = app
        self.worker = process_name()
        self.interval = float(app.config["SCHEDULER_POLL_SECONDS"])
        self.woken = threading.Event()
        self.scheduler = BackgroundScheduler(timezone=UTC)

    def start(self) -> None:
        self.scheduler.add_job(
            self.poll,
            "interval",
            seconds=self.interval,
            id=POLL_JOB,
            next_run_time=datetime.now(UTC),  # recovery runs at start-up
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        add_retention_job(self.scheduler, self.app)
        self.scheduler.start()
        atexit.register(self.shutdown)
        log.info("dispatch scheduler %s polling every %.1f s", self.worker, self.interval)

    def shutdown(self, wait: bool = False) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def wake(self) -> None:
        self.woken.set()
        job = self.scheduler.get_job(POLL_JOB)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def poll(self) -> None:
        """The job: poll again at once if woken while polling (a send-now must not wait)."""
        while True:
            self.woken.clear()
            with self.app.app_context():
                try:
                    build_dispatcher(self.app, db.session, self.worker).poll()
                except Exception as error:  # noqa: BLE001 - the job must keep running
                    log.exception("dispatch poll failed")
                    db.session.rollback()
                    self._record_error(error)
                finally:
                    db.session.remove()
            if not self.woken.is_set():
                return

    def _record_error(self, error: Exception) -> None:
        try:
            build_dispatcher(self.app, db.session, self.worker).record_poll(error=str(error)[:500])
        except Exception:  # noqa: BLE001 - the database itself may be down
            db.session.rollback()


def _should_start(app: Flask) -> bool:
    if not app.config["SCHEDULER_ENABLED"]:
        return False
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.info_name != "run":
        return False  # `flask db upgrade`, `flask dispatch run-due`, ...: no background poller
    # Under the development reloader only the child process (WERKZEUG_RUN_MAIN) polls.
    return not (app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true")


def init_app(app: Flask) -> None:
    if _should_start(app):
        scheduler = DispatchScheduler(app)
        app.extensions["dispatch_scheduler"] = scheduler
        scheduler.start()


def wake(app: Flask) -> None:
    """Ask the poller to run now (after send-now or retry); a no-op when it is not running."""
    job_scheduler = app.extensions.get("dispatch_scheduler")
    if job_scheduler is not None:
        job_scheduler.wake()
