"""The placeholder scan is linear, and the preview refuses input larger than a save would."""

from __future__ import annotations

import time

import pytest

from dashboard.messages import placeholders
from dashboard.messages.services import MAX_BODY, MAX_SUBJECT

#: 1.9 MB shaped to make a backtracking scan quadratic: about 10^12 steps, hours of CPU.
HOSTILE = [
    "{{" + " " * 1_900_000,
    "{{" * 200_000 + " " * 200_000,
    "{{ a" * 200_000,
    "{{" + "a" * 1_000_000 + " " * 500_000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=["spaces", "braces", "names", "name-then-spaces"])
def test_scan_is_linear_on_hostile_input(text):
    started = time.perf_counter()
    assert placeholders.unknown_placeholders(text) == []
    template = placeholders.compile_template(text)
    placeholders.compile_template.cache_clear()
    # A linear scan takes milliseconds; the old pattern needed hours for the first case.
    assert time.perf_counter() - started < 2.0
    assert "".join(template.parts) == text


def test_scan_still_reads_every_spelling_of_a_placeholder():
    text = "{{ guest_name }} {{venue}}{{  event_name}} {{ two words }} {{}} {{{rsvp_link}}}"
    assert placeholders.unknown_placeholders(text) == [""]
    template = placeholders.compile_template(text)
    assert template.names == ("guest_name", "venue", "event_name", "", "rsvp_link")
    assert placeholders.render("Hi {{ guest_name }}!", {"guest_name": "Ada"}) == "Hi Ada!"


def _preview(client, event, **data):
    form = {"audience": "everyone", "subject": "Hi", "body": "Body", **data}
    return client.post(f"/events/{event.id}/communications/preview", data=form)


@pytest.mark.parametrize(
    ("field", "limit", "label"),
    [("body", MAX_BODY, "Message"), ("subject", MAX_SUBJECT, "Subject")],
)
def test_preview_input_is_capped_like_a_save(
    client, auth, event, viewer, make_guests, field, limit, label
):
    make_guests(event, 1)
    auth.login(viewer)
    response = _preview(client, event, **{field: "{{" + " " * limit})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"{label}: {limit + 2:,} characters; at most {limit:,}." in text
    assert "preview-card" not in text  # nothing was rendered
    fits = _preview(client, event, **{field: "x" * limit}).get_data(as_text=True)
    assert "preview-card" in fits
