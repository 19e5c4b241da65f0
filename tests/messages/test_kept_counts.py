"""The live recipient count reads the event's kept counts (``guest_counts``, maintained by
triggers in the transaction of every guest write) and stays exact: after every kind of
guest write, and under concurrent RSVP changes, on both engines."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.events.models import Guest, RsvpStatus
from dashboard.extensions import db
from dashboard.messages.audience import count_recipients, count_recipients_live
from dashboard.messages.models import Audience
from dashboard.suppressions.models import Suppression, SuppressionKind
from tests.helpers import bulk_guests, counted_statements


def assert_exact(event_id: int) -> None:
    for audience in Audience:
        kept = count_recipients(db.session, event_id, audience)
        assert kept == count_recipients_live(db.session, event_id, audience), audience


def test_every_kind_of_guest_write_keeps_the_count_exact(app, make_event, make_guests, now):
    event, other = make_event(), make_event()
    make_guests(other, 3, RsvpStatus.ATTENDING)
    make_guests(event, 6, RsvpStatus.ATTENDING)
    make_guests(event, 4, RsvpStatus.DECLINED, prefix="no")
    make_guests(event, 2, RsvpStatus.MAYBE, prefix="gone", unsubscribed=True)
    bulk_guests(event.id, 5, email="bulk{i}@example.org")  # one multi-row INSERT
    odd = ["no-at-sign", "two@at@example.org", "space in@example.org", "tab\t@example.org",
           'quote"@example.org', "", "semi;colon@example.org"]  # fmt: skip
    for i, email in enumerate(odd):
        db.session.add(Guest(event_id=event.id, name=f"Odd {i}", email=email, email_key=f"odd{i}"))
    db.session.commit()
    assert_exact(event.id)
    assert count_recipients(db.session, event.id, Audience.EVERYONE).in_audience == 24

    guests = list(db.session.scalars(sa.select(Guest).where(Guest.event_id == event.id)))
    guests[0].rsvp_status = RsvpStatus.DECLINED  # the RSVP page
    guests[1].unsubscribed_at = now  # unsubscribe
    guests[2].removed_at = now  # removal ...
    guests[3].email = "broken"  # an address edited
    guests[12].unsubscribed_at = None  # subscribed again
    db.session.commit()
    assert_exact(event.id)
    guests[2].removed_at = None  # ... and restore
    guests[3].email = "fixed@example.org"
    db.session.commit()
    assert_exact(event.id)

    # Set-based writes (the API's bulk changes, imports) and deletes go through the triggers.
    db.session.execute(
        sa.update(Guest)
        .where(Guest.event_id == event.id, Guest.rsvp_status == RsvpStatus.PENDING)
        .values(rsvp_status=RsvpStatus.ATTENDING)
    )
    db.session.execute(sa.delete(Guest).where(Guest.id == guests[4].id))
    db.session.commit()
    assert_exact(event.id)

    # The suppression list: added and lifted without touching the guests.
    db.session.add(
        Suppression(
            email=guests[5].email,
            email_key=guests[5].email_key,
            kind=SuppressionKind.HARD_BOUNCE,
            reason="hard bounce",
            source="test",
        )
    )
    db.session.commit()
    assert_exact(event.id)
    assert count_recipients(db.session, event.id, Audience.EVERYONE).suppressed == 1
    db.session.execute(sa.delete(Suppression))
    db.session.commit()
    assert_exact(event.id)
    assert_exact(other.id)


def test_the_count_reads_no_guest_rows_but_the_suppressed(app, make_event):
    """The count is flat in the guests: it never aggregates them (only the suppression list
    is joined to them, by address)."""
    event = make_event()
    bulk_guests(event.id, 300)
    db.session.commit()
    with counted_statements() as statements:
        count = count_recipients(db.session, event.id, Audience.ATTENDING)
    assert count.in_audience == 0
    reads_guests = [s for s in statements if "guests" in s]
    assert all("FROM suppressions" in s and "EXISTS" in s for s in reads_guests), statements
    assert count_recipients(db.session, event.id, Audience.EVERYONE).will_receive == 300


def test_concurrent_rsvp_changes_add_up_exactly(app, make_event, make_guests):
    """Threads in their own sessions flip RSVPs both ways at once (a change attending to
    declined crosses one declined to attending): no change is lost, none deadlocks."""
    event = make_event()
    attending = [g.id for g in make_guests(event, 40, RsvpStatus.ATTENDING)]
    declined = [g.id for g in make_guests(event, 40, RsvpStatus.DECLINED, prefix="no")]
    engine = db.engine
    errors: list[BaseException] = []

    def flip(ids: list[int], to: RsvpStatus, back: RsvpStatus) -> None:
        try:
            for round_ in range(3):
                for guest_id in ids:
                    with Session(engine) as session:
                        session.execute(
                            sa.update(Guest)
                            .where(Guest.id == guest_id)
                            .values(rsvp_status=to if round_ % 2 == 0 else back)
                        )
                        session.commit()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [
        threading.Thread(target=flip, args=(attending[:20], RsvpStatus.DECLINED, RsvpStatus.ATTENDING)),
        threading.Thread(target=flip, args=(declined[:20], RsvpStatus.ATTENDING, RsvpStatus.DECLINED)),
        threading.Thread(target=flip, args=(attending[20:], RsvpStatus.MAYBE, RsvpStatus.ATTENDING)),
        threading.Thread(target=flip, args=(declined[20:], RsvpStatus.ATTENDING, RsvpStatus.DECLINED)),
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    db.session.expire_all()
    assert_exact(event.id)
    # Three rounds (there, back, there): each guest ends on its first flip.
    count = count_recipients(db.session, event.id, Audience.ATTENDING)
    assert count.in_audience == 40  # 20 + 20 who were declined
