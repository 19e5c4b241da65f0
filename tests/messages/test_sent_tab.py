"""The Sent tab links each row to its log, and a sending row loads the live progress."""

import pytest

from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import smtp_env


@pytest.fixture
def app_env(app_env, smtp_server):
    """The rows are messages the real dispatcher sent through a real SMTP server on loopback."""
    return {**app_env, **smtp_env(smtp_server)}


def test_sent_row_links_to_message_detail(client, auth, owner, sent_with_failures):
    event, message, _batch = sent_with_failures
    auth.login(owner)
    html = client.get(f"/events/{event.id}/communications/sent").get_data(as_text=True)
    assert f'href="/events/{event.id}/messages/{message.id}"' in html
    assert "4 sent · 2 failed · 0 skipped" in html
    assert f"/events/{event.id}/messages/{message.id}/progress" not in html


def test_sending_row_loads_live_progress(client, auth, owner, sent_with_failures):
    event, message, _batch = sent_with_failures
    message.status = MessageStatus.SENDING
    db.session.commit()
    auth.login(owner)
    html = client.get(f"/events/{event.id}/communications/sent").get_data(as_text=True)
    assert f'hx-get="/events/{event.id}/messages/{message.id}/progress?row=1"' in html
    progress = client.get(
        f"/events/{event.id}/messages/{message.id}/progress", headers={"HX-Request": "true"}
    )
    assert progress.status_code == 200


def test_finished_progress_updates_the_row_status_badge(client, auth, owner, sent_with_failures):
    event, message, _batch = sent_with_failures
    auth.login(owner)
    html = client.get(
        f"/events/{event.id}/messages/{message.id}/progress?row=1", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert f'id="message-status-{message.id}" hx-swap-oob="true">Sent with failures<' in html
    detail = client.get(f"/events/{event.id}/messages/{message.id}").get_data(as_text=True)
    assert "hx-swap-oob" not in detail  # only list rows get the badge refresh
