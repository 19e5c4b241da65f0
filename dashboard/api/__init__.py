"""The JSON API: one blueprint, session cookie or Bearer token.

Every endpoint needs a signed-in user (401 otherwise) unless its view is marked
with :func:`public`. Session-cookie calls that change something must carry the
CSRF token (``X-CSRFToken``), so a cookie alone cannot be used cross-site; Bearer
calls need none (a cross-site page cannot set that header). Modules add routes to
``bp`` and document them with :func:`dashboard.api.openapi.document`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, request
from flask_login import current_user

from dashboard.errors import Conflict, ValidationError
from dashboard.extensions import csrf, db
from dashboard.messages.models import IllegalTransition
from dashboard.web import json_error

bp = Blueprint("api", __name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable[..., Any])


def public(view: F) -> F:
    """Mark an API view as reachable without a signed-in user (it checks access itself)."""
    view.api_public = True  # type: ignore[attr-defined]
    return view


def bearer_request() -> bool:
    return request.headers.get("Authorization", "").startswith("Bearer ")


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


def json_body() -> dict[str, Any]:
    """The request's JSON object; malformed or missing JSON is a 400, never a 500."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError(
            {"__all__": "Send a JSON object as the body, with Content-Type: application/json."}
        )
    return data


def reject_unknown(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(
            {name: f"Unknown field; allowed: {', '.join(sorted(allowed))}." for name in unknown}
        )


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
    """Import every module of this package: each registers its routes on ``bp`` and its
    operations in the OpenAPI registry on import (so a new ``api/<domain>.py`` needs no
    edit here)."""
    import importlib
    import pkgutil

    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_load_route_modules()
