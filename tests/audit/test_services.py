"""The audit log's writer: one entry in the caller's transaction, with its actor."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import SCHEDULER, Actor, record
from dashboard.extensions import db


def test_an_entry_names_its_actor_and_is_committed_with_the_change(app, owner, now):
    record(
        db.session,
        Actor.of(owner, token_name="ci"),
        "message.cancel",
        now=now,
        event_id=3,
        message_id=7,
        details={"affected": 2},
    )
    db.session.rollback()  # not committed: nothing written
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0

    record(db.session, Actor.cli("dispatch retry-failed", owner), "batch.queue", now=now)
    record(db.session, SCHEDULER, "message.overdue", now=now, message_id=7)
    db.session.commit()
    rows = db.session.execute(sa.select(AuditEntry.actor, AuditEntry.actor_user_id)).all()
    assert sorted(rows, key=str) == sorted(
        [("cli:dispatch retry-failed as owner@example.com", owner.id), ("scheduler", None)],
        key=str,
    )
    assert Actor.of(owner, token_name="ci").label == "owner@example.com (token ci)"
    assert Actor.cli("logs cleanup").label.startswith("cli:logs cleanup (")
