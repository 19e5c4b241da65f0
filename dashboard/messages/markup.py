"""A message body (Markdown with placeholders) as safe HTML and as plain text, compiled once.

Placeholders are swapped for *markers* (random lower-case words) before anything else
runs, so that Markdown, the sanitizer, the layout and the CSS inliner all carry them
through untouched, wherever they stand: in text, in a link's text, inside a link's URL.
The finished HTML is then cut at the markers into a ``SlotTemplate``; each slot knows
its place and encodes its guest's value for it when a guest's copy is written:

- in text or an ordinary attribute: HTML-escaped (a guest called ``<b>Ann</b>`` reads
  as exactly that);
- at the start of a link's URL: a link value (the RSVP or unsubscribe link we made) goes
  in as it is, escaped for the attribute; any other value is percent-encoded, so a guest
  name can never become a ``javascript:`` URL;
- inside a URL: percent-encoded, then escaped.

Markdown runs with raw HTML disabled and its output is sanitized by nh3; the values come
in only after that, escaped, so nothing a host or a guest types can add markup.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import quote

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import escape

from dashboard.messages.placeholders import Template, compile_template

#: Placeholders whose value is a URL we made ourselves: they may start a link.
LINK_NAMES = frozenset({"rsvp_link", "unsubscribe_link", "calendar_link"})

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code",
    "pre", "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th",
    "td",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
URL_ATTRIBUTES = frozenset({"href", "src"})


class Markers:
    """One marker per placeholder name, for one compilation. The random part is drawn
    until it appears in none of the texts being compiled, so no host text can fake one."""

    def __init__(self, names: Iterable[str], texts: Iterable[str]):
        seen = "\n".join(texts).lower()
        nonce = secrets.token_hex(5)
        while nonce in seen:
            nonce = secrets.token_hex(5)
        self.names = tuple(dict.fromkeys(names))
        self.marker = {name: f"zq{nonce}n{i}qz" for i, name in enumerate(self.names)}
        self.name_of = {marker: name for name, marker in self.marker.items()}
        self.pattern = re.compile(f"zq{nonce}n\\d+qz")

    def __getitem__(self, name: str) -> str:
        return self.marker[name]

    def mark(self, text: str) -> str:
        """``text`` with each known ``{{placeholder}}`` replaced by its marker."""
        template = compile_template(text)
        out = [template.parts[0]]
        for name, literal in zip(template.names, template.parts[1:], strict=True):
            out.append(self.marker.get(name, "{{" + name + "}}"))
            out.append(literal)
        return "".join(out)

    def text_template(self, text: str, known: Mapping[str, str]) -> Template:
        """Plain text cut at the markers: a placeholders ``Template`` (values go in as-is),
        with the ``known`` values (the same for every guest) already written in."""
        parts, names, position = [""], [], 0
        for match in self.pattern.finditer(text):
            parts[-1] += text[position : match.start()]
            name = self.name_of[match.group(0)]
            if name in known:
                parts[-1] += known[name]
            else:
                names.append(name)
                parts.append("")
            position = match.end()
        parts[-1] += text[position:]
        return Template(tuple(parts), tuple(names))


# --- Markdown to safe HTML ---------------------------------------------------------------------


def _link_bare_markers(link_markers: frozenset[str], pattern: re.Pattern[str]) -> Callable:
    """A core rule: a link placeholder standing in plain text becomes a link to itself."""

    def rule(state: StateCore) -> None:
        for block in state.tokens:
            if block.type != "inline" or not block.children:
                continue
            children: list[Token] = []
            depth = 0
            for token in block.children:
                depth += {"link_open": 1, "link_close": -1}.get(token.type, 0)
                if token.type != "text" or depth:
                    children.append(token)
                    continue
                children.extend(_split_text(token.content, link_markers, pattern))
            block.children = children

    return rule


def _split_text(
    content: str, link_markers: frozenset[str], pattern: re.Pattern[str]
) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    for match in pattern.finditer(content):
        if match.group(0) not in link_markers:
            continue
        if match.start() > position:
            tokens.append(_text(content[position : match.start()]))
        link = Token("link_open", "a", 1)
        link.attrs = {"href": match.group(0)}
        tokens += [link, _text(match.group(0)), Token("link_close", "a", -1)]
        position = match.end()
    if position < len(content):
        tokens.append(_text(content[position:]))
    return tokens


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def markdown_html(marked: str, markers: Markers) -> str:
    """Sanitized HTML of a marked body (raw HTML in the source is shown as text)."""
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    links = frozenset(markers[name] for name in markers.names if name in LINK_NAMES)
    md.core.ruler.push("link_markers", _link_bare_markers(links, markers.pattern))
    return nh3.clean(md.render(marked), tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES)


INLINE_LINK = re.compile(
    r"(!?)\[([^\]\n]*)\]\(\s*<?([^\s()<>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
AUTOLINK = re.compile(r"<((?:https?|mailto|tel):[^\s<>]+)>")


def links_written_out(source: str) -> str:
    """The Markdown source as a plain-text reader wants it: ``[RSVP](url)`` becomes
    ``RSVP (url)`` and ``<url>`` becomes ``url``; everything else stays as written."""

    def inline(match: re.Match[str]) -> str:
        text, url = match.group(2).strip(), match.group(3)
        return url if not text or text == url else f"{text} ({url})"

    return AUTOLINK.sub(r"\1", INLINE_LINK.sub(inline, source))


# --- finished HTML: long lines, then cut into slots ----------------------------------------------

_SPACE = frozenset(" \t\n\r\f")
_VERBATIM = re.compile(r"<(/?)(pre|textarea)\b", re.IGNORECASE)


def _break_points(html: str) -> list[int]:
    """Positions of white space that may become a line break without changing what a reader
    sees: between a tag's attributes, or in text outside ``<pre>`` (where a line break is
    just another space). White space inside quoted attribute values is never one."""
    points: list[int] = []
    state, quote, verbatim = "text", "", 0
    for index, char in enumerate(html):
        if state == "text":
            if char == "<":
                state = "tag"
                opening = _VERBATIM.match(html, index)
                if opening:
                    verbatim += -1 if opening.group(1) else 1
            elif char in _SPACE and not verbatim:
                points.append(index)
        elif state == "tag":
            if char in "\"'":
                state, quote = "quote", char
            elif char == ">":
                state = "text"
            elif char in _SPACE:
                points.append(index)
        elif char == quote:
            state = "tag"
    return points


def fold_html(html: str, width: int = 800) -> str:
    """The same page in as few lines as possible, each at most ``width`` characters where
    the markup allows it: every line costs a mail server work, whatever its length."""
    atoms, last = [], 0
    for point in _break_points(html):
        atoms.append(html[last:point])
        last = point + 1
    atoms.append(html[last:])
    lines, current = [], atoms[0]
    for atom in atoms[1:]:
        if len(current) + 1 + len(atom) > width:
            lines.append(current)
            current = atom
        else:
            current = f"{current} {atom}"
    lines.append(current)
    return "\n".join(lines)


class Place(enum.Enum):
    TEXT = "text"  # element text or an ordinary attribute value
    URL_START = "url start"
    URL_PART = "url part"


@dataclass(frozen=True)
class Slot:
    name: str
    place: Place

    @property
    def escaped(self) -> bool:
        """Escaped as it is (else percent-encoded)."""
        return self.place is Place.TEXT or (
            self.place is Place.URL_START and self.name in LINK_NAMES
        )

    def encode(self, value: str) -> str:
        if self.escaped:
            return str(escape(value)) if _HTML_SPECIAL.search(value) else value
        return percent_encoded(value)  # nothing left to escape


def percent_encoded(value: str) -> str:
    """``quote(value, safe="")``, cheaply for our links (a fifth of the cost): up to the
    last "/" they are the same for every guest, and the token after it needs nothing."""
    if not value.isascii():
        return quote(value, safe="")
    head, slash, tail = value.rpartition("/")
    if _URL_SAFE.fullmatch(tail):
        return _percent_head(head + slash) + tail
    return quote(value, safe="")


@lru_cache(maxsize=64)
def _percent_head(value: str) -> str:
    return quote(value, safe="")


#: What HTML escaping changes; most values (links, plain names) have none of it.
_HTML_SPECIAL = re.compile("[&<>\"']")
#: What ``quote`` never encodes.
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


class _Places(HTMLParser):
    """Where each marker stands, in document order (markers are plain words, so the
    parser sees them exactly as they are in the string)."""

    def __init__(self, pattern: re.Pattern[str]):
        super().__init__(convert_charrefs=True)
        self.pattern = pattern
        self.places: list[Place] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            for match in self.pattern.finditer(value or ""):
                if name not in URL_ATTRIBUTES:
                    self.places.append(Place.TEXT)
                elif match.start() == 0:
                    self.places.append(Place.URL_START)
                else:
                    self.places.append(Place.URL_PART)

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.places += [Place.TEXT] * len(self.pattern.findall(data))


@dataclass(frozen=True)
class SlotTemplate:
    """Literal HTML with slots between: parts[0] slot0 parts[1] slot1 ...

    ``render`` encodes each distinct slot once, then joins (``str.format`` would parse
    the whole page again for every guest: six times the cost)."""

    parts: tuple[str, ...]
    slots: tuple[Slot, ...]

    @classmethod
    def cut(cls, html: str, markers: Markers) -> SlotTemplate:
        finder = _Places(markers.pattern)
        finder.feed(html)
        finder.close()
        matches = list(markers.pattern.finditer(html))
        if len(matches) != len(finder.places):
            raise ValueError("a placeholder stands where a mail cannot carry it")
        parts, slots, position = [], [], 0
        for match, place in zip(matches, finder.places, strict=True):
            parts.append(html[position : match.start()])
            slots.append(Slot(markers.name_of[match.group(0)], place))
            position = match.end()
        parts.append(html[position:])
        return cls(tuple(parts), tuple(slots))

    def __post_init__(self) -> None:
        kinds = [(slot.name, slot.escaped) for slot in self.slots]  # one encoding per kind
        first = dict(zip(reversed(kinds), reversed(self.slots), strict=True))
        number = {kind: index for index, kind in enumerate(dict.fromkeys(kinds))}
        object.__setattr__(self, "_distinct", tuple(first[kind] for kind in number))
        object.__setattr__(self, "_numbers", tuple(number[kind] for kind in kinds))

    def bake(self, known: Mapping[str, str]) -> SlotTemplate:
        """The same page with the ``known`` values (the same for every guest) written in."""
        parts, slots = [self.parts[0]], []
        for slot, literal in zip(self.slots, self.parts[1:], strict=True):
            if slot.name in known:
                parts[-1] += slot.encode(known[slot.name]) + literal
            else:
                slots.append(slot)
                parts.append(literal)
        return SlotTemplate(tuple(parts), tuple(slots))

    def render(self, values: Mapping[str, str]) -> str:
        distinct: tuple[Slot, ...] = self._distinct  # type: ignore[attr-defined]
        encoded = [slot.encode(values.get(slot.name, "")) for slot in distinct]
        out = [self.parts[0]]
        for number, literal in zip(self._numbers, self.parts[1:], strict=True):  # type: ignore[attr-defined]
            out += (encoded[number], literal)
        return "".join(out)
