"""How a batch is doing, in words and numbers for the pages: progress, time left, durations,
who started it. Pure functions of a batch row and ``now`` (and of what the sending threads
have had answered but not yet recorded, ``dispatch.live``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.dispatch.live import Answered
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger

#: A running batch's owner writes its heartbeat at least every quarter lease: silent for
#: half a lease, it has probably stopped (it is taken over once the lease has lapsed).
LATE_AFTER = timedelta(seconds=30)

_BY_VERB = {
    BatchTrigger.RETRY_FAILED: "Retry failed by",
    BatchTrigger.SEND_NOW: "Sent now by",
    BatchTrigger.SEND_ONE: "Single re-send by",
}


def retry_text(count: int, at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """What a sending message whose only batch has finished is waiting for: "Retrying 2 at
    23:14 CET" (the day too when it is not today, "now" when it is due)."""
    if at <= now:
        return f"Retrying {count} now"
    local, today = at.astimezone(tz), now.astimezone(tz)
    when = f"{local:%H:%M}" if local.date() == today.date() else f"{local:%a %d %b, %H:%M}"
    return f"Retrying {count} at {when} {local.tzname()}"


def started_by_sentence(batch: Batch) -> str:
    """The batch page's line: "Sent now by x@y", "Retry failed by x@y", "Started by the
    scheduler" (never "Started by Sent now by ...")."""
    who = started_by(batch)
    if batch.trigger in _BY_VERB and who != "scheduler":
        return who
    return f"Started by {'the scheduler' if who == 'scheduler' else who}"


def started_by(batch: Batch) -> str:
    """ "scheduler", a user's e-mail, or e.g. "Retry failed by x@y" for a manual retry."""
    label = batch.initiated_label or "scheduler"
    if batch.initiated_by_id is None and label == "scheduler":
        return "scheduler"
    verb = _BY_VERB.get(batch.trigger)
    return f"{verb} {label}" if verb else label


def format_duration(value: timedelta | float | None) -> str:
    """3 s, 2 min 5 s, 1 h 04 min."""
    if value is None:
        return ""
    seconds = int(round(value.total_seconds() if isinstance(value, timedelta) else value))
    seconds = max(0, seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def batch_duration(batch: Batch, now: datetime) -> timedelta | None:
    if batch.status is BatchStatus.RUNNING and batch.heartbeat_at is None:
        return None  # queued: no dispatcher has started it yet
    end = batch.finished_at or now
    return max(timedelta(0), end - batch.started_at)


# --- live progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far a batch has got, from its counters (atomic increments, invariant 7)."""

    total: int
    sent: int
    failed: int
    skipped: int
    running: bool
    queued: bool
    elapsed: timedelta | None
    eta_seconds: float | None
    #: Left unsent by a host's stop.
    cancelled: int = 0
    #: Answered by the mail server but not recorded yet (this process's sending threads).
    answered: int = 0
    #: How long the running batch's owner has not written its heartbeat, once that is late.
    silent_for: timedelta | None = None

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped + self.cancelled + self.answered

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if not self.running else 0
        return min(100, int(self.done * 100 / self.total))

    def share(self, part: int) -> float:
        """Width of one segment of the stacked bar, in percent of the total."""
        return round(part * 100 / self.total, 2) if self.total else 0.0

    @property
    def eta_text(self) -> str:
        if not self.running:
            return ""
        if self.queued:
            return "waiting for the dispatcher to start"
        if self.silent_for is not None:
            return f"no sign of life for {format_duration(self.silent_for)}"
        if self.eta_seconds is None:
            return "estimating time left"
        if self.eta_seconds < 1:
            return "almost done"
        return f"about {format_duration(self.eta_seconds)} left"


def batch_progress(
    batch: Batch,
    now: datetime,
    answered: Answered | None = None,
    late_after: timedelta = LATE_AFTER,
) -> Progress:
    """Counts so far and an estimate of the time left.

    With ``answered`` (this process sends the batch) the recipients answered but not yet
    recorded count too, and the estimate is the rate of the last seconds: it does not grow
    while a group is on its way, and says nothing rather than guess when nothing came back
    lately. Without it, the rate so far since ``started_at``. A batch whose heartbeat is
    older than ``late_after`` gets no estimate but "no sign of life for N s".
    """
    running = batch.status is BatchStatus.RUNNING
    queued = running and batch.heartbeat_at is None
    elapsed = batch_duration(batch, now)
    done = batch.sent + batch.failed + batch.skipped + batch.cancelled
    extra = 0
    if running and answered is not None:
        extra = min(max(0, answered.count - batch.sent - batch.failed), batch.total - done)
        extra = max(0, extra)
    left = max(0, batch.total - done - extra)
    silent = None
    if running and not queued and batch.heartbeat_at is not None:
        since = now - batch.heartbeat_at
        silent = since if since > late_after else None
    eta = None
    if running and not queued and silent is None:
        if answered is not None and answered.rate is not None:
            eta = left / answered.rate if answered.rate > 0 else None
        elif elapsed is not None and done and batch.total and elapsed.total_seconds() > 0:
            eta = left * elapsed.total_seconds() / done
    return Progress(
        total=batch.total,
        sent=batch.sent,
        failed=batch.failed,
        skipped=batch.skipped,
        cancelled=batch.cancelled,
        running=running,
        queued=queued,
        elapsed=elapsed,
        eta_seconds=eta,
        answered=extra,
        silent_for=silent,
    )
