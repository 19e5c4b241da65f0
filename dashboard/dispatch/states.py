"""Message and batch statuses: the tables of allowed moves, the one guarded write, and the
one rule that turns a run's figures into a status.

Every change of a status is ``UPDATE ... WHERE id = ? AND status IN (<sources>)``: the
sources are the statuses from which the table allows the move. When the row has moved
on meanwhile (another process claimed the message, a host cancelled it) the update
touches nothing and the caller learns it lost the race; no status is ever assigned
from a value read earlier.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.dispatch.models import Batch, BatchStatus
from dashboard.errors import IllegalTransition
from dashboard.messages.models import Message, MessageStatus

S = TypeVar("S", MessageStatus, BatchStatus)

M = MessageStatus
#: The only legal moves of a message.
MESSAGE_MOVES: Mapping[MessageStatus, frozenset[MessageStatus]] = {
    M.DRAFT: frozenset({M.SCHEDULED, M.SENDING, M.CANCELLED}),
    # Found too late (or its event started or was cancelled): held back, never sent late.
    M.SCHEDULED: frozenset({M.DRAFT, M.SENDING, M.CANCELLED, M.OVERDUE}),
    # A host decides: send it now, give it a new time, or drop it.
    M.OVERDUE: frozenset({M.SCHEDULED, M.DRAFT, M.SENDING, M.CANCELLED}),
    M.SENDING: frozenset({M.SENT, M.SENT_WITH_FAILURES, M.FAILED, M.DRY_RUN, M.PAUSED, M.STOPPED}),
    # A host (or ``hold_after``) paused it: resumed in a new batch, or stopped for good.
    M.PAUSED: frozenset({M.SENDING, M.STOPPED}),
    # Stopped is final: the recipients left were recorded as cancelled.
    M.STOPPED: frozenset(),
    # A manual retry of failed recipients (or a single re-send) re-opens a finished message.
    M.SENT: frozenset({M.SENDING}),
    M.SENT_WITH_FAILURES: frozenset({M.SENDING}),
    M.FAILED: frozenset({M.SENDING}),
    # Nothing was sent and every recipient is still pending: send-now sends it for real.
    M.DRY_RUN: frozenset({M.SENDING}),
    # Only a reminder the system cancelled (its time had passed when the event moved) comes
    # back scheduled, once its time is ahead again; the caller's WHERE names that reason.
    # A host may take back a cancel: the message returns as a draft, sent only once someone
    # schedules or sends it again.
    M.CANCELLED: frozenset({M.SCHEDULED, M.DRAFT}),
}

B = BatchStatus
#: The only legal moves of a batch: it runs once and then keeps its final status.
BATCH_MOVES: Mapping[BatchStatus, frozenset[BatchStatus]] = {
    B.RUNNING: frozenset(
        {B.COMPLETED, B.COMPLETED_WITH_FAILURES, B.FAILED, B.INTERRUPTED, B.PAUSED, B.STOPPED}
    ),
    B.COMPLETED: frozenset(),
    B.COMPLETED_WITH_FAILURES: frozenset(),
    B.FAILED: frozenset(),
    B.INTERRUPTED: frozenset(),
    B.PAUSED: frozenset(),
    B.STOPPED: frozenset(),
}

_VERBS = {
    M.CANCELLED: "cancelled",
    M.SENDING: "sent",
    M.SCHEDULED: "scheduled",
    M.DRAFT: "edited",
}


def allowed(current: S, target: S) -> bool:
    """Staying put is allowed (an edit keeps a draft a draft); anything else is in the table."""
    table: Mapping[Any, frozenset[Any]] = (
        MESSAGE_MOVES if isinstance(current, MessageStatus) else BATCH_MOVES
    )
    return current == target or target in table[current]


def refusal(current: MessageStatus, target: MessageStatus) -> IllegalTransition:
    """The 409 for a message that can no longer make this move, in words a host understands."""
    verb = _VERBS.get(target, f"moved to {target.label.lower()}")
    state = "a dry run" if current is M.DRY_RUN else current.label.lower()
    return IllegalTransition(
        current,
        target,
        f"This message is {state} and can no longer be {verb}. "
        "Only drafts, scheduled and overdue messages can be changed.",
    )


def check(current: MessageStatus, target: MessageStatus) -> None:
    if not allowed(current, target):
        raise refusal(current, target)


def _sources(target: S, expected: Iterable[S] | None, table: Mapping[S, frozenset[S]]) -> list[S]:
    if expected is None:
        return [status for status, targets in table.items() if target in targets]
    sources = list(expected)
    illegal = [s for s in sources if not allowed(s, target)]
    if illegal:  # a programming error, not a user's: the caller asked for an illegal move
        raise ValueError(f"{', '.join(s.value for s in illegal)} -> {target.value} is not allowed")
    return sources


def move_message(
    session: Session,
    message_id: int,
    target: MessageStatus,
    *,
    now: datetime,
    expected: Iterable[MessageStatus] | None = None,
    where: sa.ColumnElement[bool] | None = None,
    **values: Any,
) -> bool:
    """Move one message to ``target`` if its status is one of ``expected`` (default: every
    status the table allows the move from), setting ``values`` too. True if it moved."""
    sources = _sources(target, expected, MESSAGE_MOVES)
    stmt = (
        sa.update(Message)
        .where(Message.id == message_id, Message.status.in_([s.value for s in sources]))
        .values(status=target, updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if where is not None:
        stmt = stmt.where(where)
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


def move_batch(
    session: Session,
    batch_id: int,
    target: BatchStatus,
    *,
    where: sa.ColumnElement[bool] | None = None,
    **values: Any,
) -> bool:
    """Move a running batch to its final ``target``. True if it moved."""
    sources = _sources(target, None, BATCH_MOVES)
    stmt = (
        sa.update(Batch)
        .where(Batch.id == batch_id, Batch.status.in_([s.value for s in sources]))
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    if where is not None:
        stmt = stmt.where(where)
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]


# --- status from figures ----------------------------------------------------------------


class Result(enum.Enum):
    """What a run achieved, judged only on what was meant to be delivered."""

    COMPLETE = "complete"  # nothing failed (skipped guests were never meant to receive it)
    PARTIAL = "partial"  # some received it, some failed
    NOTHING = "nothing"  # something failed and nobody received it


def result_of(sent: int, failed: int) -> Result:
    """The one rule for batches and messages alike: skips do not count as success."""
    if failed == 0:
        return Result.COMPLETE
    if sent == 0:
        return Result.NOTHING
    return Result.PARTIAL


BATCH_STATUS_OF = {
    Result.COMPLETE: B.COMPLETED,
    Result.PARTIAL: B.COMPLETED_WITH_FAILURES,
    Result.NOTHING: B.FAILED,
}
MESSAGE_STATUS_OF = {
    Result.COMPLETE: M.SENT,
    Result.PARTIAL: M.SENT_WITH_FAILURES,
    Result.NOTHING: M.FAILED,
}


def batch_status_from(sent: int, failed: int) -> BatchStatus:
    return BATCH_STATUS_OF[result_of(sent, failed)]


def message_status_from(sent: int, failed: int) -> MessageStatus:
    return MESSAGE_STATUS_OF[result_of(sent, failed)]
