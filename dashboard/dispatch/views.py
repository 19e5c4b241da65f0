"""Read-side helpers shared by the log pages, the JSON API and the admin views.

Plain functions of a session and arguments: lookups that enforce "the object belongs to
an event this user may see" (404 otherwise, invariant 11), live-progress arithmetic,
the wording of who started a batch, and the JSON shapes of DESIGN.md section 6.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from dashboard.auth.models import User
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger, Delivery, DeliveryStatus
from dashboard.dispatch.queries import EntryFilter, batch_entries
from dashboard.events.access import role_for
from dashboard.events.models import Event, Guest, Role
from dashboard.messages.audience import sample_guest
from dashboard.messages.models import Message
from dashboard.messages.placeholders import PlaceholderError
from dashboard.messages.rendering import MessageRenderer, RenderedMessage

# --- lookups that enforce visibility ---------------------------------------------------


ENTRIES_PER_PAGE = 50
MAX_SEARCH = 200


def requested_entries(
    session: Session, batch_id: int, entry_filter: EntryFilter
) -> tuple[Any, str]:
    """The page of a batch's entries that the query string asks for (``q``, ``page``,
    ``per_page``), for the drill-down page and the API alike: (Page, search)."""
    from flask import request

    from dashboard.web import Page, page_args

    search = (request.args.get("q") or "").strip()[:MAX_SEARCH]
    page_no, per_page = page_args(ENTRIES_PER_PAGE)
    rows, total = batch_entries(
        session, batch_id, entry_filter, search, limit=per_page, offset=(page_no - 1) * per_page
    )
    return Page(items=rows, page=page_no, per_page=per_page, total=total), search


def message_of_event(session: Session, event: Event, message_id: int) -> Message:
    message = session.scalar(
        sa.select(Message).where(Message.id == message_id, Message.event_id == event.id)
    )
    if message is None:
        raise NotFound("No such message on this event.")
    return message


def batch_of_event(session: Session, event: Event, batch_id: int) -> Batch:
    batch = session.scalar(
        sa.select(Batch)
        .join(Message, Message.id == Batch.message_id)
        .where(Batch.id == batch_id, Message.event_id == event.id)
    )
    if batch is None:
        raise NotFound("No such batch on this event.")
    return batch


def delivery_of_event(session: Session, event: Event, delivery_id: int) -> Delivery:
    delivery = session.scalar(
        sa.select(Delivery)
        .join(Message, Message.id == Delivery.message_id)
        .where(Delivery.id == delivery_id, Message.event_id == event.id)
    )
    if delivery is None:
        raise NotFound("No such delivery on this event.")
    return delivery


def visible_batch(
    session: Session, user: User, batch_id: int, minimum: Role = Role.VIEWER
) -> tuple[Batch, Event]:
    """A batch by id alone (the API): 404 unless its event is visible to ``user``."""
    row = session.execute(
        sa.select(Batch, Event)
        .join(Message, Message.id == Batch.message_id)
        .join(Event, Event.id == Message.event_id)
        .where(Batch.id == batch_id)
    ).first()
    role = role_for(session, user, row[1].id) if row is not None else None
    if row is None or role is None:
        raise NotFound("No such batch.")
    if not role.at_least(minimum):
        raise Forbidden(f"You need the {minimum.value} role on this event to do that.")
    return row[0], row[1]


# --- wording ---------------------------------------------------------------------------

_BY_VERB = {
    BatchTrigger.RETRY_FAILED: "Retry failed by",
    BatchTrigger.SEND_NOW: "Sent now by",
    BatchTrigger.SEND_ONE: "Single re-send by",
}


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

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped

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
        if self.eta_seconds is None:
            return "estimating time left"
        if self.eta_seconds < 1:
            return "almost done"
        return f"about {format_duration(self.eta_seconds)} left"


def batch_progress(batch: Batch, now: datetime) -> Progress:
    """Counts so far and an estimate of the time left (rate so far since ``started_at``)."""
    running = batch.status is BatchStatus.RUNNING
    queued = running and batch.heartbeat_at is None
    elapsed = batch_duration(batch, now)
    done = batch.sent + batch.failed + batch.skipped
    eta = None
    if running and not queued and elapsed is not None and done and batch.total:
        seconds = elapsed.total_seconds()
        if seconds > 0:
            eta = max(0, batch.total - done) * seconds / done
    return Progress(
        total=batch.total,
        sent=batch.sent,
        failed=batch.failed,
        skipped=batch.skipped,
        running=running,
        queued=queued,
        elapsed=elapsed,
        eta_seconds=eta,
    )


# --- the rendered message --------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    rendered: RenderedMessage | None
    recipient: str  # who the sample was rendered for, in words
    error: str | None = None


def sample_rendering(session: Session, event: Event, message: Message, base_url: str) -> Sample:
    """What one recipient saw: a guest it was sent to, else one of its audience, else a stand-in."""
    guest: Any = session.scalar(
        sa.select(Guest)
        .join(Delivery, Delivery.guest_id == Guest.id)
        .where(Delivery.message_id == message.id, Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.id)
        .limit(1)
    ) or sample_guest(session, event.id, message.audience)
    recipient = f"{guest.name} <{guest.email}>" if guest is not None else "a sample guest"
    if guest is None:
        guest = SimpleNamespace(name="Guest Name", email="guest@example.com", token="sample-token")
    try:
        renderer = MessageRenderer(event, message.subject, message.body, base_url)
        return Sample(renderer.render(guest), recipient)
    except (PlaceholderError, ValueError, KeyError) as error:
        return Sample(None, recipient, f"This message cannot be rendered: {error}")


# --- JSON (DESIGN.md section 6) ---------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def batch_json(batch: Batch, now: datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": batch.id,
        "message_id": batch.message_id,
        "trigger": batch.trigger.value,
        "trigger_label": batch.trigger.label,
        "initiated_by": batch.initiated_label or "scheduler",
        "status": batch.status.value,
        "dry_run": batch.dry_run,
        "counts": {
            "total": batch.total,
            "sent": batch.sent,
            "failed": batch.failed,
            "skipped": batch.skipped,
        },
        "started_at": iso(batch.started_at),
        "finished_at": iso(batch.finished_at),
        "heartbeat_at": iso(batch.heartbeat_at),
        "error": batch.error,
    }
    if now is not None and batch.status is BatchStatus.RUNNING:
        progress = batch_progress(batch, now)
        data["progress"] = {
            "done": progress.done,
            "percent": progress.percent,
            "eta_seconds": round(progress.eta_seconds, 1)
            if progress.eta_seconds is not None
            else None,
        }
    return data


def entry_json(row: Any) -> dict[str, Any]:
    """One row of ``queries.batch_entries``."""
    return {
        "id": row.id,
        "delivery_id": row.delivery_id,
        "guest_id": row.guest_id,
        "guest_name": row.guest_name,
        "email": row.email,
        "outcome": row.outcome.value,
        "reason": row.reason,
        "error_kind": row.error_kind.value if row.error_kind is not None else None,
        "processed_at": iso(row.processed_at),
    }
