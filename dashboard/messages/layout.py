"""The e-mail around a message: one responsive HTML page and its plain-text twin.

Both are rendered once per message (Markdown, sanitizing, the Jinja layout, CSS inlining),
with markers where the guest's values go (``markup``); writing one guest's copy is then
only joining strings with their values, escaped for where they stand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import css_inline
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from dashboard import ROOT
from dashboard.events.calendar import google_url, outlook_url
from dashboard.messages.markup import (
    Markers,
    SlotTemplate,
    fold_html,
    links_written_out,
    markdown_html,
)
from dashboard.messages.placeholders import PLACEHOLDERS, Template
from dashboard.messages.rendering import MessageRenderer, event_time_span

#: What a guest's copy fills in: the host's placeholders and the calendar download link.
NAMES = (*PLACEHOLDERS, "calendar_link")

_templates = Environment(
    loader=FileSystemLoader(ROOT / "templates" / "mail"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
#: The layout's own rules go onto the elements; the @media rule stays in a <style>.
_inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class MailLayout:
    text: Template
    html: SlotTemplate

    @classmethod
    def build(cls, renderer: MessageRenderer) -> MailLayout:
        event = renderer.event
        markers = Markers(
            NAMES, [renderer.subject_source, renderer.body_source, event.name, event.venue]
        )
        marked = markers.mark(renderer.body_source)
        details = f"RSVP: {markers['rsvp_link']}"
        context = {
            "event": event,
            "when": event_time_span(event),
            "m": {name: markers[name] for name in markers.names},
            "calendar": renderer.attach_calendar,
            "google_url": google_url(event, details),
            "outlook_url": outlook_url(event, details),
        }
        text = _templates.get_template("layout.txt").render(
            body=links_written_out(marked).rstrip(), **context
        )
        html = _templates.get_template("layout.html").render(
            body=Markup(markdown_html(marked, markers)),
            subject=" ".join(markers.mark(renderer.subject_source).split()),
            **context,
        )
        known = renderer.event_values  # the same for every guest: written in once
        page = SlotTemplate.cut(fold_html(_inliner.inline(html)), markers).bake(known)
        ascii_parts = tuple(p.encode("ascii", "xmlcharrefreplace").decode() for p in page.parts)
        return cls(markers.text_template(text, known), SlotTemplate(ascii_parts, page.slots))

    def render(self, values: Mapping[str, str]) -> tuple[str, str]:
        """One guest's (text, html)."""
        return self.text.render(values), self.html.render(values)
