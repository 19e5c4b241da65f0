"""Domain errors shared by services; routes map them to form errors or JSON 400/404/409."""

from __future__ import annotations

from typing import Any


class ValidationError(ValueError):
    """Bad input. ``errors`` maps a field name to its message."""

    def __init__(self, errors: dict[str, str] | str):
        if isinstance(errors, str):
            errors = {"__all__": errors}
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" if k != "__all__" else v for k, v in errors.items()))


class Conflict(Exception):
    """The object is in a state that refuses this change (HTTP 409)."""


class IllegalTransition(Conflict):
    """A status change the state machine refuses (HTTP 409); ``current`` is what the row holds."""

    def __init__(self, current: Any, target: Any, message: str | None = None):
        self.current = current
        self.target = target
        super().__init__(
            message or f"This is {current.label.lower()} and cannot become {target.label.lower()}."
        )
