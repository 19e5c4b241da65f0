"""``flask dispatch ...``: one poll pass, retries and a single controlled re-send."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from dashboard.audit.cli import as_option, cli_actor
from dashboard.errors import Conflict
from dashboard.extensions import db

if TYPE_CHECKING:
    from dashboard.messages.models import Message


@click.group("dispatch", cls=AppGroup)
def dispatch_cli() -> None:
    """Send due messages, retry failures, re-send one delivery; pause, resume, stop a send."""


@dispatch_cli.command("run-due")
@click.option("--until-idle", is_flag=True, help="Poll again until a pass finds nothing to do.")
@as_option
def run_due(until_idle: bool, as_email: str | None) -> None:
    """One poll pass (recovery, due messages, retries), then exit."""
    from dashboard.dispatch.scheduler import build_dispatcher

    actor = cli_actor("dispatch run-due", as_email)
    dispatcher = build_dispatcher(current_app, db.session, actor=actor)
    recovered, held_back, batches, helped = 0, 0, [], []
    while True:
        report = dispatcher.poll()
        recovered += report.recovered
        held_back += report.held_back
        batches += report.batches
        helped += report.helped
        if not (until_idle and (report.batches or report.helped)):
            break
    click.echo(
        f"recovered {recovered} stale batch(es); ran {len(batches)} batch(es)"
        + (f": {', '.join(map(str, batches))}" if batches else "")
        + (f"; helped {', '.join(map(str, sorted(set(helped))))}" if helped else "")
        + (
            f"; held back {held_back} message(s) found too late (see their reason)"
            if held_back
            else ""
        )
    )


@dispatch_cli.command("retry-failed")
@click.option("--message", "message_id", type=int, help="Only this message.")
@click.option(
    "--permanent",
    is_flag=True,
    help="Also the permanent failures (refused addresses): only once they are fixed.",
)
@as_option
def retry_failed_command(message_id: int | None, permanent: bool, as_email: str | None) -> None:
    """Re-send the temporary failures (of one message, or of all), then send them now."""
    from dashboard.db_types import utcnow
    from dashboard.dispatch.models import Delivery, DeliveryStatus
    from dashboard.dispatch.scheduler import build_dispatcher
    from dashboard.dispatch.services import retry_failed
    from dashboard.messages.models import Message

    actor = cli_actor("dispatch retry-failed", as_email)
    if message_id is not None:
        if db.session.get(Message, message_id) is None:
            raise click.ClickException(f"no message with id {message_id}")
        ids = [message_id]
    else:
        ids = list(
            db.session.scalars(
                sa.select(Delivery.message_id)
                .where(Delivery.status == DeliveryStatus.FAILED)
                .distinct()
            ).all()
        )
    queued = 0
    for mid in ids:
        message = db.session.get(Message, mid)
        try:
            retry_failed(db.session, message, actor, utcnow(), permanent=permanent)
            db.session.commit()
            queued += 1
        except Conflict as error:
            db.session.rollback()
            click.echo(f"message {mid}: {error}", err=True)
    click.echo(f"queued {queued} retry batch(es)")
    if message_id is not None and not queued:
        raise SystemExit(1)
    build_dispatcher(current_app, db.session, actor=actor).poll()


@dispatch_cli.command("send-one")
@click.argument("delivery_id", type=int)
@as_option
def send_one_command(delivery_id: int, as_email: str | None) -> None:
    """Re-send one delivery on purpose, whatever its status, and print the outcome."""
    from dashboard.dispatch.models import BatchEntry
    from dashboard.dispatch.scheduler import build_dispatcher
    from dashboard.dispatch.services import send_one

    actor = cli_actor("dispatch send-one", as_email)
    dispatcher = build_dispatcher(current_app, db.session, actor=actor)
    try:
        batch = send_one(dispatcher, delivery_id, actor)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    except Conflict as error:
        raise click.ClickException(str(error)) from None
    entry = db.session.scalar(sa.select(BatchEntry).where(BatchEntry.batch_id == batch.id))
    outcome = entry.outcome.value if entry else batch.status.value
    click.echo(
        f"delivery {delivery_id}: {outcome}"
        + (f" ({entry.reason})" if entry and entry.reason else "")
    )
    if outcome not in ("sent", "dry_run"):
        raise SystemExit(1)


def _controlled(message_id: int) -> Message:
    from dashboard.messages.models import Message

    message = db.session.get(Message, message_id)
    if message is None:
        raise click.ClickException(f"no message with id {message_id}")
    return message


@dispatch_cli.command("pause")
@click.argument("message_id", type=int)
@as_option
def pause_command(message_id: int, as_email: str | None) -> None:
    """Pause a message being sent: no process takes more of its recipients."""
    from dashboard.db_types import utcnow
    from dashboard.dispatch import control

    actor = cli_actor("dispatch pause", as_email)
    try:
        control.pause(db.session, _controlled(message_id), actor, utcnow())
    except Conflict as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"message {message_id}: paused; what was already handed to a sender is recorded")


@dispatch_cli.command("resume")
@click.argument("message_id", type=int)
@as_option
def resume_command(message_id: int, as_email: str | None) -> None:
    """Resume a paused message: a new batch sends the recipients without an outcome."""
    from dashboard.db_types import utcnow
    from dashboard.dispatch import control

    actor = cli_actor("dispatch resume", as_email)
    try:
        batch = control.resume(db.session, _controlled(message_id), actor, utcnow())
    except Conflict as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(
        f"message {message_id}: resumed in batch {batch.id}; the scheduler sends it "
        "(without one running: flask dispatch run-due)"
    )


@dispatch_cli.command("stop")
@click.argument("message_id", type=int)
@as_option
def stop_command(message_id: int, as_email: str | None) -> None:
    """Stop a sending or paused message for good; its recipients left are cancelled."""
    from dashboard.db_types import utcnow
    from dashboard.dispatch import control
    from dashboard.dispatch.queries import delivery_counts
    from dashboard.dispatch.settings import DispatchSettings

    actor = cli_actor("dispatch stop", as_email)
    lease = DispatchSettings.from_config(current_app.config).lease
    try:
        control.stop(db.session, _controlled(message_id), actor, utcnow(), lease)
    except Conflict as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    counts = delivery_counts(db.session, [message_id])[message_id]
    click.echo(
        f"message {message_id}: stopped; {counts.sent} sent, {counts.cancelled} cancelled"
        + (f", {counts.pending} still being recorded by a sender" if counts.pending else "")
    )
