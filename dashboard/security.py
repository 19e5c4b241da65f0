"""What every request and every answer goes through, whatever the route.

- Text that no field of ours may hold is refused before a view reads it: NUL and the other
  control characters except tab, LF and CR; the bidirectional overrides that make a text
  read differently from what it is; lone surrogates (JSON can spell them; no database can
  store them). One 400 names the field. Whether a field may span lines is the field's own
  rule (a subject refuses line breaks with a form error, a name folds them into spaces).
- A JSON body nested deeper than the parser can follow is a 400, not a crash.
- Every answer carries the browser's security headers: a Content-Security-Policy that
  allows nothing inline and no framing, and HSTS when the public address is https. An
  answer that sets its own policy (a sandboxed preview, say) keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.datastructures import MultiDict

#: NUL and the C0 controls except tab, LF and CR; DEL and the C1 controls; the bidi
#: embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069); lone surrogates.
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"


class HostileInput(ValueError):
    def __init__(self, field: str, reason: str):
        # A field name can be hostile too: it is named in the answer, escaped.
        self.field = field if FORBIDDEN.search(field) is None else ascii(field)
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def problem(text: str) -> str | None:
    """Why no field may hold ``text``, or None."""
    found = FORBIDDEN.search(text)
    if found is None:
        return None
    char = found.group()
    return f"Contains {_name(char)} (U+{ord(char):04X}), which is not allowed."


def _name(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "a lone surrogate"
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return "a bidirectional override"
    return "a control character"


def _pairs(values: MultiDict[str, str]) -> Iterator[tuple[str, str]]:
    for key, value in values.items(multi=True):
        yield key, key
        yield key, value


def _json_strings(data: Any) -> Iterator[tuple[str, str]]:
    """Every string of a JSON document (keys too) with its dotted path; no recursion, so
    any depth the parser accepted is walked."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path or "__all__", value
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                yield child, str(key)
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))


def check_request() -> None:
    """Raise HostileInput for the first value of the request that no field may hold."""
    sources = [_pairs(request.args)]
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sources.append(_pairs(request.form))
    for source in sources:
        for field, value in source:
            if reason := problem(value):
                raise HostileInput(field, reason)
    if request.is_json:
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            raise HostileInput("__all__", "The JSON body is nested too deeply.") from None
        for field, value in _json_strings(data):
            if reason := problem(value):
                raise HostileInput(field, reason)


def refusal(error: HostileInput, wants_json: bool) -> Response | tuple[str, int]:
    if error.field == "__all__":
        message = error.reason
    else:
        message = f"The field “{error.field}” is not valid: {error.reason}"
    if wants_json:
        from dashboard.web import json_error

        fields = {} if error.field == "__all__" else {error.field: error.reason}
        return json_error(400, message, fields=fields)
    template = (
        "errors/_bad_input.html"
        if request.headers.get("HX-Request") == "true"
        else "errors/bad_input.html"
    )
    return render_template(template, message=message), 400


def security_headers(app: Flask, response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if app.config.get("PUBLIC_BASE_URL", "").startswith("https://"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response
