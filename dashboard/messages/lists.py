"""Reading the messages of an event: the Communications tabs, their counts, one message.

Plain functions of a session and arguments, shared by the pages and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.database import count_by
from dashboard.db_types import Words
from dashboard.dispatch.progress import retry_text
from dashboard.dispatch.queries import retry_waits
from dashboard.events.models import Event
from dashboard.messages.audience import RecipientCount, count_recipients
from dashboard.messages.models import Audience, Message, MessageStatus


class Tab(Words):
    SCHEDULED = "scheduled"
    SENT = "sent"
    CANCELLED = "cancelled"

    @property
    def statuses(self) -> tuple[MessageStatus, ...]:
        return TAB_STATUSES[self]


TAB_STATUSES: dict[Tab, tuple[MessageStatus, ...]] = {
    Tab.SCHEDULED: (MessageStatus.OVERDUE, MessageStatus.DRAFT, MessageStatus.SCHEDULED),
    Tab.SENT: (
        MessageStatus.DRY_RUN,
        MessageStatus.SENDING,
        MessageStatus.PAUSED,
        MessageStatus.STOPPED,
        MessageStatus.SENT,
        MessageStatus.SENT_WITH_FAILURES,
        MessageStatus.FAILED,
    ),
    Tab.CANCELLED: (MessageStatus.CANCELLED,),
}


def tab_for(status: MessageStatus) -> Tab:
    return next(tab for tab, statuses in TAB_STATUSES.items() if status in statuses)


def messages_query(
    event_id: int, statuses: tuple[MessageStatus, ...] | None = None, tab: Tab | None = None
) -> sa.Select[tuple[Message]]:
    """Newest first by send time on the Sent tab. The Scheduled tab reads in the order
    things will happen: the overdue ones first (they wait for a host's decision), then the
    scheduled ones by send time, then the drafts (no time yet), newest first."""
    stmt = sa.select(Message).where(Message.event_id == event_id)
    if statuses:
        stmt = stmt.where(Message.status.in_([s.value for s in statuses]))
    if tab is Tab.SENT:
        return stmt.order_by(
            sa.func.coalesce(Message.send_at, Message.updated_at).desc(), Message.id.desc()
        )
    if tab is Tab.SCHEDULED:
        group = sa.case(
            (Message.status == MessageStatus.OVERDUE, 0),
            (Message.status == MessageStatus.SCHEDULED, 1),
            else_=2,
        )
        planned = sa.case((Message.status == MessageStatus.DRAFT, None), else_=Message.send_at)
        return stmt.order_by(group, planned.asc(), Message.id.desc())
    return stmt.order_by(Message.id.desc())


def next_scheduled(session: Session, event_id: int) -> Message | None:
    """The scheduled message that goes out first (the Scheduled tab's "Next: ..." line)."""
    return session.scalar(
        sa.select(Message)
        .where(Message.event_id == event_id, Message.status == MessageStatus.SCHEDULED)
        .order_by(Message.send_at, Message.id)
        .limit(1)
    )


def tab_counts(session: Session, event_id: int) -> dict[Tab, int]:
    by_status = count_by(session, Message.status, Message.event_id == event_id)
    return {
        tab: sum(by_status.get(status, 0) for status in statuses)
        for tab, statuses in TAB_STATUSES.items()
    }


def get_message_of(session: Session, event: Event, message_id: int) -> Message | None:
    """The message if it belongs to ``event``; None for another event's id (answer 404)."""
    message = session.get(Message, message_id)
    if message is None or message.event_id != event.id:
        return None
    return message


def reach(session: Session, event: Event, messages: list[Message]) -> dict[int, RecipientCount]:
    """Whom each unsent message would reach now, for its send-now confirmation: one count
    per audience and channel on the page, not one per row."""
    by_kind: dict[tuple[Audience, Any], RecipientCount] = {}
    reach = {}
    for m in messages:
        key = (m.audience, m.channel)
        if key not in by_kind:
            by_kind[key] = count_recipients(session, event.id, m.audience, m.channel)
        reach[m.id] = by_kind[key]
    return reach


def retry_texts(
    session: Session, event: Event, messages: list[Message], now: datetime
) -> dict[int, str]:
    """ "Retrying 2 at 23:14 CET" for a sending message that waits for an automatic retry,
    rather than a "Sending" that its finished batch contradicts."""
    sending = [m.id for m in messages if m.status is MessageStatus.SENDING]
    waits = retry_waits(session, sending)
    return {mid: retry_text(w.count, w.at, event.tz, now) for mid, w in waits.items()}
