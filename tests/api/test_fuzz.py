"""Schemathesis fuzzes the API from its own document, on a live server, as an admin.

The run uses a Bearer token, a real event, message and batch (so that ids resolve, through
schemathesis' ``[parameters]``), and dictionaries of hostile values mixed into the generated
strings and integers (NUL, bidi overrides, dates at the ends of the calendar, addresses
smtplib would misread, integers beyond 64 bits' reach). It checks ``not_a_server_error``,
``status_code_conformance`` and ``response_schema_conformance``: zero failures, no
traceback in the server log, and every operation was reached (not only 401s and 404s).

The seed is fixed, so a run is repeatable; about 25 s per engine (``MAX_EXAMPLES``).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from dashboard import create_app
from dashboard.auth.services import create_token
from dashboard.dispatch.models import Batch
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.smtp_server import free_port

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
SEED = 7
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
HOSTILE_TEXT = [
    "\x00",
    "Ada\x00Lovelace",
    "\u202eevil",
    "x\u2066y",
    "\x1b[31m",
    "a\x85b",
    "{{ guest_name }}{{",
    "{{" + " " * 2000,
    "x" * 4000,  # longer values would meet the HTTP server's header limit (cookies are fuzzed too)
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "0001-01-01T00:00+14:00",
    "root)@example.net",
    "ceo(not-me)@company.example",
    "99999999999999999999",
    "",
]
HOSTILE_NUMBERS = [2**63 - 1, -(2**63), 2**31, 0, -1]


class ErrorLog(logging.Handler):
    """Every record of level ERROR or with a traceback, from any logger of this process."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def live_api(app_env) -> Iterator[tuple[str, Flask, Counter]]:
    """The app in a real HTTP server on loopback; the Counter holds (rule, method, status)
    of every answer."""
    app = create_app(env=app_env)
    answers: Counter = Counter()

    @app.after_request
    def _count(response):  # type: ignore[no-untyped-def]
        rule = request.url_rule.rule if request.url_rule else "?"
        answers[(rule, request.method, response.status_code)] += 1
        return response

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", app, answers
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.engine.dispose()


def _config(base_url: str, token: str, event_id: int, message_id: int, batch_id: int) -> str:
    def array(values: list) -> str:
        return "[" + ", ".join(json.dumps(v) for v in values) + "]"

    return f"""
base-url = "{base_url}"
headers = {{ Authorization = "Bearer {token}" }}

[generation]
max-examples = {MAX_EXAMPLES}

[dictionaries.hostile-text]
values = {array(HOSTILE_TEXT)}

[dictionaries.hostile-numbers]
values = {array(HOSTILE_NUMBERS)}

[generation.dictionaries]
string = {{ dictionary = "hostile-text", probability = 0.3 }}
integer = {{ dictionary = "hostile-numbers", probability = 0.3 }}

[parameters]
"path.event_id" = {event_id}
"path.message_id" = {message_id}
"path.batch_id" = {batch_id}
"""


def test_schemathesis_finds_nothing(
    live_api, tmp_path: Path, make_user, event, make_guests, make_message, dispatcher
):
    base_url, live_app, answers = live_api
    admin = make_user("admin@example.com", admin=True)
    make_guests(event, 5)
    make_message(event)  # due: sent by the poll below, so the batch has entries
    dispatcher.poll()
    batch = db.session.scalars(db.select(Batch)).one()
    editable = make_message(event, due=False)
    assert editable.status is MessageStatus.SCHEDULED
    token = create_token(db.session, admin, "schemathesis")
    db.session.commit()
    (tmp_path / "schemathesis.toml").write_text(
        _config(base_url, token, event.id, editable.id, batch.id)
    )

    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/api/openapi.json"]
            + ["--checks", CHECKS, "--seed", str(SEED), "--no-color"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        logging.getLogger().removeHandler(errors)

    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and "generated" in run.stdout, report
    tracebacks = [logging.Formatter().format(r) for r in errors.records]
    assert tracebacks == [], "\n\n".join(tracebacks)
    # The token and the ids worked: every operation but the stats (which wants another
    # token) answered something other than 401 or 404 (a success, a 400 or a 409).
    with live_app.app_context():
        from dashboard.api.openapi import spec

        operations = {
            (path, method.upper())
            for path, methods in spec.spec["paths"].items()
            for method in methods
            if path != "/api/stats"
        }
    reached = {
        (rule.replace("<int:", "{").replace(">", "}"), method)
        for (rule, method, status) in answers
        if status not in (401, 404)
    }
    assert operations - reached == set(), report
