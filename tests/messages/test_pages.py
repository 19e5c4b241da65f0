"""The Communications page: page vs fragment, live count and preview, tabs, row actions, roles."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.models import Delivery, DeliveryStatus
from dashboard.events.models import Guest
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageKind, MessageStatus
from tests.helpers import set_status


def url(event, tail: str = "") -> str:
    return f"/events/{event.id}/communications{tail}"


def local_input(value: datetime, event) -> str:
    """The value a <input type=datetime-local> sends, in the event's zone."""
    return value.astimezone(event.tz).strftime("%Y-%m-%dT%H:%M")


def compose(**overrides) -> dict[str, str]:
    data = {
        "audience": "everyone",
        "channel": "email",
        "subject": "Dinner plans",
        "body": "Hi {{guest_name}}, dinner is at 8.",
        "mode": "draft",
        "send_at": "",
    }
    data.update(overrides)
    return data


def only_message(event, **filters) -> Message:
    stmt = sa.select(Message).where(
        Message.event_id == event.id, Message.kind == MessageKind.CUSTOM
    )
    return db.session.scalars(stmt.order_by(Message.id.desc())).first()


# --- page vs fragment ------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["", "/sent", "/cancelled"])
def test_each_tab_answers_the_page_or_its_fragment(client, auth, event, owner, htmx, tail):
    auth.login(owner)
    page = client.get(url(event, tail))
    assert page.status_code == 200
    assert "HX-Request" in page.headers.get("Vary", "")
    text = page.get_data(as_text=True)
    assert "<html" in text and 'id="compose-form"' in text and 'id="message-list"' in text

    fragment = client.get(url(event, tail), headers=htmx)
    assert fragment.status_code == 200
    assert "HX-Request" in fragment.headers.get("Vary", "")
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'id="compose-form"' not in body
    assert 'hx-swap-oob="true"' in body  # the tab headers follow the switch
    selected = (tail or "/scheduled").strip("/")
    assert re.search(
        rf'href="[^"]*/communications/{selected}"[^>]*\s+aria-current="page"', body
    ) or (selected == "scheduled" and 'aria-current="page"' in body)


def test_the_scheduled_tab_url_is_the_page_itself(client, auth, event, owner):
    auth.login(owner)
    response = client.get(url(event, "/scheduled"))
    assert response.status_code == 308 and response.headers["Location"].endswith(url(event))


def test_history_restore_gets_the_whole_page(client, auth, event, owner):
    auth.login(owner)
    response = client.get(
        url(event, "/sent"), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.get_data(as_text=True)


def test_reminders_show_friendly_labels_never_slugs(client, auth, event, owner):
    auth.login(owner)
    text = client.get(url(event)).get_data(as_text=True)
    for label in ("7-day reminder", "3-day last call", "1-day reminder", "Day-of reminder"):
        assert label in text
    assert "reminder_" not in text
    assert "Attending guests" in text and "Pending guests" in text
    assert f"({event.timezone})" in text


def test_rows_show_send_time_in_the_event_zone(client, auth, event, owner, make_message, now):
    auth.login(owner)
    when = datetime(2031, 7, 1, 16, 30, tzinfo=UTC)  # 18:30 in Berlin (CEST)
    make_message(event, subject="Summer note", send_at=when)
    text = client.get(url(event)).get_data(as_text=True)
    assert "Tue 01 Jul 2031, 18:30 CEST" in text


def test_tabs_hold_the_right_statuses_newest_first_with_counts(
    client, auth, event, owner, make_message
):
    auth.login(owner)
    make_message(event, subject="First draft", status=MessageStatus.DRAFT)
    make_message(event, subject="Second draft", status=MessageStatus.DRAFT)
    make_message(event, subject="Gone", status=MessageStatus.CANCELLED)
    for status in (
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.SENT_WITH_FAILURES,
        MessageStatus.FAILED,
    ):
        make_message(event, subject=f"Was {status.value}", status=status)

    scheduled = client.get(url(event), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert scheduled.index("Second draft") < scheduled.index("First draft")
    assert "Gone" not in scheduled and "Was sent" not in scheduled
    assert 'data-tab-count="scheduled">6<' in scheduled  # 2 drafts + 4 reminders
    assert 'data-tab-count="sent">4<' in scheduled
    assert 'data-tab-count="cancelled">1<' in scheduled

    sent = client.get(url(event, "/sent"), headers={"HX-Request": "true"}).get_data(as_text=True)
    for status in ("sending", "sent", "sent_with_failures", "failed"):
        assert f"Was {status}" in sent
    assert "Sent with failures" in sent and "First draft" not in sent

    cancelled = client.get(url(event, "/cancelled"), headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "Gone" in cancelled and "Dinner" not in cancelled


def test_sent_rows_show_delivery_figures(client, auth, event, owner, make_message, make_guests):
    auth.login(owner)
    guests = make_guests(event, 4, "attending")
    message = make_message(event, subject="Done", status=MessageStatus.SENT_WITH_FAILURES)
    for guest, status in zip(guests, ["sent", "sent", "failed", "skipped"], strict=True):
        db.session.add(
            Delivery(
                message_id=message.id,
                guest_id=guest.id,
                email=guest.email,
                status=DeliveryStatus(status),
            )
        )
    db.session.commit()
    text = client.get(url(event, "/sent")).get_data(as_text=True)
    assert "2 sent · 1 failed · 1 skipped of 4" in text


def test_lists_are_paginated(client, auth, event, owner, make_message, htmx):
    auth.login(owner)
    for i in range(21):
        make_message(event, subject=f"Note {i:02d}", status=MessageStatus.DRAFT)
    first = client.get(url(event)).get_data(as_text=True)
    assert "Page 1 of 2" in first and "Note 20" in first and "Note 00" not in first
    second = client.get(url(event, "?page=2"), headers=htmx).get_data(as_text=True)
    assert "Page 2 of 2" in second and "Note 00" in second and "Note 20" not in second


def test_tab_counts_fragment_listens_for_changes(client, auth, event, owner):
    auth.login(owner)
    text = client.get(url(event, "/tab-counts?tab=sent")).get_data(as_text=True)
    assert 'hx-trigger="messages-changed from:body"' in text
    assert re.search(r'/communications/sent"[^>]*aria-current="page"', text)


# --- live count and preview ------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "receive", "left_out"),
    [
        ("everyone", 10, 1),
        ("attending", 3, 1),
        ("pending", 2, 0),
        ("declined", 1, 0),
        ("maybe", 4, 0),
    ],
)
def test_recipient_count_fragment(
    client, auth, event, owner, guest_mix, audience, receive, left_out
):
    auth.login(owner)
    response = client.get(
        url(event, f"/recipient-count?audience={audience}"), headers={"HX-Request": "true"}
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<strong class="recipient-total">{receive}</strong>' in text
    assert "guests will receive this" in text or "guest will receive this" in text
    if left_out:
        assert "1 left out: 1 unsubscribed, 0 without a usable address" in text
    else:
        assert "left out" not in text


def test_recipient_count_names_unusable_addresses(client, auth, event, owner, add_guest_row):
    auth.login(owner)
    add_guest_row(event, "Legacy", "no-address-here")
    add_guest_row(event, "Fine", "fine@example.org")
    text = client.get(url(event, "/recipient-count?audience=attending")).get_data(as_text=True)
    assert '"recipient-total">1<' in text
    assert "guest will receive this" in text
    assert "1 left out: 0 unsubscribed, 1 without a usable address" in text


def test_recipient_count_refuses_an_unknown_audience(client, auth, event, owner):
    auth.login(owner)
    response = client.get(url(event, "/recipient-count?audience=vips"))
    assert response.status_code == 400
    assert "Choose a valid audience" in response.get_data(as_text=True)


def test_compose_controls_carry_the_live_triggers(client, auth, event, owner):
    auth.login(owner)
    text = client.get(url(event)).get_data(as_text=True)
    assert (
        'hx-trigger="input changed delay:300ms from:#compose-form, change from:#audience, '
        'change from:#attach_calendar"' in text
    )
    assert 'hx-trigger="change from:#audience"' in text
    assert 'type="datetime-local"' in text
    for label in ("Save as draft", "Schedule", "Send now"):
        assert label in text
    assert '<label for="subject">' in text and '<label for="body">' in text


def test_preview_renders_one_real_guest_of_the_audience(client, auth, event, owner, make_guests):
    auth.login(owner)
    make_guests(event, 1, "declined", prefix="nope")
    make_guests(event, 1, "maybe", prefix="perhaps")
    response = client.post(
        url(event, "/preview"),
        data={
            "audience": "maybe",
            "subject": "Hi {{guest_name}}",
            "body": "At {{venue}}: {{rsvp_link}}",
        },
        headers={"HX-Request": "true"},
    )
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    guest = db.session.scalar(
        sa.select(Guest).where(Guest.event_id == event.id, Guest.rsvp_status == "maybe")
    )
    assert f"Hi {guest.name}" in text
    # The link is an inert one: the guest's token is their credential, not the viewer's.
    assert "At Grand Hall: http://dashboard.test/r/preview" in text
    assert guest.token not in text
    assert "Nope" not in text


def test_preview_lists_unknown_placeholders_instead_of_rendering(
    client, auth, event, owner, make_guests
):
    auth.login(owner)
    make_guests(event, 1, "attending")
    text = client.post(
        url(event, "/preview"),
        data={"audience": "everyone", "subject": "Hi", "body": "{{frist_name}}"},
    ).get_data(as_text=True)
    assert "Unknown placeholder {{frist_name}}" in text
    assert (
        "Valid placeholders: {{guest_name}}, {{event_name}}, {{event_date}}, {{venue}}, {{rsvp_link}}, {{unsubscribe_link}}"
        in text
    )
    assert "preview-body" not in text


def test_preview_of_an_empty_audience_says_so(client, auth, event, owner, guest_mix):
    auth.login(owner)
    db.session.execute(sa.delete(Guest).where(Guest.rsvp_status == "declined"))
    db.session.commit()
    text = client.post(
        url(event, "/preview"), data={"audience": "declined", "subject": "x", "body": "y"}
    ).get_data(as_text=True)
    assert "nothing to preview" in text


# --- compose, edit, send now, cancel ------------------------------------------------------


def test_walk_draft_edit_schedule_send_now_then_cancel_refused(
    client, auth, event, owner, now, make_guests
):
    make_guests(event, 1)  # scheduling or sending for nobody is refused
    auth.login(owner)
    created = client.post(url(event), data=compose())
    assert created.status_code == 303
    message = only_message(event)
    # Back to the tab, scrolled to the new row.
    assert created.headers["Location"].endswith(f"{url(event)}#message-{message.id}")
    assert message.status is MessageStatus.DRAFT and message.created_by_id == owner.id

    edit_url = url(event, f"/{message.id}/edit")
    page = client.get(edit_url).get_data(as_text=True)
    assert 'value="Dinner plans"' in page and "Save changes" in page

    when = (now + timedelta(days=5)).replace(second=0)
    edited = client.post(
        edit_url,
        data=compose(subject="Dinner moved", mode="schedule", send_at=local_input(when, event)),
    )
    assert edited.status_code == 303
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert (message.status, message.subject, message.send_at) == (
        MessageStatus.SCHEDULED,
        "Dinner moved",
        when,
    )
    landing = client.get(edited.headers["Location"]).get_data(as_text=True)
    assert "is scheduled for" in landing

    sent = client.post(
        url(event, f"/{message.id}/send-now"), data={"tab": "scheduled", "page": "1"}
    )
    assert sent.status_code == 303
    db.session.expire_all()
    assert db.session.get(Message, message.id).status is MessageStatus.SENDING

    refused = client.post(url(event, f"/{message.id}/cancel"), data={"tab": "scheduled"})
    assert refused.status_code == 409
    assert "This message is sending and can no longer be cancelled" in refused.get_data(
        as_text=True
    )
    edit_again = client.post(edit_url, data=compose(subject="Even later"))
    assert edit_again.status_code == 409
    assert "can no longer be edited" in edit_again.get_data(as_text=True)
    assert client.post(url(event, f"/{message.id}/send-now")).status_code == 409
    db.session.expire_all()
    assert db.session.get(Message, message.id).subject == "Dinner moved"


def test_send_now_from_the_compose_form(client, auth, event, owner, make_guests):
    make_guests(event, 1)
    auth.login(owner)
    response = client.post(url(event), data=compose(mode="send_now"))
    assert response.status_code == 303
    assert re.search(r"/sent#message-\d+$", response.headers["Location"])
    assert only_message(event).status is MessageStatus.SENDING


def test_htmx_actions_refresh_the_list_and_trigger_the_counts(
    client, auth, event, owner, make_message, htmx
):
    auth.login(owner)
    message = make_message(event, subject="To cancel", status=MessageStatus.DRAFT)
    response = client.post(
        url(event, f"/{message.id}/cancel"), data={"tab": "scheduled", "page": "1"}, headers=htmx
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "messages-changed"
    text = response.get_data(as_text=True)
    assert "“To cancel” was cancelled." in text and "<html" not in text
    assert 'id="message-' + str(message.id) + '"' not in text  # left the Scheduled tab
    counts = client.get(url(event, "/tab-counts?tab=scheduled")).get_data(as_text=True)
    assert 'data-tab-count="cancelled">1<' in counts


def test_second_tab_after_the_scheduler_claimed_it_gets_a_clear_409(
    client, auth, event, owner, make_message, htmx, now
):
    auth.login(owner)
    message = make_message(event, send_at=now + timedelta(hours=1))
    client.get(url(event))  # the page that still shows Send now / Cancel
    set_status(message, MessageStatus.SENDING)
    for action in ("cancel", "send-now"):
        response = client.post(
            url(event, f"/{message.id}/{action}"), data={"tab": "scheduled"}, headers=htmx
        )
        assert response.status_code == 409
        assert response.headers["HX-Trigger"] == "messages-changed"
        assert 'role="alert"' in response.get_data(as_text=True)
        assert "This message is sending and can no longer be" in response.get_data(as_text=True)
    edit = client.get(url(event, f"/{message.id}/edit"))
    assert edit.status_code == 303
    assert "can no longer be edited" in client.get(edit.headers["Location"]).get_data(as_text=True)


def test_row_actions_have_confirmations_and_csrf_fields(client, auth, event, owner):
    auth.login(owner)
    text = client.get(url(event)).get_data(as_text=True)
    assert text.count("hx-confirm=") >= 8  # send now + cancel for each of the 4 reminders
    assert 'name="csrf_token"' in text
    assert (
        ">Edit</a>" in text and ">Send now</button>" in text and ">Cancel message</button>" in text
    )


def test_reminder_default_text_is_editable_on_its_page(client, auth, event, owner):
    auth.login(owner)
    reminder = db.session.scalar(
        sa.select(Message).where(
            Message.event_id == event.id, Message.kind == MessageKind.REMINDER_1D
        )
    )
    page = client.get(url(event, f"/{reminder.id}/edit")).get_data(as_text=True)
    assert "Edit 1-day reminder" in page
    assert "See you tomorrow at {{event_name}}" in html.unescape(page)
    data = compose(
        subject="Tomorrow: {{event_name}}",
        body="Bring boots.",
        mode="schedule",
        send_at=local_input(reminder.send_at, event),
        audience="attending",
    )
    assert client.post(url(event, f"/{reminder.id}/edit"), data=data).status_code == 303
    db.session.expire_all()
    stored = db.session.get(Message, reminder.id)
    assert (stored.kind, stored.subject, stored.status) == (
        MessageKind.REMINDER_1D,
        "Tomorrow: {{event_name}}",
        MessageStatus.SCHEDULED,
    )


# --- bad and hostile input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"subject": ""}, "A subject is required."),
        ({"subject": "Hi\r\nBcc: everyone@example.com"}, "single line"),
        (
            {"body": "{{ unknown_thing }}"},
            "Unknown placeholder {{unknown_thing}}. Valid placeholders: {{guest_name}}",
        ),
        ({"body": "x" * (100 * 1024 + 1)}, "at most 102,400 (100 KB)"),
        ({"mode": "schedule", "send_at": "2001-01-01T10:00"}, "already passed"),
        ({"mode": "schedule", "send_at": ""}, "Choose the date and time"),
        ({"audience": "vips"}, "Not a valid choice"),
        ({"send_at": "soon"}, "Not a valid datetime"),
    ],
)
def test_bad_input_re_renders_the_form_with_400(client, auth, event, owner, overrides, error):
    auth.login(owner)
    response = client.post(url(event), data=compose(**overrides))
    assert response.status_code == 400
    text = html.unescape(response.get_data(as_text=True))
    assert error in text
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert only_message(event) is None


def test_a_100_kb_body_is_accepted_and_non_ascii_round_trips(client, auth, event, owner):
    auth.login(owner)
    body = ("Grüße, {{guest_name}}! 🎉 " * 5000)[: 100 * 1024]
    assert len(body) == 100 * 1024
    response = client.post(url(event), data=compose(subject="Ça va? 日本語 — «ünïcödé»", body=body))
    assert response.status_code == 303
    message = only_message(event)
    assert message.subject == "Ça va? 日本語 — «ünïcödé»" and message.body == body
    assert "Ça va? 日本語 — «ünïcödé»" in client.get(url(event)).get_data(as_text=True)


def test_browser_line_breaks_count_as_one_character(client, auth, event, owner):
    """A textarea sends CRLF; a 100 KB body typed in the browser must still fit."""
    auth.login(owner)
    body = "line\r\n" * (100 * 1024 // 5)
    assert client.post(url(event), data=compose(body=body)).status_code == 303
    assert only_message(event).body == "line\n" * (100 * 1024 // 5)


def test_hostile_text_is_escaped_in_pages_and_preview(
    client, auth, make_event, owner, add_guest_row
):
    auth.login(owner)
    event = make_event(name="<script>alert('event')</script>", venue="<i>Hall</i>")
    add_guest_row(event, "<b>Bob</b> {{venue}} <img src=x onerror=alert(1)>", "bob@example.org")
    subject = "<script>alert('subject')</script> {{guest_name}}"
    body = "<img src=x onerror=alert('body')> {{guest_name}} at {{venue}}"
    assert client.post(url(event), data=compose(subject=subject, body=body)).status_code == 303

    page = client.get(url(event)).get_data(as_text=True)
    assert "<script>alert(" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#39;event&#39;)&lt;/script&gt;" in page

    preview = client.post(
        url(event, "/preview"), data={"audience": "everyone", "subject": subject, "body": body}
    ).get_data(as_text=True)
    assert "<script" not in preview and "<img" not in preview and "<b>" not in preview
    # The guest's own {{venue}} stays inert text: it is not replaced by the venue.
    assert (
        "&lt;b&gt;Bob&lt;/b&gt; {{venue}} &lt;img src=x onerror=alert(1)&gt; at &lt;i&gt;Hall&lt;/i&gt;"
        in preview
    )

    message = only_message(event)
    edit = client.get(url(event, f"/{message.id}/edit")).get_data(as_text=True)
    assert "<script>alert(" not in edit and "<img src=x" not in edit


# --- roles -------------------------------------------------------------------------


def test_viewer_sees_everything_but_no_actions(
    client, auth, event, viewer, make_message, guest_mix
):
    make_message(event, subject="Visible draft", status=MessageStatus.DRAFT)
    auth.login(viewer)
    response = client.get(url(event))
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Visible draft" in text and "1-day reminder" in text
    assert (
        ">Send now</button>" not in text
        and ">Cancel</button>" not in text
        and ">Edit</a>" not in text
    )
    assert "hx-confirm" not in text
    assert "Save draft" not in text and "compose-submit" not in text
    assert client.get(url(event, "/recipient-count?audience=maybe")).status_code == 200
    preview = client.post(
        url(event, "/preview"),
        data={"audience": "attending", "subject": "Hi {{guest_name}}", "body": "x"},
    )
    assert preview.status_code == 200 and "Hi Att" in preview.get_data(as_text=True)


def test_viewer_mutations_are_forbidden(client, auth, event, viewer, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(viewer)
    assert client.post(url(event), data=compose()).status_code == 403
    assert client.get(url(event, f"/{message.id}/edit")).status_code == 403
    assert client.post(url(event, f"/{message.id}/edit"), data=compose()).status_code == 403
    assert client.post(url(event, f"/{message.id}/send-now")).status_code == 403
    assert client.post(url(event, f"/{message.id}/cancel")).status_code == 403
    db.session.expire_all()
    assert db.session.get(Message, message.id).status is MessageStatus.DRAFT


def test_editor_can_act(client, auth, event, editor, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(editor)
    assert ">Send now</button>" in client.get(url(event)).get_data(as_text=True)
    assert client.post(url(event, f"/{message.id}/cancel")).status_code == 303


@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("get", ""),
        ("get", "/sent"),
        ("get", "/tab-counts"),
        ("get", "/recipient-count?audience=everyone"),
        ("post", "/preview"),
        ("post", ""),
    ],
)
def test_other_hosts_get_404(client, auth, event, stranger, method, tail):
    auth.login(stranger)
    assert getattr(client, method)(url(event, tail)).status_code == 404


def test_other_hosts_get_404_for_messages_too(client, auth, event, stranger, make_message):
    message = make_message(event, status=MessageStatus.DRAFT)
    auth.login(stranger)
    for action in ("edit", "send-now", "cancel"):
        assert client.post(url(event, f"/{message.id}/{action}")).status_code == 404


def test_a_message_of_another_event_is_404(client, auth, event, owner, make_event, make_message):
    other = make_event("Other party")
    message = make_message(other, status=MessageStatus.DRAFT)
    auth.login(owner)
    for action in ("edit", "send-now", "cancel"):
        assert client.post(url(event, f"/{message.id}/{action}")).status_code == 404
    db.session.expire_all()
    assert db.session.get(Message, message.id).status is MessageStatus.DRAFT


def test_anonymous_is_sent_to_login(client, event):
    response = client.get(url(event))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post(url(event), data=compose()).status_code == 302


def test_compose_says_what_each_mode_does_and_the_zone_offset(client, auth, owner, event):
    auth.login(owner)
    page = client.get(url(event)).get_data(as_text=True)
    assert 'data-label-draft="Save draft"' in page
    assert 'data-label-schedule="Schedule message"' in page
    assert 'data-label-send_now="Send message now"' in page
    assert ">Save draft</button>" in page  # the default mode
    offset = datetime.now(UTC).astimezone(event.tz).strftime("%z")
    assert f"{event.timezone} (UTC{offset[0]}{offset[1:3]}:{offset[3:]})." in page.replace("−", "-")
    assert 'data-event-zone="' + event.timezone + '"' in page
    assert 'data-insert="{{guest_name}}"' in page


def test_a_row_send_now_links_to_watch_it(client, auth, event, owner, make_guests, make_message):
    make_guests(event, 1)
    message = make_message(event, subject="Doors open", due=False)
    auth.login(owner)
    answer = client.post(
        url(event, f"/{message.id}/send-now"),
        data={"tab": "scheduled", "page": "1"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "“Doors open” is being sent." in answer
    assert f'<a href="/events/{event.id}/messages/{message.id}">Watch it</a>' in answer
