"""What the host reads before and after a send is true: the confirmation names the rendered
subject, who receives it and who is left out, and row actions name their message."""

from __future__ import annotations

import html as html_lib

from dashboard.messages.models import Audience, MessageStatus
from dashboard.messages.rendering import with_event_values


def _row(page: str, message_id: int) -> str:
    return page.split(f'<tr id="message-{message_id}"')[1].split("</tr>")[0]


def test_with_event_values_fills_the_event_and_keeps_a_guests_placeholders(event):
    assert (
        with_event_values("Parking for {{event_name}} at {{ venue }}, {{guest_name}}", event)
        == "Parking for Summer Gala at Grand Hall, {{guest_name}}"
    )


def test_send_now_confirmation_names_subject_audience_count_and_who_is_left_out(
    client, auth, event, owner, make_guests, make_message
):
    make_guests(event, 51, "attending")
    make_guests(event, 4, "attending", prefix="gone", unsubscribed=True)
    make_guests(event, 3, "declined", prefix="no")
    message = make_message(
        event,
        audience=Audience.ATTENDING,
        subject="Parking for {{event_name}}",
        status=MessageStatus.DRAFT,
    )
    auth.login(owner)
    row = html_lib.unescape(_row(client.get(f"/events/{event.id}/communications").text, message.id))

    assert (
        'hx-confirm="Send “Parking for Summer Gala” to 51 attending guests now? '
        '4 unsubscribed are left out."' in row
    )
    assert 'class="message-subject">Parking for Summer Gala<' in row
    assert "{{event_name}}" not in row
    assert (
        'hx-confirm="Cancel “Parking for Summer Gala”? It will not be sent; you can restore it as a draft later."'
        in row
    )
    for action in ("Edit “Parking for Summer Gala”", "Send now: “Parking for Summer Gala”"):
        assert f'aria-label="{action}"' in row
    # On a draft, sending at once is not the button that looks like the page's main action.
    send_button = row.split('aria-label="Send now: “Parking')[0].rsplit("<button", 1)[1]
    assert 'class="outline' in send_button


def test_compose_form_carries_the_end_of_its_send_now_question(
    client, auth, event, owner, make_guests
):
    make_guests(event, 2, "attending")
    make_guests(event, 1, "pending", prefix="nomail")
    auth.login(owner)
    page = html_lib.unescape(client.get(f"/events/{event.id}/communications").text)
    assert 'data-text="to all 3 guests now?"' in page
    assert '"event_name": "Summer Gala"' in page  # the subject's values, for the question

    fragment = client.get(
        f"/events/{event.id}/communications/recipient-count", query_string={"audience": "pending"}
    ).text
    assert 'data-text="to 1 pending guest now?"' in html_lib.unescape(fragment)


def test_the_question_says_why_nobody_would_receive_it(event, make_guests, app):
    from dashboard.extensions import db
    from dashboard.messages.audience import count_recipients

    make_guests(event, 2, "maybe", unsubscribed=True)
    count = count_recipients(db.session, event.id, Audience.MAYBE)
    assert count.send_question("Hi") == (
        "Send “Hi” now? No guest would receive this: 2 unsubscribed."
    )
