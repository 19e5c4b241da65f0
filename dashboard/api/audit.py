"""The audit log of an event over JSON: who changed what, newest first."""

from __future__ import annotations

from flask_login import current_user

from dashboard.api import bp, load_query
from dashboard.api.inputs import AuditQuery
from dashboard.api.openapi import operation
from dashboard.api.schemas import AuditPage
from dashboard.audit.queries import event_log
from dashboard.events.access import get_event_for
from dashboard.extensions import db
from dashboard.web import paginate


@bp.get("/events/<int:event_id>/audit")
@operation(ok=AuditPage, tag="audit", query=AuditQuery)
def event_audit(event_id: int) -> AuditPage:
    """Every recorded change of an event, its guests, messages and batches, newest first.

    `message_id` keeps the entries of one message and its batches (also of a message
    deleted since).
    """
    event = get_event_for(db.session, current_user, event_id)
    query = load_query(AuditQuery)
    stmt = event_log(event.id, query.message_id)
    return AuditPage.model_validate(paginate(stmt, query.page, query.per_page))
