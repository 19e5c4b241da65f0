"""Every /api answer a test receives is checked against /api/openapi.json: its status is one
the operation lists, and its JSON body matches that response's schema (JSON Schema 2020-12,
as OpenAPI 3.1 defines it, with formats such as date-time checked). This is the check a
fuzzer's "response schema conformance" makes, run on every answer of the API tests.

A test module opts in by importing the autouse fixture ``answers_match_the_document``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.test import TestResponse

DOCUMENT_URI = "urn:dashboard-api"
_RULE_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_document: dict[str, Any] | None = None


def api_document(app: Flask) -> dict[str, Any]:
    """The served document (the same for every app of the test run)."""
    global _document
    if _document is None:
        plain = FlaskClient(app, app.response_class, use_cookies=False)
        response = plain.get("/api/openapi.json")
        assert response.status_code == 200
        _document = response.get_json()
    return _document


def schema_validator(document: dict[str, Any], ref: str) -> Draft202012Validator:
    """A validator for ``ref`` (``#/components/schemas/Batch``) inside ``document``."""
    registry: Registry = Registry().with_resource(
        DOCUMENT_URI, Resource(contents=document, specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": DOCUMENT_URI + ref},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def operation_of(app: Flask, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The documented operation that answers ``method path``, if a route answers it."""
    try:
        rule, _ = app.url_map.bind("localhost").match(path, method=method, return_rule=True)
    except (NotFound, MethodNotAllowed):
        return None
    template = _RULE_PARAM.sub(r"{\1}", rule.rule)
    item = api_document(app)["paths"].get(template)
    assert item is not None, f"{template} is routed but not in the document"
    assert method.lower() in item, f"{method} {template} is routed but not in the document"
    return template, item[method.lower()]


def problems(app: Flask, method: str, path: str, response: TestResponse) -> list[str]:
    """What is wrong with an answer, measured against the document (empty when it conforms)."""
    found = operation_of(app, method, path)
    if found is None:
        return []
    template, operation = found
    status = str(response.status_code)
    where = f"{method} {template} -> {status}"
    documented = operation["responses"].get(status)
    if documented is None:
        return [f"{where}: status not in the document ({sorted(operation['responses'])})"]
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return []
    if not response.is_json:
        return [f"{where}: not JSON ({response.content_type})"]
    validator = schema_validator(api_document(app), schema["$ref"])
    return [
        f"{where}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(response.get_json())
    ]


class DocumentedClient(FlaskClient):
    """A test client that fails the test when an /api answer breaks the document."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        request = response.request
        if request.path.startswith("/api/"):
            wrong = problems(self.application, request.method, request.path, response)
            assert not wrong, "\n".join(wrong)
        return response


@pytest.fixture(autouse=True)
def answers_match_the_document(app: Flask) -> None:
    app.test_client_class = DocumentedClient
