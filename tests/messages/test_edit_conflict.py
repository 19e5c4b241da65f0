"""A save refused because the message moved on meanwhile (409) says who changed it and
when, links to it, turns Save off, and keeps the host's work as a new draft."""

from __future__ import annotations

import html

import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.extensions import db
from dashboard.messages import services as svc
from dashboard.messages.models import Message, MessageStatus
from dashboard.web import format_local
from tests.messages.test_pages import compose


def test_a_409_on_edit_names_who_and_when_and_offers_a_new_draft(
    client, auth, owner, editor, event, make_guests, make_message, now
):
    make_guests(event, 2)
    message = make_message(event, subject="Dinner", status=MessageStatus.DRAFT)
    auth.login(editor)
    edit_url = f"/events/{event.id}/communications/{message.id}/edit"
    assert client.get(edit_url).status_code == 200  # the editor opens the form ...
    svc.send_now(db.session, message, Actor.of(owner), now=now)  # ... the owner sends it
    db.session.commit()

    mine = compose(subject="Dinner at 8 sharp", body="Hi {{guest_name}}, 8 sharp.")
    answer = client.post(edit_url, data=mine)
    assert answer.status_code == 409
    page = html.unescape(answer.text)
    assert "This message is sending and can no longer be edited." in page
    entry_at = format_local(now, event.tz)
    assert f"Sent now by {owner.email}, " in page and entry_at in page
    detail = f"/events/{event.id}/messages/{message.id}"
    assert f'<a href="{detail}">See the message</a>' in page
    assert '<button type="submit" disabled aria-disabled="true">Save changes</button>' in page
    save_copy = f"/events/{event.id}/communications/{message.id}/save-as-draft"
    assert f'formaction="{save_copy}"' in page and "Save my changes as a new draft" in page
    assert 'value="Dinner at 8 sharp"' in page  # the host's changes are still in the form

    kept = client.post(save_copy, data={**mine, "mode": "send_now"})
    assert kept.status_code == 303
    copy = db.session.scalars(
        sa.select(Message).where(Message.subject == "Dinner at 8 sharp")
    ).one()
    assert (copy.status, copy.send_at, copy.body) == (
        MessageStatus.DRAFT,
        None,
        "Hi {{guest_name}}, 8 sharp.",
    )
    assert kept.headers["Location"] == f"/events/{event.id}/communications/{copy.id}/edit"
    db.session.refresh(message)
    assert message.subject == "Dinner"  # the sent message is untouched
