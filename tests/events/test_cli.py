"""seed-demo and import-guests, through Flask's CLI runner."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.auth.models import User
from dashboard.events.models import Event, Guest, RsvpStatus
from dashboard.extensions import db
from dashboard.messages.models import Message


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_seed_demo_creates_admin_event_and_guests(runner, app, now):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "password" in line)
    assert "admin@example.com" in line
    password = line.split("password:")[1].split()[0]
    admin = db.session.scalars(sa.select(User)).one()
    assert admin.is_admin and admin.check_password(password)

    event = db.session.scalars(sa.select(Event)).one()
    assert event.timezone == "Europe/Berlin" and event.venue
    assert event.starts_local.hour == 18
    assert timedelta(days=29) < event.starts_at - now < timedelta(days=31)
    statuses = db.session.execute(
        sa.select(Guest.rsvp_status, sa.func.count())
        .where(Guest.event_id == event.id)
        .group_by(Guest.rsvp_status)
    ).all()
    by_status = {RsvpStatus(s): n for s, n in statuses}
    assert sum(by_status.values()) == 50
    assert set(by_status) == set(RsvpStatus)
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(Guest.unsubscribed_at.is_not(None))) > 0
    )
    assert db.session.scalar(sa.select(sa.func.count()).where(Message.event_id == event.id)) == 4
    assert event.starts_at.astimezone(ZoneInfo("Europe/Berlin")).minute == 0


def test_seed_demo_if_empty_does_nothing_when_users_exist(runner, owner):
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 0
    assert result.output.strip().count("\n") == 0 and "no demo data" in result.output
    assert count(User) == 1 and count(Event) == 0


def test_seed_demo_twice_reuses_the_admin(runner, app):
    assert runner.invoke(args=["seed-demo", "--if-empty"]).exit_code == 0
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert "exists already" in again.output and "password:" not in again.output
    assert count(User) == 1 and count(Event) == 2


def test_import_guests_prints_counts_and_reasons(runner, event, make_guests, tmp_path):
    make_guests(event, 1)
    path = tmp_path / "guests.csv"
    path.write_text(
        "\ufeffname;email;rsvp_status\nGuest 0;GUEST0@example.org;declined\nNew;new@example.org;\nBad;bad;maybe\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["import-guests", str(event.id), str(path)])
    assert result.exit_code == 0, result.output
    assert "1 created, 1 updated, 0 unchanged, 1 rejected" in result.output
    assert "line 4: 'bad' is not a valid e-mail address: An email address must have an @-sign." in (
        result.output
    )
    assert count(Guest) == 2


def test_import_guests_unknown_event(runner, app, tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("name,email\nA,a@example.org\n")
    result = runner.invoke(args=["import-guests", "999", str(path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no event with id 999"


def test_import_guests_unreadable_or_bad_file(runner, event, tmp_path):
    missing = runner.invoke(args=["import-guests", str(event.id), str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1
    assert missing.output.startswith("Error: cannot read") and missing.output.count("\n") == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("name,phone\nA,1\n")
    result = runner.invoke(args=["import-guests", str(event.id), str(bad)])
    assert result.exit_code == 1
    assert "missing email" in result.output and result.output.count("\n") == 1
    assert count(Guest) == 0
