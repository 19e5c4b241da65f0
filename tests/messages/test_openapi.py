"""The OpenAPI document covers every /api route with its methods, and stays a valid shape."""

from __future__ import annotations

import re

from dashboard.api import openapi

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def api_routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    return routes


def test_every_api_route_is_documented_with_its_methods(app, client):
    document = client.get("/api/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    missing = {
        f"{method.upper()} {path}"
        for path, methods in api_routes(app).items()
        for method in methods
        if method not in paths.get(path, {})
    }
    assert not missing, f"undocumented API operations: {sorted(missing)}"


def test_every_documented_operation_exists(app, client):
    routes = api_routes(app)
    document = client.get("/api/openapi.json").get_json()
    extra = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in openapi.HTTP_METHODS and method not in routes.get(path, set())
    }
    assert not extra, f"documented but not routed: {sorted(extra)}"


def test_path_parameters_match_the_path(client):
    document = client.get("/api/openapi.json").get_json()
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, spec in item.items():
            if method not in openapi.HTTP_METHODS:
                continue
            declared = {p["name"] for p in spec.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            assert spec["responses"], (method, path)


def test_references_resolve(client):
    document = client.get("/api/openapi.json").get_json()
    text = str(document)
    for kind, name in re.findall(r"#/components/(schemas|responses)/(\w+)", text):
        assert name in document["components"][kind], name


def test_the_message_schema_names_the_design_fields(client):
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    assert set(schemas["Message"]["required"]) == {
        "id",
        "event_id",
        "kind",
        "label",
        "audience",
        "channel",
        "subject",
        "body",
        "status",
        "send_at",
    }
    assert {"id", "name", "starts_at", "timezone", "venue"} <= set(schemas["Event"]["properties"])
    assert {"id", "name", "email", "rsvp_status", "unsubscribed"} <= set(
        schemas["Guest"]["properties"]
    )


def test_other_modules_can_register_operations(app, monkeypatch):
    monkeypatch.setattr(openapi, "_OPERATIONS", {})
    monkeypatch.setattr(openapi, "_SCHEMAS", {})
    openapi.schema("Batch", {"type": "object"})
    openapi.document(
        "/api/batches/{batch_id}",
        "get",
        openapi.operation("One batch", tag="dispatch", ok="Batch", errors=(401, 404)),
    )
    with app.test_request_context():
        document = openapi.build_document()
    operation = document["paths"]["/api/batches/{batch_id}"]["get"]
    assert operation["summary"] == "One batch"
    assert operation["parameters"][0] == {
        "name": "batch_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Batch"
    }
    assert "Batch" in document["components"]["schemas"]


def test_module_level_paths_are_renamed_to_the_route_parameters(app, monkeypatch):
    import dashboard.api.events as events_module

    monkeypatch.setattr(
        events_module,
        "OPENAPI_PATHS",
        {
            "/api/events/{id}/guests": {
                "put": {
                    "summary": "x",
                    "parameters": [{"name": "id", "in": "path", "required": True}],
                    "responses": {},
                }
            }
        },
        raising=False,
    )
    with app.test_request_context():
        item = openapi.build_document()["paths"]["/api/events/{event_id}/guests"]
    assert item["put"]["parameters"][0]["name"] == "event_id"
    assert "post" in item
