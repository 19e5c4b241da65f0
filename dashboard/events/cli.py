"""Event CLI commands: ``seed-demo``, ``import-guests`` and ``check-guest-emails``."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from dashboard.audit.cli import as_option, cli_actor
from dashboard.audit.services import Actor, record
from dashboard.auth.models import User
from dashboard.auth.services import create_user, find_user, generate_password
from dashboard.db_types import utcnow
from dashboard.errors import ValidationError
from dashboard.events import csv_import
from dashboard.events.addresses import normalize_email
from dashboard.events.guests import add_guest
from dashboard.events.models import Event, Guest, RsvpStatus
from dashboard.events.services import create_event, unsubscribe
from dashboard.extensions import db

DEMO_ADMIN = "admin@example.com"
DEMO_TIMEZONE = "Europe/Berlin"
FIRST_NAMES = (
    "Ada", "Ben", "Chiara", "Dmitri", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas",
    "Kemal", "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tara",
    "Ugo", "Vera", "Wen", "Yusuf", "Zofia",
)  # fmt: skip
LAST_NAMES = ("Lovelace", "Okafor", "Novak", "Schmidt", "Yilmaz", "Tanaka", "Rossi", "Dubois")
#: 50 guests: 20 attending, 15 pending, 8 maybe, 7 declined.
DEMO_STATUSES = (
    [RsvpStatus.ATTENDING] * 20 + [RsvpStatus.PENDING] * 15 + [RsvpStatus.MAYBE] * 8
    + [RsvpStatus.DECLINED] * 7
)  # fmt: skip


def seed_demo(session: Session, now: datetime, actor: Actor) -> tuple[User, str | None, Event]:
    """The demo admin (with a fresh password, or None if it existed) and a demo event with 50 guests."""
    admin = find_user(session, DEMO_ADMIN)
    password = None
    if admin is None:
        password = generate_password()
        admin = create_user(session, DEMO_ADMIN, password, name="Demo Admin", is_admin=True)
        details = {"email": admin.email, "admin": True}
        record(session, actor, "user.create", now=now, details=details)
    zone = ZoneInfo(DEMO_TIMEZONE)
    day = (now.astimezone(zone) + timedelta(days=30)).date()
    event = create_event(
        session,
        actor,
        owner=admin,
        name="Summer Gala (demo)",
        starts_at=datetime.combine(day, time(18, 0), tzinfo=zone),
        timezone=DEMO_TIMEZONE,
        venue="Kulturbrauerei, Schönhauser Allee 36, Berlin",
        now=now,
    )
    statuses = list(DEMO_STATUSES)
    random.Random(2024).shuffle(statuses)  # mixed, but the same on every run
    names = zip(itertools.cycle(FIRST_NAMES), itertools.cycle(LAST_NAMES), strict=False)
    for number, (status, (first, last)) in enumerate(zip(statuses, names, strict=False)):
        guest = add_guest(
            session,
            event,
            actor=actor,
            now=now,
            name=f"{first} {last}",
            email=f"{first}.{last}.{number}@example.org".lower(),
            rsvp_status=status.value,
        ).guest
        if number % 12 == 5:  # a few people who asked not to be e-mailed
            unsubscribe(session, guest, now)
    return admin, password, event


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing when any user exists already.")
@as_option
def seed_demo_command(if_empty: bool, as_email: str | None) -> None:
    """Create a demo admin and a demo event with 50 guests."""
    if if_empty and db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        click.echo("Users exist already; no demo data created.")
        return
    admin, password, event = seed_demo(db.session, utcnow(), cli_actor("seed-demo", as_email))
    db.session.commit()
    if password is None:
        click.echo(f"Demo admin {admin.email} exists already (password unchanged).")
    else:
        click.echo(f"Demo admin: {admin.email}  password: {password}  (shown once)")
    click.echo(
        f"Demo event #{event.id}: {event.name}, {event.starts_local:%Y-%m-%d %H:%M} {event.timezone}, 50 guests"
    )


@click.command("import-guests")
@with_appcontext
@click.argument("event_id", type=int)
@click.argument("path", metavar="FILE.csv")
@as_option
def import_guests_command(event_id: int, path: str, as_email: str | None) -> None:
    """Import guests from a CSV (name, email, rsvp_status) into an event."""
    actor = cli_actor("import-guests", as_email)
    event = db.session.get(Event, event_id)
    if event is None:
        raise click.ClickException(f"no event with id {event_id}")
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = csv_import.decode_upload(data)
        plan, _ = csv_import.import_csv(db.session, event, text, utcnow(), actor=actor)
    except ValidationError as error:
        db.session.rollback()
        raise click.ClickException(f"{path}: {' '.join(error.errors.values())}") from None
    db.session.commit()
    click.echo(f"Imported into #{event.id} {event.name}: {plan.summary()}")
    for rejection in plan.rejected:
        click.echo(f"  line {rejection.line}: {rejection.reason}")


@click.command("check-guest-emails")
@with_appcontext
@click.option("--event", "event_id", type=int, help="Only this event.")
def check_guest_emails_command(event_id: int | None) -> None:
    """List guests whose stored e-mail address is not valid (any more).

    Only reads, and only columns every schema version has, so it runs before or after a
    migration. Such guests are skipped by every send ("no usable e-mail address") or
    refused by the transport; fix them on the guest page or by a new import. Exits 1 when
    any is found.
    """
    stmt = sa.select(Guest.event_id, Guest.id, Guest.email).order_by(Guest.event_id, Guest.id)
    if event_id is not None:
        stmt = stmt.where(Guest.event_id == event_id)
    checked = found = 0
    for row in db.session.execute(stmt.execution_options(yield_per=1000)):
        checked += 1
        try:
            normalize_email(row.email)
        except ValidationError as error:
            found += 1
            click.echo(f"event {row.event_id} guest {row.id}: {error.errors['email']}")
    click.echo(f"{checked} guest address(es) checked, {found} not valid.")
    if found:
        raise SystemExit(1)
