"""The rules of sending, free of any database session: which deliveries still need sending,
and what one send's result means for its delivery and its batch entry.

The clauses are SQL expressions (the attempts cap lives in SQL, so a retry can never
exceed it whoever runs it); ``judge`` is plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dashboard.dispatch.models import Delivery, DeliveryStatus, ErrorKind, Outcome
from dashboard.dispatch.settings import DispatchSettings
from dashboard.dispatch.transports import SendResult


def retryable(max_attempts: int, as_of: datetime | None = None) -> sa.ColumnElement[bool]:
    """A transient failure still under the attempts cap (due by ``as_of`` when given)."""
    clause = sa.and_(
        Delivery.status == DeliveryStatus.FAILED,
        Delivery.error_kind == ErrorKind.TRANSIENT,
        Delivery.attempts < max_attempts,
        Delivery.next_attempt_at.is_not(None),
    )
    if as_of is not None:
        clause = sa.and_(clause, Delivery.next_attempt_at <= as_of)
    return clause


def needs_sending(max_attempts: int, as_of: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(Delivery.status == DeliveryStatus.PENDING, retryable(max_attempts, as_of))


def only(delivery_id: int) -> sa.ColumnElement[bool]:
    """A single re-send (the row was made pending on purpose); once sent it leaves the scope."""
    return sa.and_(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)


def passes(
    max_attempts: int, as_of: datetime, only_delivery: int | None = None
) -> list[sa.ColumnElement[bool]]:
    """``needs_sending`` as OR-free parts, walked one after the other.

    ``pending OR retryable`` in one keyset query makes SQLite merge two indexes and sort
    every remaining row for each chunk (O(n) a chunk, O(n²) a batch); each part alone
    walks the (message_id, status, id) index and stops after one chunk.
    """
    if only_delivery is not None:
        return [only(only_delivery)]
    return [Delivery.status == DeliveryStatus.PENDING, retryable(max_attempts, as_of)]


def scope(max_attempts: int, as_of: datetime, only_delivery: int | None) -> sa.ColumnElement[bool]:
    return only(only_delivery) if only_delivery is not None else needs_sending(max_attempts, as_of)


@dataclass(frozen=True)
class Skip:
    """Not sent, on purpose (the guest unsubscribed meanwhile, say)."""

    reason: str


@dataclass(frozen=True)
class Verdict:
    """What one recipient's result writes: the delivery's new values and the batch entry."""

    outcome: Outcome
    reason: str | None
    delivery: dict[str, Any] = field(default_factory=dict)
    error_kind: ErrorKind | None = None

    @property
    def counter(self) -> str:
        """The batch counter it adds to: ``sent``, ``failed``, ``cancelled`` or ``skipped``."""
        counters = {Outcome.SENT: "sent", Outcome.FAILED: "failed", Outcome.CANCELLED: "cancelled"}
        return counters.get(self.outcome, "skipped")


def judge(
    result: SendResult | Skip, attempts: int, settings: DispatchSettings, now: datetime
) -> Verdict:
    """The outcome of one send given the delivery's attempts so far.

    A dry run leaves the delivery pending (marked ``dry_run``), so that once dry run is off
    the same rows are sent for real; only the batch entry records what would have happened.
    """
    if isinstance(result, Skip):
        return Verdict(
            Outcome.SKIPPED,
            result.reason,
            {
                "status": DeliveryStatus.SKIPPED,
                "dry_run": False,
                "last_error": result.reason,
                "next_attempt_at": None,
            },
        )
    if result.dry_run:
        return Verdict(
            Outcome.DRY_RUN,
            result.error,
            {"status": DeliveryStatus.PENDING, "dry_run": True, "next_attempt_at": None},
        )
    tries = attempts + 1
    if result.ok:
        return Verdict(
            Outcome.SENT,
            None,
            {
                "status": DeliveryStatus.SENT,
                "dry_run": False,
                "attempts": tries,
                "sent_at": now,
                "provider_message_id": result.provider_id,
                "last_error": None,
                "error_kind": None,
                "next_attempt_at": None,
            },
        )
    return _failure(result, tries, settings, now)


def _failure(result: SendResult, tries: int, settings: DispatchSettings, now: datetime) -> Verdict:
    retry_at = None
    reason = result.error or "unknown error"
    if result.kind is ErrorKind.TRANSIENT:
        cap = settings.max_attempts
        if tries < cap:
            retry_at = now + settings.backoff(tries)
            reason = f"{reason} (attempt {tries} of {cap}; retrying)"
        elif tries == cap:
            reason = f"{reason} (attempt {tries} of {cap}; giving up)"
        else:  # a host's retry after the automatic attempts were used up
            reason = f"{reason} (attempt {tries}, a retry on request; not retried automatically)"
    return Verdict(
        Outcome.FAILED,
        reason,
        {
            "status": DeliveryStatus.FAILED,
            "dry_run": False,
            "attempts": tries,
            "last_error": result.error,
            "error_kind": result.kind,
            "next_attempt_at": retry_at,
        },
        error_kind=result.kind,
    )
