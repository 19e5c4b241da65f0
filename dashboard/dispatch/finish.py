"""Ending a batch and deciding what its message waits for next.

Finishing runs in a clean transaction (rollback first, then statements by id), so the
state of a failed recipient can never keep the batch from being finalized, and every
figure is counted from the rows at that moment, never carried in memory.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.dispatch import claim, control, states
from dashboard.dispatch.models import Batch, BatchStatus, Delivery, DeliveryStatus
from dashboard.dispatch.queries import batch_figures, delivery_counts, entry_counts, kept_figures
from dashboard.dispatch.rules import retryable
from dashboard.dispatch.sending import QuotaWait
from dashboard.dispatch.settings import Context
from dashboard.dispatch.transports import Refused, SlowDown, Unreachable
from dashboard.events.models import Event
from dashboard.messages.models import Message, MessageStatus

log = logging.getLogger(__name__)

#: How often a batch's owner looks again while helpers still hold claims on its rows.
HELPER_WAIT_SECONDS = 0.2


def owner_heartbeat(ctx: Context, batch_id: int, message_id: int, now: datetime) -> bool:
    """The message lease and the batch heartbeat (the caller commits). False: lease lost."""
    ctx.session.execute(sa.update(Batch).where(Batch.id == batch_id).values(heartbeat_at=now))
    return claim.renew_lease(ctx.session, message_id, ctx.worker, now)


def finish(
    ctx: Context,
    batch_id: int,
    message_id: int,
    *,
    interrupted: str | None = None,
    error: str | None = None,
    pause: timedelta | None = None,
    release: bool = True,
    alert: str | None = None,
) -> BatchStatus:
    """Give the batch its final status and figures; settle the message unless ``release``
    is off (another worker holds it now). ``alert``: what the message page says while the
    message waits out ``pause``.

    First the batch is sealed, so no helper claims more of it, and the chunks helpers are
    still sending are waited for (at most one lease), so their outcomes are in the figures.
    """
    session = ctx.session
    session.rollback()
    session.execute(sa.update(Batch).where(Batch.id == batch_id).values(sealed_at=ctx.clock()))
    session.commit()
    if release:
        wait_for_helpers(ctx, batch_id, message_id)
    claim.release_claims(session, message_id, ctx.worker)
    now = ctx.clock()
    # A host's pause or stop decides how the batch ends, whatever else happened to it.
    ending = control.ending_for(session, message_id, lock=True) if release else None
    if ending is not None:
        status, note = ending.status, ending.note
        counts = control.end_by_host(
            session, message_id, batch_id, ending, ctx.worker, now, ctx.settings.lease
        )
    else:
        note = interrupted or error
        counts = batch_figures(entry_counts(session, batch_id))
        if interrupted:
            status = BatchStatus.INTERRUPTED
        elif error:
            status = BatchStatus.FAILED
        else:
            status = states.batch_status_from(counts["sent"], counts["failed"])
    moved = states.move_batch(
        session, batch_id, status, finished_at=now, heartbeat_at=now, error=note, **counts
    )
    if not moved:  # recovery ended it meanwhile: keep its status, bring its figures up to date
        session.execute(sa.update(Batch).where(Batch.id == batch_id).values(**counts))
    if status is BatchStatus.STOPPED:
        control.keep_stopped_figures(session, message_id)
    if release:
        settle_message(ctx, message_id, now, pause=pause, reason=alert)
        claim.release_lease(session, message_id, ctx.worker)
    session.commit()
    log.info("batch %s of message %s: %s %s", batch_id, message_id, status.value, counts)
    return status


def pause_for_outage(ctx: Context, batch_id: int, message_id: int, reason: str) -> BatchStatus:
    """The mail server is unreachable: interrupt the batch and retry the message later,
    without charging anybody an attempt."""
    log.warning("mail server unreachable, pausing message %s: %s", message_id, reason)
    return finish(
        ctx,
        batch_id,
        message_id,
        interrupted=f"Mail server unreachable: {reason}. Sending resumes automatically.",
        pause=timedelta(seconds=ctx.settings.pause_seconds),
    )


#: How long a message waits after the provider refused our credentials: nothing can go
#: until someone fixes a setting (and restarts), so trying every poll would only add batches.
REFUSED_PAUSE = timedelta(minutes=5)
#: A provider's quota that came without a Retry-After.
PROVIDER_QUOTA_PAUSE = timedelta(hours=1)


def pause_for(ctx: Context, batch_id: int, message_id: int, error: Unreachable) -> BatchStatus:
    """Stop the batch for what was nobody's fault, charging nobody, and say on the message
    page what it waits for and until when: an outage, a "slow down", a quota, or refused
    credentials."""
    if type(error) is Unreachable:
        return pause_for_outage(ctx, batch_id, message_id, str(error))
    now = ctx.clock()
    interrupted, alert, wait = _explain(ctx, message_id, error, now)
    log.warning("message %s waits %s: %s", message_id, wait, interrupted)
    return finish(
        ctx,
        batch_id,
        message_id,
        interrupted=interrupted,
        pause=wait,
        alert=alert[:300],
    )


def _explain(
    ctx: Context, message_id: int, error: Unreachable, now: datetime
) -> tuple[str, str, timedelta]:
    """The batch's error, the message page's alert, and the wait."""
    seconds = getattr(error, "retry_after", None)
    asked = timedelta(seconds=seconds) if seconds is not None else None
    pause = timedelta(seconds=ctx.settings.pause_seconds)
    if isinstance(error, Refused):
        wait = max(pause, REFUSED_PAUSE)
        at = _local(ctx, message_id, now + wait)
        fix = f"fix {error.setting}" if error.setting else "fix the mail settings"
        return (
            f"The mail provider refused our credentials ({error}). Nobody was charged an "
            f"attempt; {fix} and sending resumes (next try at {at}).",
            f"Sending stopped: the mail provider refused our credentials ({error}). "
            f"To do: {fix}. Next try at {at}.",
            wait,
        )
    if isinstance(error, QuotaWait):
        wait = asked or pause
        at = _local(ctx, message_id, now + wait)
        return (
            f"The daily quota (DISPATCH_DAILY_QUOTA) is used up; sending resumes at {at}.",
            f"Waiting for the daily quota; resumes at {at}",
            wait,
        )
    if isinstance(error, SlowDown) and error.quota:
        wait = asked or PROVIDER_QUOTA_PAUSE
        at = _local(ctx, message_id, now + wait)
        return (
            f"The mail provider's quota is used up ({error}); sending resumes at {at}.",
            f"Waiting for the mail provider's quota; resumes at {at}",
            wait,
        )
    wait = max(asked or pause, pause)
    at = _local(ctx, message_id, now + wait)
    return (
        f"The mail server asked us to slow down ({error}); nobody was charged an attempt "
        f"and sending resumes at {at}.",
        f"Waiting: the mail server asked us to slow down; resumes at {at}",
        wait,
    )


def _local(ctx: Context, message_id: int, when: datetime) -> str:
    """``when`` in the event's time zone: "14:05" today, "Thu 3 Dec 14:05" on another day."""
    zone = ctx.session.scalar(
        sa.select(Event.timezone)
        .join(Message, Message.event_id == Event.id)
        .where(Message.id == message_id)
    )
    tz = ZoneInfo(zone or "UTC")
    local, today = when.astimezone(tz), ctx.clock().astimezone(tz)
    if local.date() == today.date():
        return f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def lost_lease(ctx: Context, batch_id: int, message_id: int) -> BatchStatus:
    return finish(
        ctx,
        batch_id,
        message_id,
        interrupted="Another dispatcher took this message over (lease expired).",
        release=False,
    )


def wait_for_helpers(ctx: Context, batch_id: int, message_id: int) -> None:
    session, settings = ctx.session, ctx.settings
    deadline = time.monotonic() + settings.lease_seconds
    while claim.claimed_by_others(session, message_id, ctx.worker, ctx.clock(), settings.lease):
        session.commit()
        if time.monotonic() > deadline:
            return
        time.sleep(HELPER_WAIT_SECONDS)
        owner_heartbeat(ctx, batch_id, message_id, ctx.clock())
        session.commit()
    session.commit()


def settle_message(
    ctx: Context,
    message_id: int,
    now: datetime,
    pause: timedelta | None = None,
    reason: str | None = None,
) -> None:
    """Decide what a sending message waits for next, or give it its final status.

    ``reason``: why it waits out ``pause`` (shown on its page until it sends again)."""
    session = ctx.session
    status = session.scalar(sa.select(Message.status).where(Message.id == message_id))
    if status is not MessageStatus.SENDING:
        return
    if pause is not None:
        _resume_at(ctx, message_id, now + pause, reason)
        return
    pending = Delivery.status == DeliveryStatus.PENDING
    waiting, dry = session.execute(
        sa.select(
            sa.func.count().filter(pending, Delivery.dry_run.is_(False)),
            sa.func.count().filter(pending, Delivery.dry_run.is_(True)),
        ).where(Delivery.message_id == message_id)
    ).one()
    if not ctx.settings.dry_run:
        waiting += dry  # rows a dry run left pending are this worker's to send for real
        dry = 0
    next_retry = session.scalar(
        sa.select(sa.func.min(Delivery.next_attempt_at)).where(
            Delivery.message_id == message_id, retryable(ctx.settings.max_attempts)
        )
    )
    if waiting or next_retry is not None:
        _resume_at(ctx, message_id, now if waiting else next_retry)
        return
    counts = delivery_counts(session, [message_id])[message_id]
    if dry:
        _end_dry_run(ctx, message_id, now, dry, counts.sent)
        return
    states.move_message(
        session,
        message_id,
        states.message_status_from(counts.sent, counts.failed),
        now=now,
        expected=[MessageStatus.SENDING],
        resume_at=None,
        status_reason=None,
        **kept_figures(counts),
    )


def _end_dry_run(ctx: Context, message_id: int, now: datetime, dry: int, sent: int) -> None:
    """Every recipient left is pending from a dry run: the message waits in ``dry_run`` (the
    scheduler never picks it again) until a host sends it for real."""
    earlier = f"{sent} had received it before" if sent else "nothing was sent"
    states.move_message(
        ctx.session,
        message_id,
        MessageStatus.DRY_RUN,
        now=now,
        expected=[MessageStatus.SENDING],
        resume_at=None,
        status_reason=f"Dry run: {dry} would have received it; {earlier}",
        **kept_figures(None),
    )


def _resume_at(
    ctx: Context, message_id: int, when: datetime | None, reason: str | None = None
) -> None:
    ctx.session.execute(
        sa.update(Message)
        .where(Message.id == message_id)
        .values(resume_at=when, status_reason=reason)
    )
