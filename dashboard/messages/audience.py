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
from dashboard.events.models import Guest, GuestCount, RsvpStatus
from dashboard.messages.models import Audience
from dashboard.suppressions.models import Suppression

REASON_UNSUBSCRIBED = "unsubscribed"
#: Why a delivery made before its guest was removed is not sent.
REASON_REMOVED = "removed from the guest list"
#: What the reason of a guest whose address is on the suppression list starts with.
SUPPRESSED = "suppressed: "


def in_audience(audience: Audience | str) -> sa.ColumnElement[bool]:
    audience = Audience(audience)
    listed = Guest.removed_at.is_(None)
    if audience is Audience.EVERYONE:
        return listed
    if audience is Audience.NOT_DECLINED:
        return sa.and_(listed, Guest.rsvp_status != RsvpStatus.DECLINED)
    return sa.and_(listed, Guest.rsvp_status == RsvpStatus(audience.value))


def receivable(channel: Channel = EMAIL) -> sa.ColumnElement[bool]:
    clause = sa.and_(Guest.unsubscribed_at.is_(None), channel.usable_address())
    suppressed = channel.suppression()
    return clause if suppressed is None else sa.and_(clause, suppressed.is_(None))


def skip_reason(channel: Channel = EMAIL) -> sa.Case[str]:
    """SQL CASE giving the skip reason for a guest, or NULL when the guest can receive."""
    whens: list[tuple[sa.ColumnElement[bool], sa.ColumnElement[str]]] = [
        (Guest.unsubscribed_at.is_not(None), sa.literal(REASON_UNSUBSCRIBED)),
        (~channel.usable_address(), sa.literal(channel.no_address_reason)),
    ]
    suppressed = channel.suppression()
    if suppressed is not None:  # "suppressed: hard bounce on 2 Dec, 550 5.1.1 ..."
        whens.append((suppressed.is_not(None), sa.literal(SUPPRESSED) + suppressed))
    return sa.case(*whens, else_=sa.null())


def audience_guests(event_id: int, audience: Audience | str) -> sa.Select[tuple[Guest]]:
    return sa.select(Guest).where(Guest.event_id == event_id, in_audience(audience))


@dataclass(frozen=True)
class RecipientCount:
    audience: Audience
    in_audience: int
    will_receive: int
    unsubscribed: int
    no_address: int
    #: Reachable but on the suppression list (hard bounces, complaints).
    suppressed: int = 0

    @property
    def left_out(self) -> int:
        return self.in_audience - self.will_receive

    def who(self) -> str:
        """The recipients in words: "51 attending guests", "all 3 guests", "1 guest who has
        not declined"."""
        n = self.will_receive
        guests = "guest" if n == 1 else "guests"
        if self.audience is Audience.EVERYONE:
            return f"all {n} {guests}" if n > 1 else f"{n} {guests}"
        if self.audience is Audience.NOT_DECLINED:
            return f"{n} {guests} who {'has' if n == 1 else 'have'} not declined"
        return f"{n} {self.audience.value} {guests}"

    def left_out_text(self) -> str:
        """Who the audience holds but the message would not reach, and why ("" if nobody)."""
        reasons = self._left_out_reasons()
        if not reasons:
            return ""
        verb = "is" if self.left_out == 1 else "are"
        return (
            f"{' and '.join(reasons) if len(reasons) < 3 else ', '.join(reasons)} {verb} left out."
        )

    def send_question(self, subject: str) -> str:
        """The confirmation of a send now: what goes to whom, and who is left out."""
        return f"Send “{subject}” {self.send_question_end()}"

    def send_question_end(self) -> str:
        """The confirmation after the subject (the compose form puts the subject in front)."""
        nobody = self.nobody()
        if nobody:
            return f"now? {nobody}"
        left_out = self.left_out_text()
        return f"to {self.who()} now?" + (f" {left_out}" if left_out else "")

    def nobody(self) -> str | None:
        """Why nobody would receive it, with the counts of those left out; None if someone would."""
        if self.will_receive:
            return None
        if not self.in_audience:
            return f"No guest would receive this: the audience “{self.audience.label}” is empty."
        return f"No guest would receive this: {', '.join(self._left_out_reasons())}."

    def _left_out_reasons(self) -> list[str]:
        counted = (
            (self.unsubscribed, "unsubscribed"),
            (self.no_address, "without a usable address"),
            (self.suppressed, "suppressed (bounced or complained)"),
        )
        return [f"{n} {why}" for n, why in counted if n]


def count_recipients(
    session: Session, event_id: int, audience: Audience | str, channel: Channel = EMAIL
) -> RecipientCount:
    """The live count. For e-mail it reads the event's kept counts (``GuestCount``, a few
    rows) and joins the suppression list to the event's guests by address; other channels
    aggregate the guests (``count_recipients_live``)."""
    if channel is not EMAIL:
        return count_recipients_live(session, event_id, audience, channel)
    audience = Audience(audience)
    kinds = dict(
        session.execute(
            sa.select(GuestCount.kind, sa.func.sum(GuestCount.n))
            .where(GuestCount.event_id == event_id, _counted_audience(audience))
            .group_by(GuestCount.kind)
        ).all()
    )
    reachable, unsubscribed = int(kinds.get("reachable") or 0), int(kinds.get("unsubscribed") or 0)
    no_address = int(kinds.get("no_address") or 0)
    # Driven from the list, each address looked up among the event's guests through the
    # (event_id, email_key) unique index: as many look-ups as addresses on the list, never
    # a pass over the guests (a join lets the planner start from the guests instead).
    on_list = sa.exists().where(
        Guest.event_id == event_id,
        Guest.email_key == Suppression.email_key,
        in_audience(audience),
        Guest.unsubscribed_at.is_(None),
        channel.usable_address(),
    )
    suppressed = session.scalar(sa.select(sa.func.count()).select_from(Suppression).where(on_list))
    suppressed = int(suppressed or 0)
    return RecipientCount(
        audience,
        reachable + unsubscribed + no_address,
        reachable - suppressed,
        unsubscribed,
        no_address,
        suppressed,
    )


def _counted_audience(audience: Audience) -> sa.ColumnElement[bool]:
    """``in_audience`` over the kept counts (a removed guest is in no audience)."""
    listed = GuestCount.kind != "removed"
    if audience is Audience.EVERYONE:
        return listed
    if audience is Audience.NOT_DECLINED:
        return sa.and_(listed, GuestCount.rsvp_status != RsvpStatus.DECLINED.value)
    return sa.and_(listed, GuestCount.rsvp_status == RsvpStatus(audience.value).value)


def count_recipients_live(
    session: Session, event_id: int, audience: Audience | str, channel: Channel = EMAIL
) -> RecipientCount:
    """One aggregate query over the event's guests (linear in them)."""
    audience = Audience(audience)
    unsub = Guest.unsubscribed_at.is_not(None)
    reachable = sa.and_(~unsub, channel.usable_address())
    suppressed = channel.suppression()
    on_list = sa.false() if suppressed is None else suppressed.is_not(None)
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(receivable(channel)),
            sa.func.count().filter(unsub),
            sa.func.count().filter(sa.and_(~unsub, ~channel.usable_address())),
            sa.func.count().filter(sa.and_(reachable, on_list)),
        ).where(Guest.event_id == event_id, in_audience(audience))
    ).one()
    return RecipientCount(audience, row[0], row[1], row[2], row[3], row[4])


def sample_guest(
    session: Session, event_id: int, audience: Audience | str, channel: Channel = EMAIL
) -> Guest | None:
    """A real guest who would receive the message, for the preview."""
    return session.scalar(
        audience_guests(event_id, audience).where(receivable(channel)).order_by(Guest.id).limit(1)
    )
