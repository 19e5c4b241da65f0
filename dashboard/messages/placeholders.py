"""Placeholder substitution: plain text replacement, never template execution.

A template is split once into literal parts and placeholder names, so rendering
10,000 recipients costs one join each, and a value that itself contains ``{{``
(a guest called ``{{venue}}``) is inserted as-is, never re-scanned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

PLACEHOLDERS: tuple[str, ...] = (
    "guest_name",
    "event_name",
    "event_date",
    "venue",
    "rsvp_link",
    "unsubscribe_link",
)
#: ``{{ name }}``. The quantifiers are possessive (``*+``): the three runs cannot overlap, so
#: giving characters back never finds another match, and refusing to (instead of trying
#: every split of a run of spaces) keeps the scan linear: ``{{`` followed by 100,000 spaces
#: costs one pass, not 10^10 steps that would hold the process for minutes.
PATTERN = re.compile(r"\{\{\s*+([^{}\s]*+)\s*+\}\}")


class PlaceholderError(ValueError):
    def __init__(self, unknown: list[str]):
        self.unknown = unknown
        names = ", ".join("{{" + name + "}}" for name in unknown)
        valid = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
        super().__init__(f"Unknown placeholder {names}. Valid placeholders: {valid}.")


def unknown_placeholders(text: str) -> list[str]:
    seen: list[str] = []
    for match in PATTERN.finditer(text):
        name = match.group(1)
        if name not in PLACEHOLDERS and name not in seen:
            seen.append(name)
    return seen


def validate(text: str) -> None:
    unknown = unknown_placeholders(text)
    if unknown:
        raise PlaceholderError(unknown)


@dataclass(frozen=True)
class Template:
    """Literal parts interleaved with placeholder names: parts[0] name0 parts[1] name1 ..."""

    parts: tuple[str, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        pairs = tuple(zip(self.names, self.parts[1:], strict=True))
        object.__setattr__(self, "_pairs", pairs)

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each name's value; a name without one stays as it was written."""
        out = [self.parts[0]]
        get = values.get
        for name, literal in self._pairs:  # type: ignore[attr-defined]
            value = get(name)
            out += ("{{" + name + "}}" if value is None else value, literal)
        return "".join(out)


@lru_cache(maxsize=256)
def compile_template(text: str) -> Template:
    parts: list[str] = []
    names: list[str] = []
    position = 0
    for match in PATTERN.finditer(text):
        parts.append(text[position : match.start()])
        names.append(match.group(1))
        position = match.end()
    parts.append(text[position:])
    return Template(tuple(parts), tuple(names))


def render(text: str, values: Mapping[str, str]) -> str:
    return compile_template(text).render(values)
