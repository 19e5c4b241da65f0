"""``flask create-user``, ``flask set-password`` and ``flask create-token``."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from dashboard.audit.cli import as_option, cli_actor
from dashboard.audit.services import record
from dashboard.auth.services import (
    AuthError,
    change_password,
    create_token,
    create_user,
    find_user,
)
from dashboard.db_types import utcnow
from dashboard.extensions import db


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the user a site admin.")
@click.option("--name", default="", help="Display name.")
@as_option
def create_user_command(email: str, admin: bool, name: str, as_email: str | None) -> None:
    """Create a user; the password comes from a prompt, or from stdin when piped."""
    actor = cli_actor("create-user", as_email)
    password = _read_password()
    try:
        user = create_user(db.session, email, password, name=name, is_admin=admin)
    except AuthError as error:
        raise click.ClickException(str(error)) from None
    details = {"email": user.email, "admin": admin}
    record(db.session, actor, "user.create", now=utcnow(), details=details)
    db.session.commit()
    click.echo(f"Created {'admin' if admin else 'user'} {user.email}")


@click.command("set-password")
@with_appcontext
@click.argument("email")
@as_option
def set_password_command(email: str, as_email: str | None) -> None:
    """Give EMAIL a new password (prompt, or stdin when piped) and sign them out everywhere."""
    actor = cli_actor("set-password", as_email)
    user = find_user(db.session, email)
    if user is None:
        raise click.ClickException(f"no user with e-mail {email}")
    try:
        change_password(db.session, user, _read_password())
    except AuthError as error:
        raise click.ClickException(str(error)) from None
    record(db.session, actor, "user.password", now=utcnow(), details={"email": user.email})
    db.session.commit()
    click.echo(f"New password set for {user.email}; every sign-in of theirs has ended.")


@click.command("create-token")
@with_appcontext
@click.argument("email")
@click.option("--name", default="cli", help="A label for the token.")
@as_option
def create_token_command(email: str, name: str, as_email: str | None) -> None:
    """Print a new API token for EMAIL (alone on the last line)."""
    actor = cli_actor("create-token", as_email)
    user = find_user(db.session, email)
    if user is None:
        raise click.ClickException(f"no user with e-mail {email}")
    raw = create_token(db.session, user, name)
    details = {"email": user.email, "name": name}
    record(db.session, actor, "token.create", now=utcnow(), details=details)
    db.session.commit()
    click.echo(f"API token for {user.email} (shown once):")
    click.echo(raw)
