"""The guest list: search, RSVP filter, pagination, page or fragment, add/edit/remove."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa

from dashboard.dispatch.models import Delivery, DeliveryStatus
from dashboard.events.models import Guest, RsvpStatus
from dashboard.extensions import db
from dashboard.messages.models import Audience, Message, MessageStatus

HX = {"HX-Request": "true"}


def rows(html: str) -> list[str]:
    return re.findall(r'<tr id="guest-\d+">\s*<td>(?:<a href="[^"]*">)?([^<]*)(?:</a>)?</td>', html)


def test_counts_per_rsvp_status_and_unsubscribed(client, auth, event, make_guests):
    make_guests(event, 3, "attending", prefix="att")
    make_guests(event, 2, "declined", prefix="dec")
    make_guests(event, 1, "maybe", prefix="may", unsubscribed=True)
    auth.login()
    page = client.get(f"/events/{event.id}/guests").get_data(as_text=True)
    for label, count in (
        ("All", 6),
        ("Attending", 3),
        ("Declined", 2),
        ("Maybe", 1),
        ("Pending", 0),
        ("Unsubscribed", 1),
    ):
        assert re.search(rf">{label} <strong>{count}</strong>", page), label
    assert '<span class="badge unsubscribed"' in page


def test_search_matches_name_or_email_case_insensitively(client, auth, event, make_guests):
    make_guests(event, 3, prefix="alpha")
    make_guests(event, 3, prefix="beta")
    db.session.add(
        Guest(event_id=event.id, name="Zoë Quirk", email="zq@ALPHA.test", email_key="zq@alpha.test")
    )
    db.session.commit()
    auth.login()
    by_email = rows(client.get(f"/events/{event.id}/guests?q=ALPHA").get_data(as_text=True))
    assert sorted(by_email) == ["Alpha 0", "Alpha 1", "Alpha 2", "Zoë Quirk"]
    by_name = rows(client.get(f"/events/{event.id}/guests?q=zoë").get_data(as_text=True))
    assert by_name == ["Zoë Quirk"]


def test_search_treats_wildcards_literally(client, auth, event, make_guests):
    make_guests(event, 3)
    auth.login()
    page = client.get(f"/events/{event.id}/guests?q=%25").get_data(as_text=True)
    assert rows(page) == []
    assert "No guests match" in page


def test_rsvp_filter(client, auth, event, make_guests):
    make_guests(event, 2, "attending", prefix="att")
    make_guests(event, 2, "declined", prefix="dec")
    make_guests(event, 1, "pending", prefix="unsub", unsubscribed=True)
    auth.login()
    assert sorted(
        rows(client.get(f"/events/{event.id}/guests?rsvp=declined").get_data(as_text=True))
    ) == ["Dec 2", "Dec 3"]
    assert rows(
        client.get(f"/events/{event.id}/guests?rsvp=unsubscribed").get_data(as_text=True)
    ) == ["Unsub 4"]
    assert (
        len(rows(client.get(f"/events/{event.id}/guests?rsvp=bogus").get_data(as_text=True))) == 5
    )


def test_pagination_is_25_per_page_and_keeps_the_filter(client, auth, event, make_guests):
    make_guests(event, 60, "attending")
    make_guests(event, 5, "declined", prefix="dec")
    auth.login()
    first = client.get(f"/events/{event.id}/guests?rsvp=attending").get_data(as_text=True)
    assert len(rows(first)) == 25
    assert "Page 1 of 3 · 60 in all" in first
    assert f"/events/{event.id}/guests?page=2&amp;rsvp=attending" in first
    third = client.get(f"/events/{event.id}/guests?rsvp=attending&page=3").get_data(as_text=True)
    assert len(rows(third)) == 10
    assert client.get(f"/events/{event.id}/guests?page=0").status_code == 200
    assert "Back to the first page" in client.get(f"/events/{event.id}/guests?page=99").get_data(
        as_text=True
    )


def test_the_same_url_answers_page_or_fragment(client, auth, event, make_guests):
    make_guests(event, 3)
    auth.login()
    page = client.get(f"/events/{event.id}/guests?q=guest")
    fragment = client.get(f"/events/{event.id}/guests?q=guest", headers=HX)
    for response in (page, fragment):
        assert response.status_code == 200
        assert "HX-Request" in response.headers["Vary"]
    assert "<html" in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and '<nav class="tabs"' not in body
    assert len(rows(body)) == 3
    assert 'id="guest-table"' in page.get_data(as_text=True)


def test_search_box_is_an_htmx_active_search(client, auth, event):
    auth.login()
    page = client.get(f"/events/{event.id}/guests").get_data(as_text=True)
    assert 'hx-trigger="input changed delay:300ms, search"' in page
    assert 'hx-target="#guest-table"' in page
    assert f'hx-get="/events/{event.id}/guests"' in page
    assert '<label for="guest-search">' in page


def test_add_a_guest(client, auth, event):
    auth.login()
    response = client.post(
        f"/events/{event.id}/guests",
        data={"name": " Ada  Lovelace ", "email": "Ada@Example.org", "rsvp_status": "maybe"},
    )
    assert response.status_code == 302
    guest = db.session.scalars(sa.select(Guest).where(Guest.event_id == event.id)).one()
    assert (guest.name, guest.email, guest.email_key, guest.rsvp_status) == (
        "Ada Lovelace",
        "Ada@example.org",  # normalized: the domain is case-insensitive, the local part is not
        "ada@example.org",
        RsvpStatus.MAYBE,
    )


def test_adding_a_duplicate_or_bad_guest_is_a_form_error(client, auth, event, make_guests):
    make_guests(event, 1)
    auth.login()
    url = f"/events/{event.id}/guests"
    duplicate = client.post(
        url, data={"name": "Again", "email": "GUEST0@example.org", "rsvp_status": "pending"}
    )
    assert duplicate.status_code == 400
    assert "already on the guest list" in duplicate.get_data(as_text=True)
    bad = client.post(url, data={"name": "X", "email": "not-an-email", "rsvp_status": "pending"})
    assert bad.status_code == 400
    assert "is not a valid e-mail address" in bad.get_data(as_text=True)
    weird = client.post(url, data={"name": "X", "email": "x@example.org", "rsvp_status": "drunk"})
    assert weird.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Guest)) == 1


def test_edit_a_guest(client, auth, event, make_guests):
    guest = make_guests(event, 1)[0]
    auth.login()
    url = f"/events/{event.id}/guests/{guest.id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert 'value="Guest 0"' in page
    response = client.post(
        url, data={"name": "Renamed", "email": "new@example.org", "rsvp_status": "declined"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (guest.name, guest.email_key, guest.rsvp_status) == (
        "Renamed",
        "new@example.org",
        RsvpStatus.DECLINED,
    )


def test_editing_to_another_guests_email_is_refused(client, auth, event, make_guests):
    first, second = make_guests(event, 2)
    auth.login()
    response = client.post(
        f"/events/{event.id}/guests/{second.id}/edit",
        data={"name": "Clash", "email": first.email.upper(), "rsvp_status": "pending"},
    )
    assert response.status_code == 400
    assert "already on the guest list" in response.get_data(as_text=True)


def test_remove_a_guest_asks_first(client, auth, event, make_guests):
    guest = make_guests(event, 1)[0]
    auth.login()
    page = client.get(f"/events/{event.id}/guests").get_data(as_text=True)
    assert 'hx-boost="true" hx-confirm="Remove Guest 0 &lt;guest0@example.org&gt; from' in page
    assert "onsubmit" not in page  # no inline script: the page must work under a strict CSP
    assert client.post(f"/events/{event.id}/guests/{guest.id}/remove").status_code == 302
    db.session.expire_all()
    assert db.session.get(Guest, guest.id).removed  # off the list, the row (and history) kept


def test_editor_may_change_guests(client, auth, event, editor):
    auth.login(editor)
    response = client.post(
        f"/events/{event.id}/guests", data={"name": "Ed", "email": "ed@example.org"}
    )
    assert response.status_code == 302


def test_guest_names_are_escaped(client, auth, event):
    db.session.add(
        Guest(
            event_id=event.id,
            name="<img src=x onerror=alert(1)>",
            email="x@example.org",
            email_key="x@example.org",
        )
    )
    db.session.commit()
    auth.login()
    page = client.get(f"/events/{event.id}/guests").get_data(as_text=True)
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_an_added_guest_is_shown_on_its_page_and_scrolled_to(client, auth, event, make_guests):
    make_guests(event, 30, prefix="guest")  # "Guest 0" .. "Guest 29": two pages of 25
    auth.login()
    late = client.post(
        f"/events/{event.id}/guests",
        data={"name": "Zoe Last", "email": "zoe@example.org", "rsvp_status": "pending"},
    )
    zoe = db.session.scalars(sa.select(Guest).where(Guest.email_key == "zoe@example.org")).one()
    assert late.headers["Location"] == f"/events/{event.id}/guests?page=2#guest-{zoe.id}"
    early = client.post(
        f"/events/{event.id}/guests",
        data={"name": "Ada First", "email": "ada@example.org", "rsvp_status": "pending"},
    )
    ada = db.session.scalars(sa.select(Guest).where(Guest.email_key == "ada@example.org")).one()
    assert early.headers["Location"] == f"/events/{event.id}/guests#guest-{ada.id}"
    page = client.get(early.headers["Location"].split("#")[0]).get_data(as_text=True)
    assert f'id="guest-{ada.id}"' in page


def test_a_guest_page_lists_every_message_they_were_sent(client, auth, event, make_guests):
    ann, ben = make_guests(event, 2, prefix="guest")
    now = datetime.now(UTC)
    for subject, status, error in (
        ("Parking", DeliveryStatus.SENT, None),
        ("Reminder", DeliveryStatus.FAILED, "550 Mailbox does not exist"),
    ):
        message = Message(
            event_id=event.id,
            subject=subject,
            body="Hi",
            audience=Audience.EVERYONE,
            status=MessageStatus.SENT,
            created_at=now,
            updated_at=now,
        )
        db.session.add(message)
        db.session.flush()
        db.session.add(
            Delivery(
                message_id=message.id,
                guest_id=ann.id,
                name=ann.name,
                email=ann.email,
                status=status,
                attempts=1,
                last_error=error,
                sent_at=now if status is DeliveryStatus.SENT else None,
            )
        )
    db.session.commit()
    auth.login()
    guests_page = client.get(f"/events/{event.id}/guests").get_data(as_text=True)
    assert f'href="/events/{event.id}/guests/{ann.id}">{ann.name}</a>' in guests_page

    page = client.get(f"/events/{event.id}/guests/{ann.id}").get_data(as_text=True)
    assert f"Messages sent to {ann.name}" in page
    assert "Parking" in page and "Reminder" in page
    assert "550 Mailbox does not exist" in page
    assert page.count("/deliveries/") == 2
    empty = client.get(f"/events/{event.id}/guests/{ben.id}").get_data(as_text=True)
    assert "Nothing has been sent to" in empty
    assert client.get(f"/events/{event.id}/guests/999999").status_code == 404
