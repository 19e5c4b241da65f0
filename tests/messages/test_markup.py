"""The Markdown body as HTML and text, compiled once: values land escaped for where they stand."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import quote

from dashboard.messages.markup import (
    Markers,
    Place,
    SlotTemplate,
    fold_html,
    links_written_out,
    markdown_html,
)

NAMES = ("guest_name", "venue", "rsvp_link", "unsubscribe_link")
VALUES = {
    "guest_name": '<b>Ann</b> & "Bob"',
    "venue": "javascript:alert(1)",
    "rsvp_link": "http://x.test/r/abc?a=1&b=2",
    "unsubscribe_link": "http://x.test/u/abc",
}


def compile_body(source: str) -> SlotTemplate:
    markers = Markers(NAMES, [source])
    return SlotTemplate.cut(markdown_html(markers.mark(source), markers), markers)


class Links(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name in ("href", "src")]


def test_each_value_is_encoded_for_where_it_stands():
    template = compile_body(
        "Hi {{guest_name}}! [RSVP]({{rsvp_link}}) "
        "[find](https://maps.test/?q={{venue}}&who={{guest_name}}) "
        '[odd]({{venue}}) ![x]({{guest_name}} "{{guest_name}}")'
    )
    places = {(slot.name, slot.place) for slot in template.slots}
    assert places == {
        ("guest_name", Place.TEXT),
        ("rsvp_link", Place.URL_START),
        ("venue", Place.URL_PART),
        ("guest_name", Place.URL_PART),
        ("venue", Place.URL_START),
        ("guest_name", Place.URL_START),
    }
    html = template.render(VALUES)
    assert "Hi &lt;b&gt;Ann&lt;/b&gt; &amp; &#34;Bob&#34;!" in html
    links = Links(html)
    assert "b" not in links.tags
    assert links.hrefs == [
        "http://x.test/r/abc?a=1&b=2",  # our own link, as it is (escaped only for HTML)
        f"https://maps.test/?q={quote(VALUES['venue'], safe='')}&who={quote(VALUES['guest_name'], safe='')}",
        quote("javascript:alert(1)", safe=""),  # a value never becomes a URL scheme
        quote(VALUES["guest_name"], safe=""),
    ]
    assert 'title="&lt;b&gt;Ann&lt;/b&gt; &amp; &#34;Bob&#34;"' in html


def test_raw_html_and_unsafe_links_of_the_source_stay_text():
    html = compile_body(
        '<script>alert(1)</script> <img src=x onerror="alert(2)"> [x](javascript:alert(3)) '
        "[y](data:text/html,hi)"
    ).render(VALUES)
    links = Links(html)
    assert links.tags == ["p"] and links.hrefs == []
    assert "&lt;script&gt;" in html and "onerror=&#34;" not in html


def test_a_bare_link_placeholder_becomes_a_link_but_not_inside_another():
    html = compile_body(
        "Answer: {{rsvp_link}}\n\n[here: {{unsubscribe_link}}](https://x.test)"
    ).render(VALUES)
    assert Links(html).hrefs == ["http://x.test/r/abc?a=1&b=2", "https://x.test"]
    assert ">http://x.test/r/abc?a=1&amp;b=2</a>" in html


def test_markdown_formats_and_the_text_twin_writes_links_out():
    html = compile_body("# Title\n\n- **one**\n- *two*\n\n| a | b |\n|---|---|\n| 1 | 2 |").render(
        VALUES
    )
    assert all(tag in Links(html).tags for tag in ("h1", "ul", "li", "strong", "em", "table"))
    text = links_written_out(
        "See [the map](https://m.test/x) or <https://auto.test/y> or "
        '[https://same.test](https://same.test) ![logo](https://i.test/l.png "Logo")'
    )
    assert text == (
        "See the map (https://m.test/x) or https://auto.test/y or https://same.test "
        "logo (https://i.test/l.png)"
    )


def test_host_text_cannot_forge_a_marker():
    source = "zq0123456789n0qz {{guest_name}}"
    markers = Markers(NAMES, [source])
    assert markers["guest_name"] not in source
    assert compile_body(source).render(VALUES).count("zq0123456789n0qz") == 1


def test_folding_keeps_the_page_and_breaks_only_where_white_space_was():
    html = (
        '<p class="a b"\ntitle="keep  these  spaces">one two three\nfour five six seven</p>'
        "<pre>line one\n  line two keeps its indent</pre><p>eight nine</p>"
    )
    wide, narrow = fold_html(html, 800), fold_html(html, 40)
    # Wide: one line but for the <pre>, whose line break is content.
    assert wide.split("\n") == [
        '<p class="a b" title="keep  these  spaces">one two three four five six seven</p><pre>line one',
        "  line two keeps its indent</pre><p>eight nine</p>",
    ]
    # Narrow: more breaks, each where white space was; nothing else changed.
    assert narrow.replace("\n", " ") == wide.replace("\n", " ")
    assert 'title="keep  these  spaces"' in narrow
    assert "<pre>line one\n  line two keeps its indent</pre>" in narrow
    assert all(len(line) <= 40 for line in narrow.split("<pre>")[0].split("\n"))
    assert narrow.count("\n") > wide.count("\n")
