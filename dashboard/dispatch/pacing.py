"""Limits shared by every dispatcher process on the database: the request rate, a
provider's "slow down", and the daily quota.

- The rate is a timeline of request slots, ``interval`` seconds apart: before sending a
  chunk, a process reserves as many slots as it makes requests by moving the shared
  ``next_at`` forward in one UPDATE, then each request waits for its own slot. However
  many processes send, the slots never overlap, so together they keep the rate.
- A "slow down" (HTTP 429, SMTP 421) moves ``next_at`` past the wait: every process's
  next slot comes after it.
- The daily quota counts the e-mails handed to the transport in the last 24 hours
  (``send_spends``). Counting and spending happen under the lock of the ``quota`` row,
  so two processes never both spend the same remainder.

Times on the timeline are the wall clock (seconds since the epoch) of the processes,
which share it on one host; across hosts, their clocks must agree (NTP).

Each function starts and commits its own transaction: the caller must have committed
(on SQLite a transaction that read first could not take the write lock afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.database import insert_ignoring_duplicates
from dashboard.dispatch.models import SendLimit, SendSpend

RATE = "rate"
QUOTA = "quota"
WINDOW = timedelta(hours=24)


def ensure_rows(session: Session) -> None:
    """The limiter rows exist (made on first use; commits)."""
    session.execute(
        insert_ignoring_duplicates(session, SendLimit, ["name"]),
        [{"name": RATE, "next_at": 0.0}, {"name": QUOTA, "next_at": 0.0}],
    )
    session.commit()


def _later(moment: float) -> sa.ColumnElement[float]:
    """``next_at``, or ``moment`` when that is later (GREATEST on both engines)."""
    return sa.case((SendLimit.next_at > moment, SendLimit.next_at), else_=sa.literal(moment))


def reserve_slots(session: Session, count: int, interval: float, now: float) -> float:
    """Reserve ``count`` request slots ``interval`` apart; the first one's time (commits).

    With no rate (``interval`` 0) it still answers the first free moment, which a
    "slow down" may have pushed into the future.
    """
    end = session.scalar(
        sa.update(SendLimit)
        .where(SendLimit.name == RATE)
        .values(next_at=_later(now) + count * interval)
        .returning(SendLimit.next_at)
        .execution_options(synchronize_session=False)  # no ORM state to keep in step
    )
    session.commit()
    if end is None:  # the row is made on first use
        ensure_rows(session)
        return reserve_slots(session, count, interval, now)
    return float(end) - count * interval


FREE_FROM = sa.select(SendLimit.next_at).where(SendLimit.name == RATE)


def free_from(session: Session, now: float) -> float:
    """Without a rate: the first moment requests may go, ``now`` unless a "slow down" moved
    the timeline past it. Only a read (commits): with nothing to reserve, a write per chunk
    cost the main thread a statement and a commit for nothing."""
    moment = session.connection().execute(FREE_FROM).scalar()
    session.commit()
    return max(float(moment or 0.0), now)


def hold_off(session: Session, until: float) -> None:
    """No process sends before ``until`` (a provider asked us to wait; commits)."""
    statement = sa.update(SendLimit).where(SendLimit.name == RATE).values(next_at=_later(until))
    if not session.execute(statement).rowcount:  # type: ignore[attr-defined]
        session.rollback()
        ensure_rows(session)  # made on first use
        session.execute(statement)
    session.commit()


@dataclass(frozen=True)
class Allowance:
    """What the daily quota allows now: ``granted`` e-mails (spent as ``spend_id``), and
    when it frees up again if that is fewer than asked for."""

    granted: int
    spend_id: int | None = None
    frees_at: datetime | None = None


def take_quota(session: Session, wanted: int, quota: int | None, now: datetime) -> Allowance:
    """Spend up to ``wanted`` e-mails of the rolling 24-hour ``quota`` (commits)."""
    if quota is None or wanted <= 0:
        return Allowance(wanted)
    locked = session.execute(
        sa.update(SendLimit).where(SendLimit.name == QUOTA).values(next_at=SendLimit.next_at)
    ).rowcount  # type: ignore[attr-defined]
    if not locked:
        session.rollback()
        ensure_rows(session)
        return take_quota(session, wanted, quota, now)
    since = now - WINDOW
    session.execute(sa.delete(SendSpend).where(SendSpend.at <= since))
    used = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(SendSpend.amount), 0)).where(SendSpend.at > since)
    )
    granted = max(0, min(wanted, quota - int(used or 0)))
    spend_id = None
    if granted:
        spend_id = session.scalar(
            sa.insert(SendSpend).values(at=now, amount=granted).returning(SendSpend.id)
        )
    frees_at = None
    if granted < wanted:
        oldest = session.scalar(
            sa.select(sa.func.min(SendSpend.at)).where(SendSpend.at > since, SendSpend.amount > 0)
        )
        frees_at = (oldest or now) + WINDOW
    session.commit()
    return Allowance(granted, spend_id, frees_at)


def give_back(session: Session, spend_id: int | None, amount: int) -> None:
    """E-mails of a spend that never reached the provider (the caller commits)."""
    if spend_id is not None and amount > 0:
        session.execute(
            sa.update(SendSpend)
            .where(SendSpend.id == spend_id)
            .values(amount=SendSpend.amount - amount)
        )
