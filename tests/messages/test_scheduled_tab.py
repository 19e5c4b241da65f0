"""The Scheduled tab reads in the order things happen: overdue, then scheduled by send time,
then the drafts in their own section; subjects show the event's values; one line says what
goes out next."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.messages.models import Audience, Message, MessageKind, MessageStatus


def test_scheduled_tab_in_send_order_with_drafts_apart_and_a_next_line(
    client, auth, owner, event, make_guests, make_message, now
):
    make_guests(event, 3, "attending")
    make_guests(event, 2, "declined", prefix="no")
    # The event's auto-reminders are scheduled too; keep this test to its own messages.
    db.session.execute(sa.delete(Message).where(Message.kind != MessageKind.CUSTOM))
    db.session.commit()
    late = make_message(event, subject="Late one", send_at=now + timedelta(days=9))
    draft = make_message(event, subject="Draft for {{event_name}}", status=MessageStatus.DRAFT)
    soon = make_message(
        event,
        subject="Parking for {{event_name}}",
        audience=Audience.ATTENDING,
        send_at=now + timedelta(days=2),
    )
    overdue = make_message(event, subject="Missed", status=MessageStatus.OVERDUE)
    auth.login(owner)
    page = html.unescape(client.get(f"/events/{event.id}/communications").text)

    order = [int(i) for i in re.findall(r'<tr id="message-(\d+)"', page)]
    assert order == [overdue.id, soon.id, late.id, draft.id]
    planned, drafts = page.index("section-planned"), page.index("section-drafts")
    assert planned < page.index(f'id="message-{soon.id}"') < drafts
    assert drafts < page.index(f'id="message-{draft.id}"')
    assert ">Draft for Summer Gala<" in page

    local = soon.send_at.astimezone(event.tz)
    assert (
        f"Next: “Parking for Summer Gala” to 3 attending guests, "
        f'<time datetime="{soon.send_at.isoformat()}">{local:%a %d %b %Y, %H:%M} {local.tzname()}</time>'
    ) in page
    assert "Next:" not in client.get(f"/events/{event.id}/communications/sent").text
