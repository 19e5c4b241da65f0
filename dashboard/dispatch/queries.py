"""The read side of dispatch, for the pages, the API and the admin views.

Plain functions of a session and arguments: figures (always SQL aggregates over the rows,
never carried in memory), the entries of a batch, the history of a delivery, and lookups
that enforce "the object belongs to an event this user may see" (404 otherwise). Routes
parse their query strings themselves; JSON shapes live with the API's schemas.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound

from dashboard.auth.models import User
from dashboard.database import count_by
from dashboard.dispatch import channels
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    Delivery,
    DeliveryStatus,
    ErrorKind,
    Outcome,
)
from dashboard.events.access import role_for
from dashboard.events.models import Event, Guest, Role
from dashboard.messages.audience import sample_guest
from dashboard.messages.models import Message
from dashboard.messages.placeholders import PlaceholderError
from dashboard.messages.rendering import MessageRenderer, RenderedMessage


@dataclass(frozen=True)
class Counts:
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    #: Left unsent by a host's stop.
    cancelled: int = 0

    def as_json(self) -> dict[str, int]:
        return asdict(self)

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped + self.cancelled


def delivery_counts(session: Session, message_ids: Iterable[int]) -> dict[int, Counts]:
    """Delivery figures per message from the rows: one GROUP BY over (message_id, status)."""
    ids = list(message_ids)
    raw: dict[int, dict[str, int]] = {mid: {} for mid in ids}
    if ids:
        rows = session.execute(
            sa.select(Delivery.message_id, Delivery.status, sa.func.count())
            .where(Delivery.message_id.in_(ids))
            .group_by(Delivery.message_id, Delivery.status)
        ).all()
        for message_id, status, n in rows:
            raw[message_id][DeliveryStatus(status).value] = n
    return {
        mid: Counts(
            total=sum(by.values()),
            sent=by.get("sent", 0),
            failed=by.get("failed", 0),
            skipped=by.get("skipped", 0),
            pending=by.get("pending", 0),
            cancelled=by.get("cancelled", 0),
        )
        for mid, by in raw.items()
    }


def kept_figures(counts: Counts | None) -> dict[str, int | None]:
    """The columns a finished message keeps (None: in flight again, counted from the rows)."""
    if counts is None:
        return dict.fromkeys(
            ("final_total", "final_sent", "final_failed", "final_skipped", "final_cancelled")
        )
    return {
        "final_total": counts.total,
        "final_sent": counts.sent,
        "final_failed": counts.failed,
        "final_skipped": counts.skipped,
        "final_cancelled": counts.cancelled,
    }


def message_counts(session: Session, message_ids: Iterable[int]) -> dict[int, Counts]:
    """Delivery figures per message: the figures a finished message keeps, else counted
    from its rows (``delivery_counts``)."""
    ids = list(message_ids)
    counts: dict[int, Counts] = {}
    if ids:
        for mid, total, sent, failed, skipped, cancelled in session.execute(
            sa.select(
                Message.id,
                Message.final_total,
                Message.final_sent,
                Message.final_failed,
                Message.final_skipped,
                Message.final_cancelled,
            ).where(Message.id.in_(ids), Message.final_total.is_not(None))
        ):
            counts[mid] = Counts(
                total=total, sent=sent, failed=failed, skipped=skipped, cancelled=cancelled or 0
            )
    counts.update(delivery_counts(session, [mid for mid in ids if mid not in counts]))
    return counts


@dataclass(frozen=True)
class SendTimes:
    """When a message went out (its first batch started) and when it finished (its newest
    batch ended; None while one still runs)."""

    started_at: datetime
    finished_at: datetime | None


def send_times(session: Session, message_ids: Iterable[int]) -> dict[int, SendTimes]:
    """Per message that went to dispatch, from its batches (one GROUP BY)."""
    ids = list(message_ids)
    if not ids:
        return {}
    rows = session.execute(
        sa.select(
            Batch.message_id,
            sa.func.min(Batch.started_at),
            sa.func.max(Batch.finished_at),
            sa.func.count().filter(Batch.status == BatchStatus.RUNNING),
        )
        .where(Batch.message_id.in_(ids))
        .group_by(Batch.message_id)
    ).all()
    # min/max keep the column's type, so the values come back as aware UTC datetimes.
    return {mid: SendTimes(first, None if running else last) for mid, first, last, running in rows}


@dataclass(frozen=True)
class RetryWait:
    """Failed recipients an automatic retry will send again, and when the first is due."""

    count: int
    at: datetime


def retry_waits(session: Session, message_ids: Iterable[int]) -> dict[int, RetryWait]:
    """Per message with automatic retries planned (a temporary failure keeps its next
    attempt's time until it is retried or given up): one GROUP BY."""
    ids = list(message_ids)
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Delivery.message_id, sa.func.count(), sa.func.min(Delivery.next_attempt_at))
        .where(
            Delivery.message_id.in_(ids),
            Delivery.status == DeliveryStatus.FAILED,
            Delivery.next_attempt_at.is_not(None),
        )
        .group_by(Delivery.message_id)
    ).all()
    return {mid: RetryWait(count, at) for mid, count, at in rows}


def entry_counts(session: Session, batch_id: int) -> dict[Outcome, int]:
    """How many entries of a batch have each outcome (one GROUP BY over the covering index)."""
    found = count_by(session, BatchEntry.outcome, BatchEntry.batch_id == batch_id)
    return {outcome: found.get(outcome, 0) for outcome in Outcome}


def batch_figures(by_outcome: dict[Outcome, int]) -> dict[str, int]:
    """A batch's counters from its entries; a dry run counts as skipped (nothing was sent)."""
    return {
        "sent": by_outcome[Outcome.SENT],
        "failed": by_outcome[Outcome.FAILED],
        "skipped": by_outcome[Outcome.SKIPPED] + by_outcome[Outcome.DRY_RUN],
        "cancelled": by_outcome[Outcome.CANCELLED],
    }


# --- the entries of a batch ------------------------------------------------------------

#: A page of entries, on the batch page and in the API, unless the request asks otherwise.
ENTRIES_PER_PAGE = 50


class EntryFilter(enum.StrEnum):
    """The outcome filter of a batch's entries; ``skipped`` includes dry-run entries."""

    ALL = "all"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {"all": "All", "dry_run": "Dry run"}.get(self.value, self.value.capitalize())

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return {
            EntryFilter.ALL: (),
            EntryFilter.SENT: (Outcome.SENT,),
            EntryFilter.FAILED: (Outcome.FAILED,),
            EntryFilter.SKIPPED: (Outcome.SKIPPED, Outcome.DRY_RUN),
            EntryFilter.DRY_RUN: (Outcome.DRY_RUN,),
            EntryFilter.CANCELLED: (Outcome.CANCELLED,),
        }[self]


#: The columns of one row of a batch's entries: entry, delivery and guest in one join.
ENTRY_COLUMNS = (
    BatchEntry.id,
    BatchEntry.delivery_id,
    BatchEntry.outcome,
    BatchEntry.reason,
    BatchEntry.error_kind,
    BatchEntry.processed_at,
    Delivery.guest_id,
    Delivery.email,
    Delivery.status.label("delivery_status"),
    Delivery.attempts,
    Delivery.name.label("guest_name"),  # as sent: the guest may be renamed or removed since
)


def _entry_scope(batch_id: int, entry_filter: EntryFilter) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [BatchEntry.batch_id == batch_id]
    if entry_filter.outcomes:
        clauses.append(BatchEntry.outcome.in_(entry_filter.outcomes))
    return clauses


def _search_clause(search: str) -> sa.ColumnElement[bool]:
    return sa.or_(
        Delivery.name.icontains(search, autoescape=True),
        Delivery.email.icontains(search, autoescape=True),
    )


def batch_entries(
    session: Session,
    batch_id: int,
    entry_filter: EntryFilter = EntryFilter.ALL,
    search: str = "",
    *,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[sa.Row[Any]], int]:
    """One page of a batch's entries (in processing order) and how many match, in two queries.

    Without a search the page of entry ids is cut from the (batch_id, outcome, id) index
    first and only those rows are joined to their delivery and guest ("late row lookup"),
    so page 400 of a 20,000-entry batch costs the same as page 1.
    """
    scope = _entry_scope(batch_id, entry_filter)
    search = search.strip()
    if search:
        joined = (
            sa.select(*ENTRY_COLUMNS)
            .join(Delivery, Delivery.id == BatchEntry.delivery_id)
            .where(*scope, _search_clause(search))
        )
        total = session.scalar(
            sa.select(sa.func.count()).select_from(
                joined.with_only_columns(BatchEntry.id).subquery()
            )
        )
        rows = session.execute(joined.order_by(BatchEntry.id).limit(limit).offset(offset)).all()
        return list(rows), total or 0
    total = session.scalar(sa.select(sa.func.count(BatchEntry.id)).where(*scope))
    page_ids = (
        sa.select(BatchEntry.id.label("entry_id"))
        .where(*scope)
        .order_by(BatchEntry.id)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    rows = session.execute(
        sa.select(*ENTRY_COLUMNS)
        .select_from(page_ids)
        .join(BatchEntry, BatchEntry.id == page_ids.c.entry_id)
        .join(Delivery, Delivery.id == BatchEntry.delivery_id)
        .order_by(BatchEntry.id)
    ).all()
    return list(rows), total or 0


def entry_outcome_counts(session: Session, batch_id: int) -> dict[EntryFilter, int]:
    """How many entries each filter of the batch page shows."""
    by = entry_counts(session, batch_id)
    return {f: sum(by[o] for o in (f.outcomes or tuple(Outcome))) for f in EntryFilter}


def newest_refusal_batch(session: Session, message_id: int) -> int | None:
    """The newest batch that recorded a permanent failure still standing for the message:
    its failed entries list the guests whose address needs fixing.

    The message's batches are tried newest first, each with an EXISTS over its failed
    entries, which stops at the first refusal: a few index probes, however many failed."""
    refusal = (
        sa.select(BatchEntry.id)
        .join(Delivery, Delivery.id == BatchEntry.delivery_id)
        .where(
            BatchEntry.batch_id == Batch.id,
            BatchEntry.outcome == Outcome.FAILED,
            BatchEntry.error_kind == ErrorKind.PERMANENT,
            Delivery.status == DeliveryStatus.FAILED,
            Delivery.error_kind == ErrorKind.PERMANENT,
        )
        .exists()
    )
    return session.scalar(
        sa.select(Batch.id)
        .where(Batch.message_id == message_id, refusal)
        .order_by(Batch.id.desc())
        .limit(1)
    )


def delivery_history(session: Session, delivery_id: int) -> list[sa.Row[Any]]:
    """Every attempt at one delivery across batches, newest first."""
    return list(
        session.execute(
            sa.select(
                BatchEntry.id,
                BatchEntry.batch_id,
                BatchEntry.outcome,
                BatchEntry.reason,
                BatchEntry.error_kind,
                BatchEntry.processed_at,
                Batch.trigger,
                Batch.initiated_label,
                Batch.status.label("batch_status"),
            )
            .join(Batch, Batch.id == BatchEntry.batch_id)
            .where(BatchEntry.delivery_id == delivery_id)
            .order_by(BatchEntry.processed_at.desc(), BatchEntry.id.desc())
        ).all()
    )


def running_batch_of(session: Session, message_id: int) -> Batch | None:
    """The batch of a message that is running now (the newest, if several are queued)."""
    return session.scalar(
        sa.select(Batch)
        .where(Batch.message_id == message_id, Batch.status == BatchStatus.RUNNING)
        .order_by(Batch.id.desc())
        .limit(1)
    )


# --- lookups that enforce visibility ------------------------------------------------


def _of_event(session: Session, event: Event, model: type[Any], object_id: int, what: str) -> Any:
    """A message (or one of its batches or deliveries) by id, only within ``event``: 404 else."""
    stmt = sa.select(model).where(model.id == object_id, Message.event_id == event.id)
    if model is not Message:
        stmt = stmt.join(Message, Message.id == model.message_id)
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"No such {what} on this event.")
    return found


def message_of_event(session: Session, event: Event, message_id: int) -> Message:
    return _of_event(session, event, Message, message_id, "message")


def batch_of_event(session: Session, event: Event, batch_id: int) -> Batch:
    return _of_event(session, event, Batch, batch_id, "batch")


def delivery_of_event(session: Session, event: Event, delivery_id: int) -> Delivery:
    return _of_event(session, event, Delivery, delivery_id, "delivery")


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


# --- what one recipient saw ---------------------------------------------------------


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
    ) or sample_guest(session, event.id, message.audience, channels.get(message.channel))
    recipient = f"{guest.name} <{guest.email}>" if guest is not None else "a sample guest"
    if guest is None:
        guest = SimpleNamespace(name="Guest Name", email="guest@example.com", token="sample-token")
    try:
        renderer = MessageRenderer(event, message.subject, message.body, base_url, preview=True)
        return Sample(renderer.render(guest), recipient)
    except (PlaceholderError, ValueError, KeyError) as error:
        return Sample(None, recipient, f"This message cannot be rendered: {error}")
