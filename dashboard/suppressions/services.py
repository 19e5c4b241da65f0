"""The suppression list: who adds to it (permanent refusals, provider webhooks), the rule the
e-mail channel asks of it, and lifting an address (an admin, audited).

Plain functions taking the session; the caller commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, record
from dashboard.database import insert_ignoring_duplicates
from dashboard.suppressions.models import Suppression, SuppressionKind

log = logging.getLogger(__name__)

#: What a skipped delivery's reason starts with.
PREFIX = "suppressed: "
MAX_DETAIL = 300


def key_for(email: str) -> str:
    """The same form as guests' ``email_key``: the list matches them column to column."""
    return email.strip().lower()


def reason_for(email_key: sa.ColumnElement[str]) -> sa.ScalarSelect[str]:
    """SQL: the suppression reason of the address whose key is ``email_key``, or NULL."""
    return (
        sa.select(Suppression.reason)
        .where(Suppression.email_key == email_key)
        .limit(1)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class Refusal:
    """An address a provider or a server refused for good, and what it said."""

    email: str
    kind: SuppressionKind
    detail: str
    source: str


def describe(kind: SuppressionKind, detail: str, at: datetime) -> str:
    """ "hard bounce on 2 Dec, 550 5.1.1 mailbox unavailable" (UTC: the list is site-wide)."""
    detail = " ".join(detail.split())[:MAX_DETAIL]
    when = f"{at.day} {at:%b}"
    return f"{kind.label} on {when}, {detail}" if detail else f"{kind.label} on {when}"


def suppress(session: Session, refusals: Iterable[Refusal], now: datetime) -> int:
    """Add the addresses not on the list yet (one INSERT ... ON CONFLICT DO NOTHING); an
    address already there keeps its first reason. How many rows were offered."""
    rows = {
        key_for(item.email): {
            "email": item.email.strip()[:254],
            "email_key": key_for(item.email)[:254],
            "kind": item.kind,
            "reason": describe(item.kind, item.detail, now),
            "source": item.source[:40],
            "created_at": now,
        }
        for item in refusals
        if item.email.strip()
    }
    if rows:
        session.execute(
            insert_ignoring_duplicates(session, Suppression, ["email_key"]), list(rows.values())
        )
        log.info("suppressed %s address(es)", len(rows))
    return len(rows)


def search(query: str) -> sa.Select[tuple[Suppression]]:
    """The list, newest first, narrowed to addresses or reasons containing ``query``."""
    stmt = sa.select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc())
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern += "%"
        stmt = stmt.where(
            sa.or_(
                Suppression.email_key.like(pattern, escape="\\"),
                sa.func.lower(Suppression.reason).like(pattern, escape="\\"),
            )
        )
    return stmt


def lift(session: Session, actor: Actor, suppression_id: int, now: datetime) -> Suppression:
    """Take an address off the list (later sends reach it again); audited with what it was."""
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise LookupError("This address is not on the suppression list (any more).")
    record(
        session,
        actor,
        "suppression.lift",
        now=now,
        details={
            "email": row.email,
            "kind": row.kind,
            "reason": row.reason,
            "source": row.source,
            "suppressed_at": row.created_at,
        },
    )
    session.delete(row)
    return row
