"""/api/openapi.json: generated from the API's models, valid OpenAPI 3.1, covering every /api
route with its methods, errors and security; and bad input is a 400 in our error shape."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate as validate_openapi
from werkzeug.test import TestResponse

from dashboard.dispatch.models import BatchStatus, BatchTrigger, ErrorKind, Outcome
from dashboard.events.models import EventStatus, RsvpStatus
from dashboard.messages.models import Audience, MessageKind, MessageStatus
from tests.api.openapi_check import (
    answers_match_the_document,  # noqa: F401 (autouse)
    api_document,
    problems,
    schema_validator,
)

IGNORED_METHODS = {"HEAD", "OPTIONS"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

#: The field names DESIGN.md section 6 keeps stable, by component schema.
DESIGN_FIELDS = {
    "Event": {"id", "name", "starts_at", "timezone", "venue", "status", "cancelled_at"},
    "Guest": {"id", "name", "email", "rsvp_status", "unsubscribed"},
    "GuestBulkResult": {"created", "updated", "rejected"},
    "Message": {
        "id",
        "event_id",
        "kind",
        "label",
        "audience",
        "channel",
        "subject",
        "body",
        "status",
        "status_reason",
        "send_at",
    },
    "MessageCounts": {"total", "sent", "failed", "skipped"},
    "Batch": {
        "id",
        "message_id",
        "trigger",
        "initiated_by",
        "status",
        "counts",
        "started_at",
        "finished_at",
        "error",
    },
    "BatchCounts": {"total", "sent", "failed", "skipped"},
    "BatchEntry": {"delivery_id", "guest_id", "email", "outcome", "reason", "processed_at"},
    "MessagePage": {"items", "page", "per_page", "total"},
    "ErrorBody": {"error"},
}


def api_routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    return routes


def operations(document):
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method in HTTP_METHODS:
                yield path, method, spec


@pytest.fixture
def document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)  # raises on any error


def test_every_api_route_is_documented_with_its_methods(app, document):
    paths = document["paths"]
    missing = {
        f"{method.upper()} {path}"
        for path, methods in api_routes(app).items()
        for method in methods
        if method not in paths.get(path, {})
    }
    assert not missing, f"undocumented API operations: {sorted(missing)}"


def test_every_documented_operation_exists(app, document):
    routes = api_routes(app)
    extra = {
        f"{method.upper()} {path}"
        for path, method, _ in operations(document)
        if method not in routes.get(path, set())
    }
    assert not extra, f"documented but not routed: {sorted(extra)}"


def test_path_parameters_match_the_path(document):
    for path, method, spec in operations(document):
        names = set(re.findall(r"\{(\w+)\}", path))
        declared = {p["name"] for p in spec.get("parameters", []) if p["in"] == "path"}
        assert declared == names, (method, path)
        assert spec["operationId"] and spec["summary"], (method, path)


def test_references_resolve(document):
    for kind, name in re.findall(r"#/components/(\w+)/(\w+)", str(document)):
        assert name in document["components"][kind], name


def test_security_schemes_and_who_needs_no_session(app, document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["session"] == {
        **schemes["session"],
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
    }
    assert document["security"] == [{"bearer": []}, {"session": []}]

    public = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "api_public", False)
    }
    assert public == {"api.openapi_json", "api.stats"}
    overrides = {
        spec["operationId"]: spec["security"]
        for _, _, spec in operations(document)
        if "security" in spec
    }
    assert overrides == {"openapi_json": [], "stats": [{"stats_token": []}]}


def test_every_operation_documents_its_errors(document):
    for path, method, spec in operations(document):
        if spec["operationId"] == "openapi_json":
            continue
        responses = spec["responses"]
        writes = method in {"post", "patch", "delete"}
        expected = {"401"} | ({"400"} if writes else set())  # 400: a session write lacks CSRF
        if "{" in path:
            expected |= {"404", "403"} if writes else {"404"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for status in expected:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_the_schemas_name_the_design_fields(document):
    schemas = document["components"]["schemas"]
    for name, fields in DESIGN_FIELDS.items():
        assert fields <= set(schemas[name]["required"]), name


@pytest.mark.parametrize(
    ("component", "enum"),
    [
        ("MessageStatus", MessageStatus),
        ("MessageKind", MessageKind),
        ("Audience", Audience),
        ("RsvpStatus", RsvpStatus),
        ("EventStatus", EventStatus),
        ("BatchStatus", BatchStatus),
        ("BatchTrigger", BatchTrigger),
        ("Outcome", Outcome),
        ("ErrorKind", ErrorKind),
    ],
)
def test_enums_are_complete(document, component, enum):
    assert document["components"]["schemas"][component]["enum"] == [m.value for m in enum]


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("Message", "send_at"),
        ("Batch", "finished_at"),
        ("Batch", "heartbeat_at"),
        ("Batch", "error"),
        ("BatchEntry", "reason"),
        ("BatchEntry", "error_kind"),
        ("RejectedRow", "email"),
    ],
)
def test_fields_that_can_be_null_say_so(app, document, component, field):
    schema = document["components"]["schemas"][component]
    assert field in schema["required"]
    ref = f"#/components/schemas/{component}/properties/{field}"
    assert not list(schema_validator(document, ref).iter_errors(None))


def test_fields_that_are_left_out_are_never_null(app, document):
    """``counts`` of a draft, ``progress`` of a finished batch: absent, not null."""
    for component, field in (("Message", "counts"), ("Batch", "progress"), ("ErrorBody", "fields")):
        schema = document["components"]["schemas"][component]
        assert field not in schema["required"]
        ref = f"#/components/schemas/{component}/properties/{field}"
        assert list(schema_validator(document, ref).iter_errors(None)), (component, field)


def test_the_conformance_check_can_fail(app, event):
    """The check every API test runs rejects a wrong status, a missing field, a bad time."""
    path = f"/api/events/{event.id}"

    def answer(status: int, body: object) -> TestResponse:
        return TestResponse(
            [json.dumps(body).encode()], status, {"Content-Type": "application/json"}, None
        )

    good = {
        "id": 1,
        "name": "x",
        "starts_at": "2030-06-01T18:00:00+02:00",
        "timezone": "Europe/Berlin",
        "venue": "",
        "status": "active",
        "cancelled_at": None,
        "ends_at": "2030-06-01T20:00:00+02:00",
        "sender_name": "",
        "reply_to": "",
        "created_at": "2030-01-01T00:00:00+00:00",
        "updated_at": "2030-01-01T00:00:00+00:00",
    }
    assert problems(app, "GET", path, answer(200, good)) == []
    assert problems(app, "GET", path, answer(418, good))
    assert problems(app, "GET", path, answer(200, {**good, "venue": None}))
    assert problems(app, "GET", path, answer(200, {k: v for k, v in good.items() if k != "name"}))
    assert problems(app, "GET", path, answer(200, {**good, "starts_at": "next friday"}))
    assert problems(app, "GET", path, answer(404, {"message": "no error key"}))


# --- bad input: 400 with the error shape -------------------------------------------------------


def test_a_validation_error_is_400_with_our_error_shape(client, auth, event, owner):
    auth.login(owner)
    response = client.post(
        f"/api/events/{event.id}/messages",
        json={"audience": "vips", "subject": 5, "body": "Hi", "colour": "red"},
    )
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"error", "fields"}
    assert set(body["fields"]) == {"audience", "subject", "colour"}
    assert body["fields"]["subject"] == "Must be a string."
    assert body["fields"]["audience"].startswith("Unknown audience 'vips'; use one of: ")
    assert body["fields"]["colour"].startswith(
        "Unknown field; allowed: attach_calendar, audience, body, channel"
    )
    assert body["error"].startswith("Some fields are not valid: ")
    for name in ("audience", "subject", "colour"):
        assert f"{name}: " in body["error"]


def test_a_bad_query_parameter_is_400_with_our_error_shape(client, auth, event, owner):
    auth.login(owner)
    response = client.get(f"/api/events/{event.id}/messages/recipient-count?audience=vips")
    assert response.status_code == 400
    assert response.get_json()["fields"] == {
        "audience": "Unknown audience 'vips'; use one of: 'everyone', 'attending', 'pending', "
        "'declined', 'maybe' or 'not_declined'."
    }


def test_a_missing_field_is_named(client, auth, owner):
    auth.login(owner)
    response = client.post("/api/events", json={"name": "Launch"})
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"starts_at": "Required."}


def test_page_arguments_stay_lenient(client, auth, event, owner):
    """Junk or out-of-range paging is read as the pages read it, never refused."""
    auth.login(owner)
    for query, expected in (("page=0&per_page=abc", (1, 25)), ("page=-2&per_page=900", (1, 200))):
        body = client.get(f"/api/events/{event.id}/messages?{query}").get_json()
        assert (body["page"], body["per_page"]) == expected


def test_the_served_document_is_the_one_the_checks_use(app, document):
    assert api_document(app) == document
