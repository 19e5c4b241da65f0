"""Who a message reaches. The live count, the preview and dispatch all use these functions.

Whether a guest can be reached at all is the channel's rule (its address column and what
makes an address usable); being in the audience is the message's, and a guest removed from
the list is in no audience.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.dispatch.channels import EMAIL, Channel
from dashboard.events.models import Guest, RsvpStatus
from dashboard.messages.models import Audience

REASON_UNSUBSCRIBED = "unsubscribed"
#: Why a delivery made before its guest was removed is not sent.
REASON_REMOVED = "removed from the guest list"


def in_audience(audience: Audience | str) -> sa.ColumnElement[bool]:
    audience = Audience(audience)
    listed = Guest.removed_at.is_(None)
    if audience is Audience.EVERYONE:
        return listed
    if audience is Audience.NOT_DECLINED:
        return sa.and_(listed, Guest.rsvp_status != RsvpStatus.DECLINED)
    return sa.and_(listed, Guest.rsvp_status == RsvpStatus(audience.value))


def receivable(channel: Channel = EMAIL) -> sa.ColumnElement[bool]:
    return sa.and_(Guest.unsubscribed_at.is_(None), channel.usable_address())


def skip_reason(channel: Channel = EMAIL) -> sa.Case[str]:
    """SQL CASE giving the skip reason for a guest, or NULL when the guest can receive."""
    return sa.case(
        (Guest.unsubscribed_at.is_not(None), sa.literal(REASON_UNSUBSCRIBED)),
        (~channel.usable_address(), sa.literal(channel.no_address_reason)),
        else_=sa.null(),
    )


def audience_guests(event_id: int, audience: Audience | str) -> sa.Select[tuple[Guest]]:
    return sa.select(Guest).where(Guest.event_id == event_id, in_audience(audience))


@dataclass(frozen=True)
class RecipientCount:
    audience: Audience
    in_audience: int
    will_receive: int
    unsubscribed: int
    no_address: int

    @property
    def left_out(self) -> int:
        return self.in_audience - self.will_receive

    def nobody(self) -> str | None:
        """Why nobody would receive it, with the counts of those left out; None if someone would."""
        if self.will_receive:
            return None
        if not self.in_audience:
            return f"No guest would receive this: the audience “{self.audience.label}” is empty."
        reasons = []
        if self.unsubscribed:
            reasons.append(f"{self.unsubscribed} unsubscribed")
        if self.no_address:
            reasons.append(f"{self.no_address} without a usable address")
        return f"No guest would receive this: {', '.join(reasons)}."


def count_recipients(
    session: Session, event_id: int, audience: Audience | str, channel: Channel = EMAIL
) -> RecipientCount:
    """One aggregate query over the (event_id, rsvp_status) index."""
    audience = Audience(audience)
    unsub = Guest.unsubscribed_at.is_not(None)
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(receivable(channel)),
            sa.func.count().filter(unsub),
            sa.func.count().filter(sa.and_(~unsub, ~channel.usable_address())),
        ).where(Guest.event_id == event_id, in_audience(audience))
    ).one()
    return RecipientCount(audience, row[0], row[1], row[2], row[3])


def sample_guest(
    session: Session, event_id: int, audience: Audience | str, channel: Channel = EMAIL
) -> Guest | None:
    """A real guest who would receive the message, for the preview."""
    return session.scalar(
        audience_guests(event_id, audience).where(receivable(channel)).order_by(Guest.id).limit(1)
    )
