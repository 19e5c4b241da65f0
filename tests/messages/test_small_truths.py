"""Small truths: the Sent tab says when a message went out and when it finished, and a send
or a schedule that would reach nobody is refused with who is left out and why."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Batch
from dashboard.errors import ValidationError
from dashboard.extensions import db
from dashboard.messages import services as svc
from dashboard.messages.models import Message, MessageStatus
from dashboard.web import format_local
from tests.helpers import HX

NOBODY = "No guest would receive this: 3 unsubscribed, 1 without a usable address."


def test_the_sent_tab_shows_when_it_went_out_and_finished(
    client, auth, event, owner, make_guests, make_message, dispatcher, now
):
    make_guests(event, 2)
    planned = now - timedelta(hours=2)  # the server was down for two hours
    message = make_message(event, send_at=planned)
    went_out = now + timedelta(minutes=3)
    dispatcher.clock = lambda: went_out
    dispatcher.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT

    auth.login(owner)
    html = client.get(f"/events/{event.id}/communications/sent").get_data(as_text=True)
    row = html.split(f'<tr id="message-{message.id}"')[1].split("</tr>")[0]
    assert f'class="went-out">{format_local(went_out, event.tz)}<' in row
    assert f'class="finished">{format_local(went_out, event.tz)}<' in row
    assert format_local(planned, event.tz) not in row

    body = client.get(f"/api/events/{event.id}/messages/{message.id}").get_json()
    [batch] = db.session.scalars(sa.select(Batch).where(Batch.message_id == message.id)).all()
    assert body["started_at"] == batch.started_at.astimezone(event.tz).isoformat()
    assert body["finished_at"] == batch.finished_at.astimezone(event.tz).isoformat()
    draft = client.post(
        f"/api/events/{event.id}/messages",
        json={"audience": "everyone", "subject": "Later", "body": "Later"},
    ).get_json()
    assert "started_at" not in draft and "finished_at" not in draft


@pytest.fixture
def nobody_reachable(event, make_guests, add_guest_row):
    make_guests(event, 3, unsubscribed=True)
    add_guest_row(event, "Legacy", "no-address-here")


def test_sending_or_scheduling_for_nobody_is_refused_with_why(
    client, auth, event, owner, now, nobody_reachable, make_message
):
    auth.login(owner)
    payload = {"audience": "everyone", "subject": "Hi", "body": "Hi"}
    for mode, extra in (
        ("send_now", {}),
        ("schedule", {"send_at": (now + timedelta(days=1)).isoformat()}),
    ):
        refused = client.post(
            f"/api/events/{event.id}/messages", json={**payload, "mode": mode, **extra}
        )
        assert refused.status_code == 400
        assert refused.get_json()["fields"] == {"audience": NOBODY}
    draft = client.post(f"/api/events/{event.id}/messages", json=payload)
    assert draft.status_code == 201  # a draft may wait for its guests

    message_id = draft.get_json()["id"]
    refused = client.post(f"/api/events/{event.id}/messages/{message_id}/send-now")
    assert refused.status_code == 409 and refused.get_json()["error"] == NOBODY
    row = client.post(f"/events/{event.id}/communications/{message_id}/send-now", headers=HX)
    assert row.status_code == 409 and NOBODY in row.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0


def test_an_empty_audience_is_named(event, owner, now, make_guests):
    make_guests(event, 2, "declined")
    with pytest.raises(ValidationError) as caught:
        svc.create_message(
            db.session, event, owner, audience="attending", subject="Hi", body="Hi",
            mode="send_now", now=now,
        )  # fmt: skip
    assert caught.value.errors == {
        "audience": "No guest would receive this: the audience “Attending guests” is empty."
    }


def test_the_compose_form_shows_the_refusal_on_the_audience(
    client, auth, event, owner, nobody_reachable
):
    auth.login(owner)
    response = client.post(
        f"/events/{event.id}/communications",
        data={
            "audience": "everyone",
            "channel": "email",
            "subject": "Hi",
            "body": "Hi",
            "mode": "send_now",
        },
    )
    assert response.status_code == 400
    assert NOBODY in response.get_data(as_text=True)
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(Message.event_id == event.id, Message.subject == "Hi")
        )
        == 0
    )
