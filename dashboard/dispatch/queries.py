"""Read-side figures for pages and the API: always SQL aggregates over the rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.dispatch.models import Delivery, DeliveryStatus


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


def message_counts(session: Session, message_ids: Iterable[int]) -> dict[int, Counts]:
    """Delivery figures per message (one GROUP BY over the (message_id, status) index)."""
    ids = list(message_ids)
    if not ids:
        return {}
    rows = session.execute(
        sa.select(Delivery.message_id, Delivery.status, sa.func.count())
        .where(Delivery.message_id.in_(ids))
        .group_by(Delivery.message_id, Delivery.status)
    ).all()
    raw: dict[int, dict[str, int]] = {mid: {} for mid in ids}
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
