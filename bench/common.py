"""Shared plumbing: the app and its environment, migrated databases, dispatcher processes, stats."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "http://events.example.org"
ADMIN_EMAIL = "bench-admin@example.org"
ADMIN_PASSWORD = "bench password, not a secret"

log = logging.getLogger(__name__)


def app_env(database: Path, **extra: str) -> dict[str, str]:
    """The environment of every app the benchmark builds, in-process or in a child process.

    Every setting that changes how dispatch behaves is given here (an empty value means
    the production default), so neither the shell nor a developer's ``.env`` can skew a
    figure: a child process loads ``.env`` without overriding what is already set.
    """
    defaults = dict.fromkeys(
        (
            "DISPATCH_RATE_PER_SECOND",
            "DISPATCH_COMMIT_EVERY",
            "DISPATCH_CONCURRENCY",
            "DISPATCH_LEASE_SECONDS",
            "DISPATCH_MAX_ATTEMPTS",
            "SCHEDULER_POLL_SECONDS",
            "SQLITE_BUSY_TIMEOUT_MS",
            "MAIL_USERNAME",
            "MAIL_PASSWORD",
            "MAIL_SERVER",
            "MAIL_PORT",
        ),
        "",
    )
    return {
        **defaults,
        "DISPATCH_DRY_RUN": "false",
        "MAIL_USE_TLS": "false",
        "MAIL_USE_SSL": "false",
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{database}",
        "PUBLIC_BASE_URL": BASE_URL,
        "MAIL_DEFAULT_SENDER": "Event Team <events@example.org>",
        "MAIL_TRANSPORT": "log",
        "SCHEDULER_ENABLED": "false",
        "DISPATCH_RETRY_BASE_SECONDS": "60",
        **extra,
    }


def make_app(env: Mapping[str, str]) -> Flask:
    """The real app factory, with CSRF off so the test client can log in with a plain POST."""
    from dashboard import create_app

    app = create_app(overrides={"WTF_CSRF_ENABLED": False}, env=env)
    quiet_logs()
    return app


def quiet_logs() -> None:
    for name in ("alembic", "dashboard", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def app_context(env: Mapping[str, str]) -> Iterator[Flask]:
    """An app and its context; the engine is disposed on the way out (no file handles left)."""
    from dashboard.extensions import db

    app = make_app(env)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def migrate(database: Path) -> None:
    """Build an empty database with the project's migrations (as the tests do).

    Alembic's env.py reconfigures the root logger from alembic.ini; the benchmark's own
    logging is put back afterwards.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logging.disable(logging.INFO)
    try:
        from flask_migrate import upgrade

        with app_context(app_env(database)):
            upgrade()
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)
        quiet_logs()
    checkpoint(database)


class ErrorLog(logging.Handler):
    """Collects the application's error records (a 500's traceback) instead of printing them."""

    def __init__(self) -> None:
        # Level NOTSET, filtered in emit: Flask adds its own stderr handler to app.logger
        # unless a handler at the logger's effective level is already there.
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.records.append(record)

    def summary(self, limit: int = 5) -> list[str]:
        seen: list[str] = []
        for record in self.records:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                text = f"{text}: {type(error).__name__}: {error}"
            if text not in seen:
                seen.append(text)
        return seen[:limit]


@contextmanager
def captured_errors(name: str = "dashboard") -> Iterator[ErrorLog]:
    """Route the app logger's errors (Flask logs exceptions on ``app.logger``) into a list."""
    logger = logging.getLogger(name)
    handler = ErrorLog()
    handlers, propagate = list(logger.handlers), logger.propagate
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.handlers[:] = handlers
        logger.propagate = propagate


def checkpoint(database: Path) -> None:
    """Fold the WAL into the main file, so the file can be copied on its own."""
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def copy_database(source: Path, target: Path) -> Path:
    checkpoint(source)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return target


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- the dispatcher as a real process ----------------------------------------------------


@dataclass
class ChildResult:
    returncode: int
    wall_seconds: float
    max_rss_kb: int
    stdout: str
    stderr: str
    #: User + system CPU seconds of the dispatcher process (its rusage, from wait4).
    cpu_seconds: float = 0.0


def run_dispatcher(
    env: Mapping[str, str],
    workdir: Path,
    while_running: Callable[[], None] | None = None,
    timeout: float = 900.0,
) -> ChildResult:
    """``flask --app wsgi dispatch run-due`` in a child process, as tests/dispatch does.

    It runs through ``bench.child`` (the same Flask CLI) so that the child reports its
    own peak RSS (see that module for why rusage cannot). ``while_running`` is called in
    a loop until the child exits (section 4 uses it).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = workdir / "dispatcher.out", workdir / "dispatcher.err"
    peak_path = workdir / "dispatcher.peak"
    peak_path.unlink(missing_ok=True)
    started = time.perf_counter()
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.child", "--app", "wsgi", "dispatch", "run-due"],
            cwd=ROOT,
            env={**os.environ, **env, "BENCH_PEAK_FILE": str(peak_path)},
            stdout=out,
            stderr=err,
        )
        usage = None
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - started > timeout:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                if while_running is not None:
                    while_running()
                else:
                    time.sleep(0.02)
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                _pid, status = os.waitpid(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
            raise
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildResult(
        returncode=proc.returncode,
        wall_seconds=wall,
        max_rss_kb=int(peak_path.read_text()) if peak_path.exists() else 0,
        stdout=out_path.read_text(),
        stderr=err_path.read_text(),
        cpu_seconds=usage.ru_utime + usage.ru_stime if usage is not None else 0.0,
    )


# --- is the machine ours? -----------------------------------------------------------------


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds all processes of the machine used, of which this process and its
    reaped children), since boot and since start; the difference over a section is the
    CPU that other work took from the benchmark."""
    import resource

    ticks = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(x) for x in fields[:8])
        busy = (user + nice + system + steal) / ticks
    except (OSError, ValueError):
        busy = float("nan")
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return busy, own


# --- figures -----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
