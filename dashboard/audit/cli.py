"""``--as EMAIL`` for every CLI command that changes something: who the audit log names.

Without it a command is recorded as run by the operating-system user
("cli:<command> (<os user>)"); with it, as that user of the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dashboard.audit.services import Actor
from dashboard.auth.services import find_user
from dashboard.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


def as_option(command: F) -> F:
    """Add ``--as EMAIL`` (the parameter ``as_email``) to a click command."""
    return click.option(
        "--as",
        "as_email",
        metavar="EMAIL",
        default=None,
        help="Record the changes as made by this dashboard user (default: the OS user).",
    )(command)


def cli_actor(command: str, as_email: str | None) -> Actor:
    """The actor of a command run: the ``--as`` user (who must exist), else the OS user."""
    if as_email is None:
        return Actor.cli(command)
    user = find_user(db.session, as_email)
    if user is None:
        raise click.ClickException(f"--as {as_email}: no user with this e-mail")
    return Actor.cli(command, user)
