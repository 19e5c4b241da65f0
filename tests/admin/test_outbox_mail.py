"""The Outbox shows each e-mail the log transport kept exactly as it was composed: the HTML
in a sandboxed frame served with its own policy, the text version, the attachment."""

from __future__ import annotations

import re

import pytest

from dashboard import create_app
from dashboard.dispatch.scheduler import build_dispatcher
from dashboard.dispatch.transports import OUTBOX
from dashboard.extensions import db
from tests.conftest import PASSWORD


@pytest.fixture
def log_app(app_env):
    return create_app(
        overrides={"WTF_CSRF_ENABLED": False}, env={**app_env, "MAIL_TRANSPORT": "log"}
    )


@pytest.fixture
def outbox():
    saved = list(OUTBOX)
    OUTBOX.clear()
    yield OUTBOX
    OUTBOX.clear()
    OUTBOX.extend(saved)


def test_an_outbox_mail_shows_as_sent(
    log_app, outbox, make_user, make_event, make_guests, make_message
):
    make_user("root@example.com", admin=True)
    make_user("host@example.com")
    event = make_event()
    event.sender_name = "Gala Team"
    [guest] = make_guests(event, 1)
    guest.name = "<b>Ann</b>"
    message = make_message(event, subject="Hi {{guest_name}}", body="See [you]({{rsvp_link}}).")
    message.attach_calendar = True
    db.session.commit()
    with log_app.app_context():
        build_dispatcher(log_app, db.session, worker="log").poll()
    [entry] = outbox
    with log_app.test_client() as client:
        client.post("/login", data={"email": "root@example.com", "password": PASSWORD})
        listing = client.get("/admin/outbox").get_data(as_text=True)
        assert f'href="/admin/outbox/{entry["id"]}"' in listing
        page = client.get(f"/admin/outbox/{entry['id']}").get_data(as_text=True)
        frame = client.get(f"/admin/outbox/{entry['id']}/html")
        gone = client.get(f"/admin/outbox/{entry['id'] + 1}")
        client.post("/logout")
        client.post("/login", data={"email": "host@example.com", "password": PASSWORD})
        hidden = client.get(f"/admin/outbox/{entry['id']}/html")

    assert "Gala Team &lt;noreply@localhost&gt;" in page
    [iframe] = re.findall(r"<iframe[^>]*>", page)
    assert re.search(r"\ssandbox[\s>]", iframe) and "allow-scripts" not in iframe
    assert f'src="/admin/outbox/{entry["id"]}/html"' in iframe
    assert f"See you (http://dashboard.test/r/{guest.token})." in page  # the text version
    assert "Attached: invite.ics (text/calendar)" in page
    assert frame.status_code == 200
    assert "script-src" not in frame.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in frame.headers["Content-Security-Policy"]
    body = frame.get_data(as_text=True)
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;" in body and " href=" not in body
    assert gone.status_code == 404 and hidden.status_code == 404
