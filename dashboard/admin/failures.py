"""Failed deliveries across events, grouped by their last error (read side of the admin page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.db_types import UTCDateTime
from dashboard.dispatch.models import Delivery, DeliveryStatus, ErrorKind
from dashboard.events.models import Event
from dashboard.messages.models import Message

#: Deliveries that failed without a recorded error are grouped under this text.
NO_REASON = ""


@dataclass
class FailureGroup:
    reason: str
    deliveries: int
    messages: int
    last_failed_at: datetime | None
    #: How many of them failed permanently (the server refused the address).
    permanent: int = 0
    rows: list[Any] = field(default_factory=list)  # per message: event, subject, count

    @property
    def message_ids(self) -> list[int]:
        return [row.message_id for row in self.rows]


@dataclass(frozen=True)
class FailureFilter:
    event_id: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = [Delivery.status == DeliveryStatus.FAILED]
        if self.event_id is not None:
            clauses.append(Message.event_id == self.event_id)
        if self.since is not None:
            clauses.append(Delivery.updated_at >= _utc(self.since))
        if self.until is not None:
            clauses.append(Delivery.updated_at < _utc(self.until + timedelta(days=1)))
        return clauses


def _utc(day: date) -> sa.BindParameter[datetime]:
    return sa.literal(datetime.combine(day, time(0), tzinfo=UTC), UTCDateTime())


def _reason() -> sa.ColumnElement[str]:
    return sa.func.coalesce(Delivery.last_error, NO_REASON)


#: How many of a group failed permanently (the server refused the address).
_PERMANENT = sa.func.count().filter(Delivery.error_kind == ErrorKind.PERMANENT)


def failure_groups(
    session: Session, filters: FailureFilter, *, limit: int, offset: int
) -> tuple[list[FailureGroup], int]:
    """One page of reasons (most frequent first) with their messages, in three queries."""
    reason = _reason().label("reason")
    base = (
        sa.select(reason)
        .select_from(Delivery)
        .join(Message, Message.id == Delivery.message_id)
        .where(*filters.clauses())
    )
    total = session.scalar(sa.select(sa.func.count()).select_from(base.group_by(reason).subquery()))
    groups = [
        FailureGroup(row.reason, row.deliveries, row.messages, row.last_failed_at, row.permanent)
        for row in session.execute(
            base.add_columns(
                sa.func.count().label("deliveries"),
                sa.func.count(sa.distinct(Delivery.message_id)).label("messages"),
                sa.func.max(Delivery.updated_at).label("last_failed_at"),
                _PERMANENT.label("permanent"),
            )
            .group_by(reason)
            .order_by(sa.func.count().desc(), reason)
            .limit(limit)
            .offset(offset)
        ).all()
    ]
    if not groups:
        return [], total or 0
    by_reason = {group.reason: group for group in groups}
    rows = session.execute(
        sa.select(
            reason,
            Delivery.message_id,
            Message.subject,
            Message.kind,
            Message.status,
            Event.id.label("event_id"),
            Event.name.label("event_name"),
            sa.func.count().label("deliveries"),
        )
        .select_from(Delivery)
        .join(Message, Message.id == Delivery.message_id)
        .join(Event, Event.id == Message.event_id)
        .where(*filters.clauses(), _reason().in_(list(by_reason)))
        .group_by(
            reason,
            Delivery.message_id,
            Message.subject,
            Message.kind,
            Message.status,
            Event.id,
            Event.name,
        )
        .order_by(sa.func.count().desc(), Delivery.message_id)
    ).all()
    for row in rows:
        by_reason[row.reason].rows.append(row)
    return groups, total or 0


def events_with_failures(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every event with at least one failed delivery, for the filter."""
    return [
        (row.id, row.name)
        for row in session.execute(
            sa.select(Event.id, Event.name)
            .where(
                sa.exists().where(
                    Message.event_id == Event.id,
                    Delivery.message_id == Message.id,
                    Delivery.status == DeliveryStatus.FAILED,
                )
            )
            .order_by(Event.name, Event.id)
        ).all()
    ]
