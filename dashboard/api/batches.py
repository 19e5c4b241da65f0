"""JSON API of the batch logs: a message's batches, one batch, its entries, retry failed.

Registered on the one API blueprint by importing this module (see ``dashboard/api``), whose
before_request authenticates every call (session or Bearer token, else 401) and checks the
CSRF token of session writes. Each view resolves the batch through an event the caller may
see (else 404, invariant 11).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, url_for
from flask_login import current_user

from dashboard.api import bp, load_query
from dashboard.api.inputs import (
    EntryQuery,
    Paging,
    RetryQuery,
)
from dashboard.api.openapi import operation
from dashboard.api.schemas import (
    Batch,
    BatchDetail,
    BatchPage,
    Derived,
    EntryPage,
)
from dashboard.audit.current import current_actor
from dashboard.db_types import utcnow
from dashboard.dispatch import scheduler, services
from dashboard.dispatch.models import Batch as BatchRow
from dashboard.dispatch.queries import batch_entries, message_of_event, visible_batch
from dashboard.events.access import get_event_for
from dashboard.events.models import Role
from dashboard.extensions import db
from dashboard.web import MAX_SEARCH, Page, paginate


@bp.get("/events/<int:event_id>/messages/<int:message_id>/batches")
@operation(ok=BatchPage, tag="batches", query=Paging)
def message_batches(event_id: int, message_id: int) -> BatchPage:
    """The batches of a message, newest first."""
    event = get_event_for(db.session, current_user, event_id)
    message = message_of_event(db.session, event, message_id)
    paging = load_query(Paging)
    stmt = sa.select(BatchRow).where(BatchRow.message_id == message.id).order_by(BatchRow.id.desc())
    page = paginate(stmt, paging.page, paging.per_page)
    return BatchPage.model_validate(page, context={"now": utcnow()})


@bp.get("/batches/<int:batch_id>")
@operation(ok=BatchDetail, tag="batches")
def batch_show(batch_id: int) -> BatchDetail:
    """One batch: who started it, status and counts."""
    batch, event = visible_batch(db.session, current_user, batch_id)
    return BatchDetail.model_validate(Derived(batch, event_id=event.id), context={"now": utcnow()})


@bp.get("/batches/<int:batch_id>/entries")
@operation(ok=EntryPage, tag="batches", query=EntryQuery)
def batch_entries_list(batch_id: int) -> EntryPage:
    """What the batch did to each recipient, in processing order.

    `status` filters by outcome, `q` searches the guest's name or e-mail.
    """
    batch, _event = visible_batch(db.session, current_user, batch_id)
    query = load_query(EntryQuery)
    search = query.q.strip()[:MAX_SEARCH]
    offset = (query.page - 1) * query.per_page
    rows, total = batch_entries(
        db.session, batch.id, query.status, search, limit=query.per_page, offset=offset
    )
    return EntryPage.model_validate(Page(rows, query.page, query.per_page, total))


@bp.post("/events/<int:event_id>/messages/<int:message_id>/retry-failed")
@operation(ok=Batch, status=202, tag="batches", errors=(400, 401, 403, 404, 409), query=RetryQuery)
def message_retry_failed(event_id: int, message_id: int) -> tuple[Batch, int, dict[str, str]]:
    """Send a message again to its failed recipients; editor or owner.

    Queues a retry batch over the temporary failures (with ``?permanent=true`` the
    permanent ones too), reusing their rows; recipients who got the message are never sent
    it again. 409 when nothing of that kind failed, a batch is still running, or the
    message changed. With a session cookie, send the X-CSRFToken header.
    """
    event = get_event_for(db.session, current_user, event_id, Role.EDITOR)
    message = message_of_event(db.session, event, message_id)
    retry = load_query(RetryQuery)
    batch = services.retry_failed(
        db.session, message, current_actor(), utcnow(), permanent=retry.permanent
    )
    db.session.commit()
    scheduler.wake(current_app._get_current_object())  # type: ignore[attr-defined]
    location = url_for("api.batch_show", batch_id=batch.id)
    return Batch.model_validate(batch, context={"now": utcnow()}), 202, {"Location": location}
