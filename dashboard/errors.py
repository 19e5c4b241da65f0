"""Domain errors shared by services; routes map them to form errors or JSON 400/404/409."""

from __future__ import annotations


class ValidationError(ValueError):
    """Bad input. ``errors`` maps a field name to its message."""

    def __init__(self, errors: dict[str, str] | str):
        if isinstance(errors, str):
            errors = {"__all__": errors}
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" if k != "__all__" else v for k, v in errors.items()))


class Conflict(Exception):
    """The object is in a state that refuses this change (HTTP 409)."""
