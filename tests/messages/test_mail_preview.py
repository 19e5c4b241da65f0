"""The compose preview shows the e-mail exactly as dispatch composes it: its HTML from a URL
of its own, with its own security policy, in a sandboxed frame; its text version beside it."""

from __future__ import annotations

import re

import pytest

from dashboard.events.models import RsvpStatus
from dashboard.extensions import db
from tests.helpers import login_session

FIELDS = {
    "audience": "everyone",
    "channel": "email",
    "subject": "For {{guest_name}}",
    "body": "Hi {{guest_name}}, **welcome**! [Answer]({{rsvp_link}}) <script>alert(1)</script>",
}


@pytest.fixture
def ann(event, make_guests):
    [guest] = make_guests(event, 1, RsvpStatus.ATTENDING)
    guest.name = "<b>Ann</b>"
    db.session.commit()
    return guest


def url(event, tail: str) -> str:
    return f"/events/{event.id}/communications{tail}"


def test_the_preview_holds_a_sandboxed_frame_and_the_text_version(client, auth, owner, event, ann):
    auth.login(owner)
    page = client.post(url(event, "/preview"), data={**FIELDS, "attach_calendar": "y"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    [frame] = re.findall(r"<iframe[^>]*>", html)
    assert re.search(r"\ssandbox[\s>]", frame) and "allow-scripts" not in frame
    assert 'name="preview-mail"' in frame
    [form] = re.findall(r"<form[^>]*data-mail-frame[^>]*>", html)
    assert 'target="preview-mail"' in form and url(event, "/preview/mail") in form
    assert 'name="attach_calendar" value="y"' in html and 'name="csrf_token"' in html
    # The text version is the text part of the composed e-mail, escaped into the page.
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;, **welcome**! Answer (http://dashboard.test/r/" in html
    assert "Your answer: http://dashboard.test/r/" in html and "<b>Ann</b>" not in html
    assert "Attached: invite.ics (text/calendar)" in html


def test_the_frame_document_has_its_own_policy_and_inert_links(client, auth, owner, event, ann):
    auth.login(owner)
    response = client.post(url(event, "/preview/mail"), data=FIELDS)
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy and "frame-ancestors 'self'" in policy
    assert policy.endswith("; sandbox")  # no scripts even if the URL is opened on its own
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    html = response.get_data(as_text=True)
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;" in html and "<b>Ann</b>" not in html
    assert "&lt;script&gt;" in html and "<script" not in html
    assert " href=" not in html  # links lead nowhere in a preview...
    assert 'data-href="http://dashboard.test/r/preview"' in html  # ...but are shown, inert
    assert ann.token not in html  # a guest's token is never shown to a host
    assert 'style="' in html  # the layout's CSS is inlined


def test_a_viewer_may_preview_and_a_stranger_may_not(client, auth, event, ann, viewer, stranger):
    auth.login(viewer)
    assert client.post(url(event, "/preview/mail"), data=FIELDS).status_code == 200
    auth.logout()
    auth.login(stranger)
    assert client.post(url(event, "/preview/mail"), data=FIELDS).status_code == 404


def test_nothing_to_frame_without_a_guest_or_with_errors(client, auth, owner, event):
    auth.login(owner)
    empty = client.post(url(event, "/preview/mail"), data=FIELDS)
    assert empty.status_code == 200 and "Nothing to show" in empty.get_data(as_text=True)
    assert "script-src" not in empty.headers["Content-Security-Policy"]
    fragment = client.post(url(event, "/preview"), data={**FIELDS, "body": "{{nope}}"})
    assert "Unknown placeholder {{nope}}" in fragment.get_data(as_text=True)
    # The frame element stays (htmx keeps it across refreshes), in a hidden container.
    assert re.search(
        r"<div hidden>\s*<iframe[^>]*></iframe>\s*</div>", fragment.get_data(as_text=True)
    )
    assert "data-mail-frame" not in fragment.get_data(as_text=True)


def test_an_empty_compose_form_composes_no_mail(client, auth, owner, event, ann):
    """Every Communications page opens with one: nothing to lay out yet."""
    auth.login(owner)
    html = client.get(url(event, "")).get_data(as_text=True)
    assert "Type the message to see it here." in html
    assert "data-mail-frame" not in html and "Versions of the e-mail" not in html


def test_the_frame_url_needs_a_csrf_token(app, client, owner, event, ann):
    app.config["WTF_CSRF_ENABLED"] = True
    login_session(client, owner)
    refused = client.post(url(event, "/preview/mail"), data=FIELDS)
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
