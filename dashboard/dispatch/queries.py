"""Read-side figures for pages and the API: always SQL aggregates over the rows."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    Delivery,
    DeliveryStatus,
    Outcome,
)
from dashboard.events.models import Guest
from dashboard.messages.models import Message


@dataclass(frozen=True)
class Counts:
    total: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0

    def as_json(self) -> dict[str, int]:
        return asdict(self)

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped


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
        )
        for mid, by in raw.items()
    }


def kept_figures(counts: Counts | None) -> dict[str, int | None]:
    """The columns a finished message keeps (None: in flight again, counted from the rows)."""
    if counts is None:
        return dict.fromkeys(("final_total", "final_sent", "final_failed", "final_skipped"))
    return {
        "final_total": counts.total,
        "final_sent": counts.sent,
        "final_failed": counts.failed,
        "final_skipped": counts.skipped,
    }


def message_counts(session: Session, message_ids: Iterable[int]) -> dict[int, Counts]:
    """Delivery figures per message: the figures a finished message keeps, else counted
    from its rows (``delivery_counts``)."""
    ids = list(message_ids)
    counts: dict[int, Counts] = {}
    if ids:
        for mid, total, sent, failed, skipped in session.execute(
            sa.select(
                Message.id,
                Message.final_total,
                Message.final_sent,
                Message.final_failed,
                Message.final_skipped,
            ).where(Message.id.in_(ids), Message.final_total.is_not(None))
        ):
            counts[mid] = Counts(total=total, sent=sent, failed=failed, skipped=skipped)
    counts.update(delivery_counts(session, [mid for mid in ids if mid not in counts]))
    return counts


def entry_counts(session: Session, batch_id: int) -> dict[Outcome, int]:
    """How many entries of a batch have each outcome (one GROUP BY over the covering index)."""
    rows = session.execute(
        sa.select(BatchEntry.outcome, sa.func.count())
        .where(BatchEntry.batch_id == batch_id)
        .group_by(BatchEntry.outcome)
    ).all()
    found = {Outcome(outcome): n for outcome, n in rows}
    return {outcome: found.get(outcome, 0) for outcome in Outcome}


def batch_figures(by_outcome: dict[Outcome, int]) -> dict[str, int]:
    """A batch's counters from its entries; a dry run counts as skipped (nothing was sent)."""
    return {
        "sent": by_outcome[Outcome.SENT],
        "failed": by_outcome[Outcome.FAILED],
        "skipped": by_outcome[Outcome.SKIPPED] + by_outcome[Outcome.DRY_RUN],
    }


# --- batch logs (issue 5): read-only helpers for the log pages, the API and the admin views


class EntryFilter(enum.StrEnum):
    """The outcome filter of a batch's entries; ``skipped`` includes dry-run entries."""

    ALL = "all"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"

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
    Guest.name.label("guest_name"),
)


def _entry_scope(batch_id: int, entry_filter: EntryFilter) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [BatchEntry.batch_id == batch_id]
    if entry_filter.outcomes:
        clauses.append(BatchEntry.outcome.in_(entry_filter.outcomes))
    return clauses


def _search_clause(search: str) -> sa.ColumnElement[bool]:
    return sa.or_(
        Guest.name.icontains(search, autoescape=True),
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
            .join(Guest, Guest.id == Delivery.guest_id)
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
        .join(Guest, Guest.id == Delivery.guest_id)
        .order_by(BatchEntry.id)
    ).all()
    return list(rows), total or 0


def entry_outcome_counts(session: Session, batch_id: int) -> dict[EntryFilter, int]:
    """How many entries each filter of the batch page shows."""
    by = entry_counts(session, batch_id)
    return {f: sum(by[o] for o in (f.outcomes or tuple(Outcome))) for f in EntryFilter}


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
