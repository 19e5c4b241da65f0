"""The pages of a host in control of a send: the live piece's Pause, Resume and Stop (Sent tab
and message page), figures with cancelled that add up, "Send me a test" on the compose form,
Duplicate, and "send to the first N" on the form."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor, record
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind, MessageStatus
from dashboard.messages.testsend import ACTION
from tests.helpers import HX, batches_of, set_status, smtp_env


@pytest.fixture
def app_env(app_env, smtp_server):
    return {**app_env, **smtp_env(smtp_server)}


def progress(event, message, tail="progress", row=False) -> str:
    return f"/events/{event.id}/messages/{message.id}/{tail}" + ("?row=1" if row else "")


@pytest.fixture
def held(event, owner, make_guests, make_message, dispatcher):
    """A message of 8 guests that sent 3 and paused itself (its hold)."""
    make_guests(event, 8)
    message = make_message(event, subject="Doors open")
    message.hold_after = 3
    db.session.commit()
    dispatcher.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.PAUSED
    return message


def test_a_sending_row_offers_pause_and_stop_and_a_paused_one_resume_and_stop(
    client, auth, event, owner, held
):
    auth.login(owner)
    html = client.get(progress(event, held, row=True), headers=HX).get_data(as_text=True)
    assert "hx-trigger" not in html  # a paused message waits for a host: no polling
    assert "3 of 8 sent. Check how it arrived, then resume." in html
    assert 'Paused by <span class="paused-by">scheduler</span> at <time' in html
    assert re.search(r'hx-post="[^"]*/resume\?row=1"[^>]*\s+hx-confirm="Resume sending', html)
    assert 'hx-confirm="Stop sending “Doors open” for good? 5 recipient(s)' in html
    assert "/pause" not in html
    assert f'id="message-status-{held.id}" hx-swap-oob="true">Paused<' in html

    sent_tab = client.get(f"/events/{event.id}/communications/sent").get_data(as_text=True)
    assert f'hx-get="/events/{event.id}/messages/{held.id}/progress?row=1"' in sent_tab

    resumed = client.post(progress(event, held, "resume", row=True), headers=HX)
    html = resumed.get_data(as_text=True)
    assert resumed.status_code == 200
    assert "“Doors open” is being sent again" in html and 'hx-trigger="every 1s"' in html
    assert re.search(r'hx-post="[^"]*/pause\?row=1"', html) and "/resume" not in html
    assert f'id="message-status-{held.id}" hx-swap-oob="true">Sending<' in html


def test_pause_from_the_message_page_and_a_refusal_in_place(
    client, auth, event, owner, held, make_message
):
    auth.login(owner)
    refused = client.post(progress(event, held, "pause"), headers=HX)
    assert refused.status_code == 409
    assert "This message is paused: there is nothing to pause." in refused.get_data(as_text=True)

    client.post(progress(event, held, "resume"), headers=HX)
    plain = client.post(progress(event, held, "pause"))  # without JavaScript
    assert plain.status_code == 303
    assert plain.headers["Location"].endswith(f"/events/{event.id}/messages/{held.id}")
    page = client.get(plain.headers["Location"]).get_data(as_text=True)
    assert "is paused: nothing more goes out until you resume it." in page
    assert 'Paused by <span class="paused-by">owner@example.com</span>' in page


def test_a_stopped_message_adds_up_on_every_page(client, auth, event, owner, held):
    auth.login(owner)
    stopped = client.post(progress(event, held, "stop"), headers=HX)
    assert stopped.status_code == 200
    assert "is stopped: the recipients left will not get it." in stopped.get_data(as_text=True)
    stop = batches_of(held)[-1]
    assert stop.trigger is BatchTrigger.STOP

    figures = "3 sent · 0 failed · 0 skipped · 5 cancelled"
    sent_tab = client.get(f"/events/{event.id}/communications/sent").get_data(as_text=True)
    assert f"{figures} of 8" in sent_tab
    assert 'aria-label="3 sent, 0 failed, 0 skipped, 5 cancelled of 8"' in sent_tab
    page = client.get(f"/events/{event.id}/messages/{held.id}").get_data(as_text=True)
    assert "Stopped by owner@example.com; the recipients left were not sent it." in page
    assert '5 cancelled</span> · <span class="fig-total">8 total' in page
    assert "Duplicate" in page and "/pause" not in page and "/resume" not in page

    batch_page = client.get(f"/events/{event.id}/batches/{stop.id}").get_data(as_text=True)
    assert '5 cancelled</span> · <span class="fig-total">5 total' in batch_page
    entries = client.get(
        f"/events/{event.id}/batches/{stop.id}?outcome=cancelled", headers=HX
    ).get_data(as_text=True)
    assert entries.count("stopped by owner@example.com") == 5


def test_viewers_see_the_state_but_no_controls(client, auth, event, viewer, held):
    auth.login(viewer)
    html = client.get(progress(event, held, row=True), headers=HX).get_data(as_text=True)
    assert "Paused by" in html and "<form" not in html
    assert client.post(progress(event, held, "stop"), headers=HX).status_code == 403
    duplicate = f"/events/{event.id}/communications/{held.id}/duplicate"
    assert client.post(duplicate).status_code == 403


def test_send_me_a_test_from_the_compose_form(client, auth, event, owner, make_guests, smtp_server):
    [guest] = make_guests(event, 1)
    auth.login(owner)
    page = client.get(f"/events/{event.id}/communications").get_data(as_text=True)
    assert "Send me a test" in page and 'hx-target="#test-send-result"' in page
    form = {
        "audience": "everyone",
        "channel": "email",
        "subject": "Hi {{guest_name}}",
        "body": "Unsaved text",
        "mode": "draft",
        "test_to": "",
        "test_guest": "",
    }
    answer = client.post(f"/events/{event.id}/communications/test-send", data=form, headers=HX)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Accepted" in html and "owner@example.com" in html
    assert f"“[Test] Hi {guest.name}”, filled in as {guest.name}" in html
    [mail] = smtp_server.messages_to("owner@example.com")
    assert mail["Subject"] == f"[Test] Hi {guest.name}"
    assert (
        db.session.scalar(sa.select(Message).where(Message.subject == "Hi {{guest_name}}")) is None
    )

    bad = client.post(
        f"/events/{event.id}/communications/test-send",
        data={**form, "test_to": "a@b.org, nope"},
        headers=HX,
    )
    assert bad.status_code == 400 and "Not an e-mail address: “nope”." in bad.get_data(as_text=True)
    unknown = client.post(
        f"/events/{event.id}/communications/test-send",
        data={**form, "test_guest": "who@example.org"},
        headers=HX,
    )
    assert unknown.status_code == 400
    assert "No guest with the e-mail “who@example.org” here." in unknown.get_data(as_text=True)

    # Without JavaScript: the page again, the form's fields kept, the result under it.
    plain = client.post(f"/events/{event.id}/communications/test-send", data=form)
    html = plain.get_data(as_text=True)
    assert plain.status_code == 200 and "Unsaved text</textarea>" in html and "Accepted" in html


def test_a_test_of_an_edited_draft_and_the_limit_on_the_page(
    client, auth, event, owner, make_guests, make_message, now
):
    make_guests(event, 1)
    draft = make_message(event, status=MessageStatus.DRAFT)
    auth.login(owner)
    edit = client.get(f"/events/{event.id}/communications/{draft.id}/edit").get_data(as_text=True)
    assert f"/communications/{draft.id}/test-send" in edit
    form = {"audience": "everyone", "channel": "email", "subject": "Edited", "body": "B"}
    tail = f"/events/{event.id}/communications/{draft.id}/test-send"
    assert client.post(tail, data=form, headers=HX).status_code == 200
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == ACTION))
    assert entry.message_id == draft.id and entry.details["subject"] == "[Test] Edited"

    for _ in range(19):
        record(db.session, Actor("x", owner.id), ACTION, now=now)
    db.session.commit()
    limited = client.post(tail, data=form, headers=HX)
    assert limited.status_code == 429
    assert "the limit is 20 an hour" in limited.get_data(as_text=True)


def test_duplicate_opens_the_copy_for_editing(client, auth, event, owner):
    reminder = db.session.scalar(
        sa.select(Message).where(
            Message.event_id == event.id, Message.kind == MessageKind.REMINDER_7D
        )
    )
    auth.login(owner)
    listing = client.get(f"/events/{event.id}/communications").get_data(as_text=True)
    assert f"/communications/{reminder.id}/duplicate" in listing
    answer = client.post(f"/events/{event.id}/communications/{reminder.id}/duplicate")
    assert answer.status_code == 303
    copy = db.session.scalar(sa.select(Message).order_by(Message.id.desc()).limit(1))
    assert answer.headers["Location"].endswith(f"/communications/{copy.id}/edit")
    assert (copy.kind, copy.status, copy.subject) == (
        MessageKind.CUSTOM,
        MessageStatus.DRAFT,
        reminder.subject,
    )
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "was copied into a new draft" in page


def test_send_to_the_first_n_on_the_compose_form(client, auth, event, owner, make_guests):
    make_guests(event, 2)
    auth.login(owner)
    form = {
        "audience": "everyone",
        "channel": "email",
        "subject": "Hi",
        "body": "There",
        "mode": "draft",
        "hold_after": "20",
    }
    assert "Send to the first N guests, then wait for me" in client.get(
        f"/events/{event.id}/communications"
    ).get_data(as_text=True)
    assert client.post(f"/events/{event.id}/communications", data=form).status_code == 303
    message = db.session.scalar(sa.select(Message).where(Message.subject == "Hi"))
    assert message.hold_after == 20
    edit = client.get(f"/events/{event.id}/communications/{message.id}/edit")
    assert 'name="hold_after" type="number" value="20"' in edit.get_data(as_text=True)
    bad = client.post(f"/events/{event.id}/communications", data={**form, "hold_after": "0"})
    assert bad.status_code == 400 and "A number from 1 to 100,000" in bad.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert BatchStatus.PAUSED.label == "Paused"


def test_no_retry_button_on_a_stopped_message(client, auth, owner, sent_with_failures):
    event, message, batch = sent_with_failures
    auth.login(owner)
    page = f"/events/{event.id}/messages/{message.id}"
    assert "Retry permanent failures too (2)" in client.get(page).get_data(as_text=True)
    set_status(message, MessageStatus.STOPPED)
    db.session.expire_all()
    assert "retry-form" not in client.get(page).get_data(as_text=True)
    batch_page = client.get(f"/events/{event.id}/batches/{batch.id}").get_data(as_text=True)
    assert "retry-form" not in batch_page
