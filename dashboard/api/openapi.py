"""The OpenAPI 3 document at /api/openapi.json, built from a registry.

Each API module documents its own operations when it is imported::

    from dashboard.api.openapi import document, operation, schema

    document("/api/batches/{batch_id}", "get", operation("One batch", tag="dispatch", ok="Batch"))

Paths are written the OpenAPI way (``{batch_id}`` for Flask's ``<int:batch_id>``);
path parameters are filled in automatically. A module may instead define module-level
``OPENAPI_PATHS`` (path -> path item) and ``OPENAPI_SCHEMAS`` dicts; they are merged at
request time, and a path whose parameter names differ from its route's (``{id}`` for
``<int:event_id>``) is renamed to the route's. A test checks that every rule under
/api is documented with its methods.
"""

from __future__ import annotations

import copy
import re
import sys
from typing import Any

from flask import Flask, Response, current_app, jsonify

from dashboard.api import bp, public

_OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {}
_SCHEMAS: dict[str, dict[str, Any]] = {}
_RULE_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_PATH_PARAM = re.compile(r"\{(\w+)\}")


def document(path: str, method: str, spec: dict[str, Any]) -> None:
    """Register one operation (``method`` like "get"); a later call for the same pair wins."""
    _OPERATIONS.setdefault(path, {})[method.lower()] = spec


def schema(name: str, spec: dict[str, Any]) -> None:
    """Register a component schema, referenced as ``ref(name)``."""
    _SCHEMAS[name] = spec


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_path(rule: str) -> str:
    """Flask rule -> OpenAPI path: ``/api/events/<int:event_id>`` -> ``/api/events/{event_id}``."""
    return _RULE_PARAM.sub(lambda m: "{" + m.group("name") + "}", rule)


def operation(
    summary: str,
    *,
    tag: str,
    ok: str | dict[str, Any] | None = None,
    status: int = 200,
    body: str | dict[str, Any] | None = None,
    query: tuple[dict[str, Any], ...] = (),
    errors: tuple[int, ...] = (400, 401, 403, 404),
    description: str | None = None,
    auth: bool = True,
) -> dict[str, Any]:
    """A compact way to write an operation object."""
    spec: dict[str, Any] = {"summary": summary, "tags": [tag]}
    if description:
        spec["description"] = description
    if query:
        spec["parameters"] = list(query)
    if body is not None:
        body_schema = ref(body) if isinstance(body, str) else body
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body_schema}},
        }
    response: dict[str, Any] = {"description": "OK"}
    if ok is not None:
        ok_schema = ref(ok) if isinstance(ok, str) else ok
        response["content"] = {"application/json": {"schema": ok_schema}}
    responses: dict[str, Any] = {str(status): response}
    for code in errors:
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    spec["responses"] = responses
    if not auth:
        spec["security"] = []
    return spec


def query_param(
    name: str, description: str, schema_: dict[str, Any] | None = None, *, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema_ or {"type": "string"},
    }


def page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total"],
        "properties": {
            "items": {"type": "array", "items": ref(item)},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {"type": "integer"},
        },
    }


PAGE_PARAMS = (
    query_param("page", "Page number, from 1.", {"type": "integer", "minimum": 1}),
    query_param(
        "per_page",
        "Items per page (at most 200).",
        {"type": "integer", "minimum": 1, "maximum": 200},
    ),
)

_ERROR_TEXT = {
    400: "Bad input: `error` says what, `fields` maps field names to messages.",
    401: "Not signed in and no valid Bearer token.",
    403: "Your role on this event does not allow this.",
    404: "No such object, or it belongs to an event you cannot see.",
    409: "The object's state refuses this change (e.g. the message is already sending).",
}


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _registered_operations() -> dict[str, dict[str, Any]]:
    """document() calls, plus any ``OPENAPI_PATHS`` dict of a loaded api module.

    ``OPENAPI_SCHEMAS`` dicts are merged into the components the same way.
    """
    merged: dict[str, dict[str, Any]] = copy.deepcopy(_OPERATIONS)
    for module in _api_modules():
        extra = getattr(module, "OPENAPI_PATHS", None)
        if isinstance(extra, dict):
            for path, item in extra.items():
                target = merged.setdefault(path, {})
                for key, spec in item.items():
                    target.setdefault(key, copy.deepcopy(spec))
    return merged


def _registered_schemas() -> dict[str, Any]:
    schemas = copy.deepcopy(_SCHEMAS)
    for module in _api_modules():
        extra = getattr(module, "OPENAPI_SCHEMAS", None)
        if isinstance(extra, dict):
            for name, spec in extra.items():
                schemas.setdefault(name, copy.deepcopy(spec))
    return schemas


def _api_modules() -> list[Any]:
    prefix = __name__.rsplit(".", 1)[0] + "."
    return [
        module for name, module in sorted(sys.modules.items()) if name.startswith(prefix) and module
    ]


def _segments(path: str) -> list[str | None]:
    """Path segments, with None for a parameter."""
    return [None if _PATH_PARAM.fullmatch(part) else part for part in path.strip("/").split("/")]


def _canonical_paths(app: Flask) -> dict[tuple[str | None, ...], str]:
    """The app's /api rules in OpenAPI form, keyed by their shape (static parts, holes)."""
    shapes: dict[tuple[str | None, ...], str] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = openapi_path(rule.rule)
            shapes.setdefault(tuple(_segments(path)), path)
    return shapes


def _rename_to_rule(
    path: str, item: dict[str, Any], shapes: dict[tuple[str | None, ...], str]
) -> str:
    """Use the route's own parameter names (``{id}`` -> ``{event_id}``), in path and parameters."""
    canonical = shapes.get(tuple(_segments(path)))
    if canonical is None or canonical == path:
        return path
    renames = dict(zip(_PATH_PARAM.findall(path), _PATH_PARAM.findall(canonical), strict=True))
    for spec in [item, *(item[m] for m in HTTP_METHODS if m in item)]:
        for param in spec.get("parameters", []):
            if param.get("in") == "path" and param.get("name") in renames:
                param["name"] = renames[param["name"]]
    return canonical


def build_document(app: Flask | None = None) -> dict[str, Any]:
    shapes = _canonical_paths(app or current_app)
    paths: dict[str, Any] = {}
    for raw_path, item in sorted(_registered_operations().items()):
        path = _rename_to_rule(raw_path, item, shapes)
        names = _PATH_PARAM.findall(path)
        entry: dict[str, Any] = paths.setdefault(path, {})
        for method, spec in sorted(item.items()):
            if method not in HTTP_METHODS:
                entry.setdefault(method, spec)
                continue
            declared = {p["name"] for p in spec.get("parameters", []) if p.get("in") == "path"}
            path_params = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "integer"}}
                for n in names
                if n not in declared
            ]
            if path_params:
                spec["parameters"] = path_params + spec.get("parameters", [])
            spec.setdefault("operationId", f"{method}_{_operation_slug(path)}")
            entry.setdefault(method, spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Event communications dashboard API",
            "version": "1",
            "description": (
                "Session cookie (with an X-CSRFToken header on changes) or "
                '`Authorization: Bearer <token>`. Errors are `{"error": "..."}` with the '
                "status code. Times are ISO 8601 with an offset; naive input is read in the "
                "event's time zone."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                **_registered_schemas(),
            },
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": {"application/json": {"schema": ref("Error")}},
                }
                for code, text in _ERROR_TEXT.items()
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


def _operation_slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.removeprefix("/api/").lower()).strip("_")


@bp.get("/openapi.json")
@public
def openapi_json() -> Response:
    return jsonify(build_document())


document(
    "/api/openapi.json",
    "get",
    operation("This OpenAPI document", tag="meta", ok={"type": "object"}, errors=(), auth=False),
)
