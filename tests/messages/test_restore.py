"""A cancel can be taken back: a cancelled message is restored as a draft (no send time),
audited, from the Cancelled tab and the API; nothing else can be "restored"."""

from __future__ import annotations

import html

import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus
from tests.helpers import HX


def _cancelled(client, event, make_message):
    message = make_message(event, subject="Parking for {{event_name}}", due=False)
    url = f"/events/{event.id}/communications/{message.id}"
    assert client.post(f"{url}/cancel", headers=HX).status_code == 200
    db.session.refresh(message)
    assert message.status is MessageStatus.CANCELLED
    return message, url


def test_a_cancelled_message_is_restored_as_a_draft_and_audited(
    client, auth, owner, event, make_message
):
    auth.login(owner)
    message, url = _cancelled(client, event, make_message)
    tab = html.unescape(client.get(f"/events/{event.id}/communications/cancelled").text)
    assert 'aria-label="Restore as draft: “Parking for Summer Gala”"' in tab

    answer = client.post(f"{url}/restore", data={"tab": "cancelled"}, headers=HX)
    assert answer.status_code == 200
    assert "“Parking for Summer Gala” is a draft again" in html.unescape(answer.text)
    db.session.refresh(message)
    assert (message.status, message.send_at) == (MessageStatus.DRAFT, None)
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "message.restore_draft")
    ).one()
    assert (entry.message_id, entry.actor) == (message.id, owner.email)
    timeline = client.get(f"/events/{event.id}/messages/{message.id}").text
    assert "Restored as a draft" in timeline

    # Only a cancelled message: a draft (or anything else) is refused with the reason.
    again = client.post(f"{url}/restore", headers=HX)
    assert again.status_code == 409
    assert "only a cancelled message can be restored" in again.text


def test_the_api_restores_a_cancelled_message(client, owner, bearer, event, make_message):
    message = make_message(event, due=False)
    headers = bearer(owner)
    base = f"/api/events/{event.id}/messages/{message.id}"
    assert client.delete(base, headers=headers).json["status"] == "cancelled"
    answer = client.post(f"{base}/restore", headers=headers)
    assert answer.status_code == 200 and answer.json["status"] == "draft"
    refused = client.post(f"{base}/restore", headers=headers)
    assert refused.status_code == 409 and "only a cancelled message" in refused.json["error"]
    assert db.session.get(Message, message.id).status is MessageStatus.DRAFT


def test_the_row_cancel_button_and_its_question_name_what_they_do(
    client, auth, owner, event, make_message
):
    message = make_message(event, subject="Parking", due=False)
    auth.login(owner)
    page = html.unescape(client.get(f"/events/{event.id}/communications").text)
    row = page.split(f'<tr id="message-{message.id}"')[1].split("</tr>")[0]
    assert (
        'data-confirm-yes="Cancel message" data-confirm-no="Keep it">Cancel message</button>' in row
    )
