"""Helpers shared by the blueprints: safe redirect targets, htmx's answer handling.

Where login follows ``next`` (through ``safe_target``): tests/auth/test_login.py."""

from __future__ import annotations

import html
import json
import re

import pytest

from dashboard.web import safe_target

FALLBACK = "/fallback"


@pytest.mark.parametrize(
    "raw",
    [
        "/\\evil.example",
        "\\\\evil.example",
        "//evil.example",
        "//evil.example/events",
        "https://evil.example",
        "https://evil.example/events/3",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        "/events/3\r\nSet-Cookie: x=1",
        "/events/\x00",
        "/events/\x7f",
        "events/3",
        "",
        None,
    ],
)
def test_safe_target_refuses_anything_but_a_local_path(raw):
    assert safe_target(raw, FALLBACK) == FALLBACK


@pytest.mark.parametrize(
    "raw", ["/events/3?tab=sent", "/", "/admin/failures?event=&since=2030-01-01"]
)
def test_safe_target_keeps_a_local_path(raw):
    assert safe_target(raw, FALLBACK) == raw


def _response_handling(page: str) -> list[dict]:
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", page)
    assert meta, "base.html configures htmx through its meta tag"
    return json.loads(html.unescape(meta.group(1)))["responseHandling"]


def _handling_of(rules: list[dict], status: int) -> dict:
    """The first rule whose code matches, as htmx picks it (the code is a regular expression)."""
    return next(rule for rule in rules if re.search(rule["code"], str(status)))


@pytest.mark.parametrize(
    ("status", "swap", "error"),
    [
        (200, True, False),  # htmx's defaults stay
        (204, False, False),
        (302, True, False),
        (400, True, False),  # bad input: its explanation is swapped in
        (409, True, False),  # refused: its explanation is swapped in
        (403, False, True),
        (404, False, True),
        (500, False, True),
        (503, False, True),
    ],
)
def test_htmx_swaps_400_and_409_answers_and_keeps_its_defaults(client, status, swap, error):
    page = client.get("/login").get_data(as_text=True)
    rule = _handling_of(_response_handling(page), status)
    assert rule["swap"] is swap
    assert rule.get("error", False) is error


def test_pages_carry_no_inline_event_handlers(client, auth, make_event, make_guests, owner):
    """A strict Content-Security-Policy forbids inline handlers; confirmations use hx-confirm
    or the deferred static script."""
    event = make_event()
    make_guests(event, 2)
    auth.login()
    client.post("/account/tokens", data={"name": "deploy"})
    for url in (
        f"/events/{event.id}/guests",
        f"/events/{event.id}/collaborators",
        f"/events/{event.id}/communications",
        "/account/tokens",
    ):
        page = client.get(url).get_data(as_text=True)
        assert not re.search(r"\son[a-z]+=|hx-on", page), url
        assert 'src="/static/js/confirm.js" defer' in page


def test_every_remove_and_revoke_button_asks_first(client, auth, make_event, make_guests):
    event = make_event()
    make_guests(event, 1)
    auth.login()
    client.post("/account/tokens", data={"name": "deploy"})
    for url, question in (
        (f"/events/{event.id}/guests", "Remove Guest 0 &lt;guest0@example.org&gt; from"),
        (f"/events/{event.id}/collaborators", "Remove owner@example.com from this event?"),
        ("/account/tokens", "Revoke this token?"),
    ):
        page = client.get(url).get_data(as_text=True)
        forms = [tag for tag in re.findall(r"<form[^>]*>", page) if question in tag]
        # Boosted, so hx-confirm applies; method and action keep it working without JavaScript.
        assert forms and all('hx-boost="true"' in tag for tag in forms), url
        assert all('method="post"' in tag and "action=" in tag for tag in forms), url
    compose = client.get(f"/events/{event.id}/communications").get_data(as_text=True)
    assert 'data-confirm-field="mode" data-confirm-value="send_now"' in compose
