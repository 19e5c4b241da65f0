"""The JSON API: one blueprint, session cookie or Bearer token.

Every endpoint needs a signed-in user (401 otherwise) unless its view is marked
with :func:`public`. Session-cookie calls that change something must carry the
CSRF token (``X-CSRFToken``), so a cookie alone cannot be used cross-site; Bearer
calls need none (a cross-site page cannot set that header). Modules add routes to
``bp``, describe them with :func:`dashboard.api.openapi.operation` and read their input
with :func:`load_body` / :func:`load_query`, after the access checks (so a stranger
gets 404 for another host's object, never a 400 about the body).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pydantic
from flask import Blueprint, Response, current_app, request
from flask_login import current_user

from dashboard.auth.loaders import bearer_token
from dashboard.errors import Conflict, ValidationError
from dashboard.extensions import csrf, db
from dashboard.messages.models import IllegalTransition
from dashboard.web import json_error

bp = Blueprint("api", __name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=pydantic.BaseModel)


def public(view: F) -> F:
    """Mark an API view as reachable without a signed-in user (it checks access itself)."""
    view.api_public = True  # type: ignore[attr-defined]
    return view


def bearer_request() -> bool:
    """The caller is the Bearer token's user, never the cookie's (see auth/loaders.py)."""
    return bearer_token(request) is not None


@bp.before_request
def _authenticate() -> Response | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "api_public", False):
        return None
    if not current_user.is_authenticated:
        response = json_error(
            401, "Authentication required: sign in, or send Authorization: Bearer <token>."
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if (
        request.method not in SAFE_METHODS
        and not bearer_request()
        and current_app.config.get("WTF_CSRF_ENABLED", True)
    ):
        csrf.protect()  # 400 when the session call lacks the token
    return None


def load_body(model: type[M]) -> M:
    """The request's JSON object read by ``model``; malformed or missing JSON is a 400."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise ValidationError({"__all__": "The JSON body is nested too deeply."}) from None
    if not isinstance(data, dict):
        raise ValidationError(
            {"__all__": "Send a JSON object as the body, with Content-Type: application/json."}
        )
    return validate(model, data)


def load_query(model: type[M]) -> M:
    """The query string read by ``model`` (the first value of a repeated parameter)."""
    return validate(model, request.args.to_dict())


def validate(model: type[M], data: Any) -> M:
    """``model`` read from ``data``; what is wrong becomes a ValidationError per field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationError(field_errors(error, model)) from None


def field_errors(error: pydantic.ValidationError, model: type[Any]) -> dict[str, str]:
    """One message per field (dotted path, or ``__all__`` for the whole object)."""
    found: dict[str, str] = {}
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or "__all__"
        found.setdefault(name, _describe(item, name, model))
    return found


def _describe(item: Any, name: str, model: type[Any]) -> str:
    kind = item["type"]
    if kind == "missing":
        return "Required."
    if kind == "extra_forbidden":
        return f"Unknown field; allowed: {', '.join(sorted(model.model_fields))}."
    if kind == "string_type":
        return "Must be a string."
    if kind == "enum":
        given = repr(item["input"])
        given = given if len(given) <= 42 else given[:40] + "..."
        return f"Unknown {name} {given}; use one of: {item['ctx']['expected']}."
    return str(item["msg"])


@bp.errorhandler(ValidationError)
def _bad_input(error: ValidationError) -> Response:
    db.session.rollback()
    fields = {k: v for k, v in error.errors.items() if k != "__all__"}
    message = error.errors.get("__all__") or "Some fields are not valid: " + "; ".join(
        f"{name}: {text}" for name, text in fields.items()
    )
    return json_error(400, message, fields=fields)


@bp.errorhandler(IllegalTransition)
def _illegal_transition(error: IllegalTransition) -> Response:
    db.session.rollback()
    return json_error(409, str(error), current_status=error.current.value)


@bp.errorhandler(Conflict)
def _conflict(error: Conflict) -> Response:
    db.session.rollback()
    return json_error(409, str(error) or "Conflict.")


def _load_route_modules() -> None:
    """Import every module of this package: each registers its routes on ``bp`` on import
    (so a new ``api/<domain>.py`` needs no edit here)."""
    import importlib
    import pkgutil

    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_load_route_modules()
