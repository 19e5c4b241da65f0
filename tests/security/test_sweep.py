"""Sweep every rule of the URL map with hostile values, as a viewer and as an admin.

For each rule and method (GET, and POST/PATCH/DELETE with a valid CSRF token), one request
with plain values and one per hostile value, put in every path string, query argument and
form field the app reads: NUL, huge integers, 100 KB strings, bidi overrides, invalid
UTF-8, ``{{``, and a few more. Asserted: no 5xx, no traceback (nor any ERROR) in the log,
and nothing in the database changed by the viewer's requests.

About 15 s per engine; marked slow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from dashboard.auth.models import User
from dashboard.auth.services import create_token
from dashboard.dispatch.models import Batch, Delivery
from dashboard.events.models import Collaborator, Role
from dashboard.extensions import db
from tests.helpers import login_session

pytestmark = pytest.mark.slow

#: Raw (already percent-encoded where needed) so that invalid UTF-8 can be sent as such.
HOSTILE = {
    "nul": quote("x\x00y"),
    "huge-integer": "99999999999999999999",
    "negative": "-1",
    "100kb": "x" * 100_000,
    "bidi": quote("\u202eevil\u2066"),
    "invalid-utf8": "%FF%FE%C3",
    "template": quote("{{" + " " * 2000 + "}}{{ guest_name }}{{"),
    "controls": quote("\x1b[31m\x85\x7f"),
    "dates": quote("0001-01-01T00:00"),
    "address": quote("root)@example.net"),
    "markup": quote("<script>alert(1)</script>"),
    "traversal": quote("../../etc/passwd"),
}
#: Every name the pages read from a query string or a form (rule arguments aside).
FIELDS = [
    "page",
    "per_page",
    "q",
    "tab",
    "rsvp",
    "audience",
    "status",
    "outcome",
    "event",
    "since",
    "until",
    "compact",
    "row",
    "next",
    "back",
    "message_id",
    "token",
    "name",
    "email",
    "role",
    "subject",
    "body",
    "mode",
    "send_at",
    "channel",
    "starts_at",
    "timezone",
    "venue",
    "rsvp_status",
    "password",
    "remember",
]
#: Never swept while signed in: it signs the user out.
SKIP = {"auth.logout"}
#: Tables a viewer may change: their own account (sign-ins, API tokens) and throttle counts.
ACCOUNT_TABLES = {"login_sessions", "api_tokens", "rate_limit_counters", "scheduler_polls"}
PARAMETER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


@pytest.fixture
def app_overrides():
    return {"WTF_CSRF_ENABLED": True, "PROPAGATE_EXCEPTIONS": False}


class LogErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(logging.Formatter().format(record))


@pytest.fixture
def log_errors() -> Iterator[LogErrors]:
    handler = LogErrors()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def _path(rule: Rule, ids: dict[str, int], hostile: str | None) -> str:
    def value(match: re.Match[str]) -> str:
        converter, arguments, name = match.groups()
        if converter == "int":
            return HOSTILE["huge-integer"] if hostile == HOSTILE["huge-integer"] else str(ids[name])
        if converter == "any":
            return arguments.split(",")[0].strip()
        return hostile if hostile is not None else "plain-value"

    return PARAMETER.sub(value, rule.rule)


def _csrf(client: FlaskClient) -> str:
    page = client.get("/account/tokens").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def _sweep(app: Flask, client: FlaskClient, ids: dict[str, int]) -> tuple[list[str], dict]:
    """Every rule, method and value: the answers that were 5xx, and the status of each
    plain request by (endpoint, method)."""
    token = _csrf(client)
    failures: list[str] = []
    plain: dict[tuple[str, str], int] = {}
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))
    for rule in rules:
        if rule.endpoint in SKIP:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for label, raw in [("plain", None), *HOSTILE.items()]:
                path = _path(rule, ids, raw)
                encoded = "&".join(f"{name}={raw}" for name in FIELDS) if raw else ""
                options: dict[str, Any] = {"headers": {"X-CSRFToken": token}}
                if method == "GET":
                    options["query_string"] = encoded
                else:
                    options["data"] = f"csrf_token={token}&{encoded}"
                    options["content_type"] = "application/x-www-form-urlencoded"
                response = client.open(path, method=method, **options)
                if response.status_code >= 500:
                    failures.append(f"{method} {rule.rule} [{label}] -> {response.status_code}")
                if raw is None:
                    plain[(rule.endpoint, method)] = response.status_code
    return failures, plain


def _dump() -> dict[str, list[tuple]]:
    """Every row of every table but the account ones, as text, in a stable order."""
    tables = {}
    for table in db.metadata.sorted_tables:
        if table.name in ACCOUNT_TABLES:
            continue
        rows = db.session.execute(sa.select(table)).all()
        tables[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return tables


@pytest.fixture
def world(app, make_user, event, make_guests, make_message, make_batch, add_collaborator):
    """An event with guests, messages (one sent, with a batch and deliveries), a viewer, an
    admin, and an API token: every id a rule can ask for."""
    admin = make_user("admin@example.com", admin=True)
    viewer = make_user("viewer@example.com")
    add_collaborator(event, viewer, Role.VIEWER)
    guests = make_guests(event, 3)
    message = make_message(event, due=False)
    batch = make_batch(message)
    delivery = Delivery(message_id=message.id, guest_id=guests[0].id)
    db.session.add(delivery)
    create_token(db.session, viewer, "viewer's")
    db.session.commit()
    collaborator = db.session.scalars(
        sa.select(Collaborator).where(Collaborator.user_id == viewer.id)
    ).one()
    ids = {
        "event_id": event.id,
        "message_id": message.id,
        "batch_id": batch.id,
        "delivery_id": delivery.id,
        "guest_id": guests[1].id,
        "collaborator_id": collaborator.id,
        "token_id": 1,
        "entry_id": 1,  # an Outbox e-mail (none here: the page answers 404)
        "suppression_id": 1,  # none here: lifting it answers 404
    }
    return admin.id, viewer.id, ids


def _signed_in(app: Flask, user_id: int) -> FlaskClient:
    client = app.test_client()
    login_session(client, db.session.get(User, user_id))
    db.session.remove()  # the requests load what they need themselves
    return client


def test_every_rule_survives_hostile_values_and_a_viewer_changes_nothing(app, world, log_errors):
    admin_id, viewer_id, ids = world
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 1
    before = _dump()

    failures, as_viewer = _sweep(app, _signed_in(app, viewer_id), ids)
    db.session.remove()
    assert _dump() == before, "a viewer changed something"

    more, as_admin = _sweep(app, _signed_in(app, admin_id), ids)
    failures += more

    assert failures == []
    assert log_errors.records == []
    # Both were signed in and the ids resolved: the viewer sees the event and its message
    # but may not change them; the admin sees the admin pages.
    assert as_viewer[("events.show", "GET")] == 200
    assert as_viewer[("dispatch.message_detail", "GET")] == 200
    assert as_viewer[("messages.cancel", "POST")] == 403
    assert as_admin[("admin.batches", "GET")] == 200
    assert as_admin[("admin.retry_failures", "POST")] == 303  # its CSRF token was valid
