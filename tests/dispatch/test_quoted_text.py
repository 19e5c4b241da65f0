"""The per-guest encodings worked out once per message give exactly what encoding each
guest's copy whole gives: the text part's quoted-printable (``QuotedText``,
``quoted_line``), percent-encoding (``percent_encoded``) and the HTML page's slots
(``SlotTemplate``), for any text and any value, hostile ones included."""

from __future__ import annotations

import binascii
from urllib.parse import quote

from hypothesis import example, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from dashboard.dispatch.mime import QuotedText, encode_body, quoted_line
from dashboard.messages.markup import Place, Slot, SlotTemplate, percent_encoded
from dashboard.messages.placeholders import PLACEHOLDERS, Template

#: Whatever quoted-printable treats specially: line ends of every kind, white space at a
#: line's end, "=", a lone ".", control and non-ASCII characters, lines long enough to
#: be soft-broken (the repetition makes 76-character lines likely).
TEXT = st.lists(
    st.sampled_from(
        ["a", "b", " ", "\t", ".", "=", "\r", "\n", "\r\n", "é", "€", "\x00"]
        + ["x" * 37, "y" * 75, "z" * 76, "http://events.test/r/0123abcd"]
    ),
    max_size=40,
).map("".join)
NAMES = st.sampled_from(PLACEHOLDERS)


@st.composite
def templates(draw) -> Template:
    names = draw(st.lists(NAMES, max_size=6))
    parts = draw(st.lists(TEXT, min_size=len(names) + 1, max_size=len(names) + 1))
    return Template(tuple(parts), tuple(names))


VALUES = st.dictionaries(NAMES, TEXT)


@settings(max_examples=600, deadline=None)
@given(templates(), VALUES)
@example(Template(("Dear ", ",\n\nSee you.\n"), ("guest_name",)), {"guest_name": "Ann"})
@example(Template(("a\r", "\nb"), ("guest_name",)), {"guest_name": "\nx"})  # CR, then LF
@example(Template(("", "\r\n"), ("guest_name",)), {"guest_name": "Ann\r"})
@example(Template(("x" * 76, "."), ("venue",)), {"venue": ""})
def test_quoted_text_is_the_whole_text_encoded(template, values):
    assert QuotedText.of(template).render(values) == encode_body(template.render(values))


@settings(max_examples=600, deadline=None)
@given(TEXT.filter(lambda line: "\r" not in line and "\n" not in line), st.booleans())
@example("x" * 76 + ".", True)  # the dot left alone on the last soft-broken line
@example("x" * 151, False)
@example("ends in a space ", True)
def test_a_line_is_encoded_as_the_encoder_would(line, last):
    assert quoted_line(line, last) == encode_body(line if last else line + "\n")


def test_lines_without_values_are_encoded_once_per_message():
    template = Template(
        ("Dear ", ",\nCafé: see you.\nAnswer: ", "\n--\nBye"), ("guest_name", "rsvp_link")
    )
    quoted = QuotedText.of(template)
    constant = [piece for piece in quoted.pieces if isinstance(piece, bytes)]
    assert constant == [encode_body("Caf\u00e9: see you.\n"), encode_body("--\nBye")]
    assert binascii.a2b_qp(quoted.render({"guest_name": "Zoë", "rsvp_link": "http://r"})) == (
        "Dear Zoë,\r\nCafé: see you.\r\nAnswer: http://r\r\n--\r\nBye".encode()
    )


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=30) | st.sampled_from(["http://x.test/r/abc", "a/b/c?d=1", "/", "x/"]))
def test_percent_encoding_is_quotes(value):
    assert percent_encoded(value) == quote(value, safe="")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["guest_name", "rsvp_link", "venue"]), st.sampled_from(Place)),
        max_size=8,
    ),
    st.dictionaries(st.sampled_from(["guest_name", "rsvp_link", "venue"]), st.text(max_size=20)),
)
def test_a_page_is_each_slot_encoded_for_its_place(slots, values):
    """Slots that encode the same value the same way share one encoding per guest."""
    parts = tuple(f"<p{i}>" for i in range(len(slots) + 1))
    page = SlotTemplate(parts, tuple(Slot(name, place) for name, place in slots))

    def encoded(slot: Slot) -> str:
        value = values.get(slot.name, "")
        return str(escape(value)) if slot.escaped else quote(value, safe="")

    expected = parts[0] + "".join(
        encoded(s) + p for s, p in zip(page.slots, parts[1:], strict=True)
    )
    assert page.render(values) == expected
