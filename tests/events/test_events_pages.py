"""Events list, create and edit, with dates entered and shown in the event's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.events.models import Event
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus


def form(**values: str) -> dict[str, str]:
    return {
        "name": "Board dinner",
        "starts_at": "2031-07-15T18:00",
        "timezone": "Europe/Berlin",
        "venue": "Rooftop",
    } | values


def only_event() -> Event:
    return db.session.scalars(sa.select(Event)).one()


def test_empty_state_invites_to_create_the_first_event(client, auth, owner):
    auth.login()
    page = client.get("/").get_data(as_text=True)
    assert "Create your first event" in page
    assert 'href="/events/new"' in page


def test_events_list_shows_start_in_each_events_zone(client, auth, make_event):
    make_event(
        "Berlin gala", starts_at=datetime(2031, 7, 15, 16, 0, tzinfo=UTC), timezone="Europe/Berlin"
    )
    make_event(
        "NYC brunch",
        starts_at=datetime(2031, 7, 15, 16, 0, tzinfo=UTC),
        timezone="America/New_York",
    )
    auth.login()
    page = client.get("/").get_data(as_text=True)
    assert "Tue 15 Jul 2031, 18:00 CEST" in page
    assert "Tue 15 Jul 2031, 12:00 EDT" in page


def test_events_list_paginates(client, auth, make_event, now):
    for n in range(23):
        make_event(f"Event {n:02d}", starts_at=now + timedelta(days=10 + n))
    auth.login()
    first = client.get("/").get_data(as_text=True)
    assert "Event 00" in first and "Event 19" in first and "Event 20" not in first
    assert "Page 1 of 2" in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert "Event 20" in second and "Event 22" in second and "Event 00" not in second


@pytest.mark.parametrize(
    ("local", "stored_utc", "shown"),
    [
        (
            "2031-07-15T18:00",
            datetime(2031, 7, 15, 16, 0, tzinfo=UTC),
            "Tue 15 Jul 2031, 18:00 CEST",
        ),
        (
            "2031-01-15T18:00",
            datetime(2031, 1, 15, 17, 0, tzinfo=UTC),
            "Wed 15 Jan 2031, 18:00 CET",
        ),
    ],
    ids=["summer", "winter"],
)
def test_create_reads_the_time_in_the_events_zone(client, auth, owner, local, stored_utc, shown):
    auth.login()
    response = client.post("/events/new", data=form(starts_at=local))
    assert response.status_code == 302
    event = only_event()
    assert event.starts_at == stored_utc
    assert response.headers["Location"] == f"/events/{event.id}"
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert shown in page
    assert "Europe/Berlin" in page and "Rooftop" in page


def test_new_event_gets_its_reminders(client, auth, owner):
    auth.login()
    client.post("/events/new", data=form(starts_at="2031-07-15T18:00"))
    kinds = db.session.scalars(
        sa.select(Message.kind).where(Message.event_id == only_event().id)
    ).all()
    assert len(kinds) == 4


def test_edit_form_shows_local_time_and_saving_keeps_it(client, auth, make_event):
    event = make_event(starts_at=datetime(2031, 7, 15, 16, 0, tzinfo=UTC), timezone="Europe/Berlin")
    auth.login()
    page = client.get(f"/events/{event.id}/edit").get_data(as_text=True)
    assert 'type="datetime-local"' in page
    assert 'value="2031-07-15T18:00"' in page
    assert 'list="timezones"' in page and '<option value="Europe/Berlin">' in page
    response = client.post(
        f"/events/{event.id}/edit", data=form(name="Renamed", starts_at="2031-07-15T18:00")
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert event.name == "Renamed"
    assert event.starts_at == datetime(2031, 7, 15, 16, 0, tzinfo=UTC)


def test_saving_an_unchanged_form_keeps_the_exact_instant(client, auth, make_event):
    # Seconds, which a datetime-local input does not show.
    starts = datetime(2031, 7, 15, 16, 0, 42, tzinfo=UTC)
    event = make_event(starts_at=starts)
    auth.login()
    client.post(f"/events/{event.id}/edit", data=form(name="Renamed", starts_at="2031-07-15T18:00"))
    db.session.expire_all()
    assert event.starts_at == starts


def test_changing_the_zone_keeps_the_wall_clock_time(client, auth, make_event):
    event = make_event(starts_at=datetime(2031, 7, 15, 16, 0, tzinfo=UTC), timezone="Europe/Berlin")
    auth.login()
    client.post(
        f"/events/{event.id}/edit",
        data=form(starts_at="2031-07-15T18:00", timezone="America/New_York"),
    )
    db.session.expire_all()
    assert event.timezone == "America/New_York"
    assert event.starts_at == datetime(2031, 7, 15, 22, 0, tzinfo=UTC)


def test_moving_the_event_moves_its_scheduled_reminders(client, auth, make_event):
    event = make_event(starts_at=datetime(2031, 7, 15, 16, 0, tzinfo=UTC))
    before = sorted(
        db.session.scalars(sa.select(Message.send_at).where(Message.event_id == event.id))
    )
    auth.login()
    client.post(f"/events/{event.id}/edit", data=form(starts_at="2031-07-22T18:00"))
    db.session.expire_all()
    after = sorted(
        db.session.scalars(
            sa.select(Message.send_at).where(
                Message.event_id == event.id, Message.status == MessageStatus.SCHEDULED
            )
        )
    )
    assert [b + timedelta(days=7) for b in before] == after


@pytest.mark.parametrize(
    ("values", "field_error"),
    [
        ({"name": "  "}, "The event needs a name."),
        ({"starts_at": "next tuesday"}, "Not a valid datetime value."),
        ({"starts_at": ""}, "Enter the date and time"),
        ({"timezone": "Mars/Olympus_Mons"}, "is not a known time zone"),
        ({"starts_at": "2031-03-30T02:30"}, "does not exist in Europe/Berlin"),
        ({"name": "x" * 201}, "Field cannot be longer than 200 characters."),
    ],
    ids=["blank-name", "bad-date", "no-date", "bad-zone", "dst-gap", "long-name"],
)
def test_bad_input_is_a_form_error(client, auth, owner, values, field_error):
    auth.login()
    response = client.post("/events/new", data=form(**values))
    assert response.status_code == 400
    assert field_error in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 0


def test_overview_has_the_event_tabs(client, auth, event):
    auth.login()
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    for href in (
        f'href="/events/{event.id}"',
        f'href="/events/{event.id}/guests"',
        f'href="/events/{event.id}/collaborators"',
        f'href="/events/{event.id}/communications"',
    ):
        assert href in page
    assert 'aria-current="page">Overview' in page


def test_event_names_are_escaped(client, auth, make_event):
    event = make_event("<script>alert(1)</script>")
    auth.login()
    for url in ("/", f"/events/{event.id}"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)" in page


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Berlin", "Europe/Berlin"),
        ("new york", "America/New_York"),
        ("europe/paris", "Europe/Paris"),
    ],
)
def test_a_city_name_is_its_time_zone(client, auth, owner, typed, stored):
    auth.login()
    response = client.post("/events/new", data=form(timezone=typed))
    assert response.status_code == 302
    assert only_event().timezone == stored


def test_an_unknown_zone_suggests_and_the_new_event_form_offers_the_list(client, auth, owner):
    auth.login()
    page = client.get("/events/new").get_data(as_text=True)
    assert 'list="timezones"' in page and '<option value="Europe/Berlin">' in page
    assert 'data-browser-zone="UTC"' in page  # static/js/compose.js puts the browser's zone
    answer = client.post("/events/new", data=form(timezone="Nowhere")).get_data(as_text=True)
    assert "&#39;Nowhere&#39; is not a known time zone (e.g. Europe/Berlin)" in answer
