"""Bulk test data with set-based SQL: a recursive CTE is SQLite's generate_series.

Rows are written the way the application stores them (enum values as text, naive UTC
timestamps, booleans as 0/1), so the pages read them exactly as they read real ones.
Everything runs inside an app context on ``db.session``; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.common import ADMIN_EMAIL, ADMIN_PASSWORD
from dashboard.audit.services import Actor
from dashboard.auth.models import User
from dashboard.auth.services import create_user
from dashboard.events.models import Event
from dashboard.events.services import create_event
from dashboard.messages.models import Audience, Message, MessageStatus

SUBJECT = "{{guest_name}}, your invitation to {{event_name}}"

#: About 1 KB once rendered, every placeholder used, a few non-ASCII characters.
BODY = """Dear {{guest_name}},

We are delighted to invite you to {{event_name}}, which takes place on {{event_date}}
at {{venue}}. Doors open thirty minutes before the programme starts; please bring this
e-mail or your name so that the team at the entrance can find you on the list quickly.

The evening begins with a short welcome, followed by dinner, a few words from our
hosts and music until late. There is a cloakroom, step-free access to every room and a
quiet room for anyone who needs a break. Vegetarian and vegan dishes are served by
default; tell us about any allergy when you answer and the kitchen will take care of it.

Please let us know whether you can come, and how many seats to keep, by answering here:
{{rsvp_link}}

You can change your answer at any time with the same link. If your plans change on the
day itself, a short note is enough; we would rather keep your seat for someone else
than leave it empty. Café, crèche and parking details follow in a separate message.

We look forward to seeing you at {{event_name}}.

Warm regards,
The organising team

You receive this e-mail because you are on the guest list of {{event_name}}.
Unsubscribe with one click: {{unsubscribe_link}}
"""

RSVP_CYCLE = ("attending", "pending", "declined", "maybe")


def sql_time(value: datetime) -> str:
    """How SQLAlchemy stores a UTCDateTime on SQLite (naive UTC, microseconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def series(n_param: str = "n") -> str:
    """A recursive CTE yielding i = 1..:n (SQLite has no generate_series built in)."""
    return (
        f"WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :{n_param}) "
    )


def admin_user(session: Session) -> User:
    user = session.scalar(sa.select(User).where(User.email == ADMIN_EMAIL))
    if user is None:
        user = create_user(session, ADMIN_EMAIL, ADMIN_PASSWORD, name="Bench Admin", is_admin=True)
    return user


def new_event(session: Session, owner: User, now: datetime, name: str = "Bench Gala") -> Event:
    """Through the real service, so the event has its owner row and its four reminders."""
    return create_event(
        session,
        Actor.cli("bench", owner),
        name=name,
        starts_at=now + timedelta(days=30),
        timezone="Europe/Berlin",
        venue="Grand Hall, Königsallee 1",
        now=now,
    )


def add_guests(session: Session, event_id: int, n: int, now: datetime) -> None:
    """n guests in one INSERT ... SELECT; RSVP statuses cycle, every tenth name is not ASCII."""
    stamp = sql_time(now)
    session.execute(
        sa.text(
            "INSERT INTO guests (event_id, name, email, email_key, rsvp_status, token,"
            " unsubscribed_at, created_at, updated_at) " + series() + "SELECT :event_id,"
            " CASE WHEN i % 10 = 0 THEN 'Zoë Müller-' || i ELSE 'Guest Number ' || i END,"
            " 'guest' || i || '.e' || :event_id || '@example.org',"
            " 'guest' || i || '.e' || :event_id || '@example.org',"
            " CASE i % 4 WHEN 0 THEN 'attending' WHEN 1 THEN 'pending'"
            " WHEN 2 THEN 'declined' ELSE 'maybe' END,"
            " lower(hex(randomblob(16))), NULL, :now, :now FROM seq"
        ),
        {"event_id": event_id, "n": n, "now": stamp},
    )


def due_message(
    session: Session,
    event: Event,
    owner: User,
    now: datetime,
    audience: Audience = Audience.EVERYONE,
) -> Message:
    """Due a second ago, with the calendar invitation on (as the auto-reminders have it)."""
    message = Message(
        event_id=event.id,
        audience=audience,
        subject=SUBJECT,
        body=BODY,
        attach_calendar=True,
        status=MessageStatus.SCHEDULED,
        send_at=now - timedelta(seconds=1),
        created_by_id=owner.id,
    )
    session.add(message)
    session.flush()
    return message


@dataclass(frozen=True)
class History:
    """What ``add_sent_history`` made: the message and batch with many failed entries."""

    message_ids: list[int]
    failing_message_id: int
    failing_batch_id: int


def add_sent_history(
    session: Session,
    event_id: int,
    owner_id: int,
    n_messages: int,
    now: datetime,
) -> History:
    """n_messages sent messages to every guest of the event: deliveries, one batch each, entries.

    The first message's batch failed for 2 in 5 of its recipients (a relay outage), the
    others for 1 in 200, so "page 50 of the batch filtered to failed" exists.
    """
    message_ids: list[int] = []
    batch_ids: list[int] = []
    for k in range(n_messages):
        sent_at = now - timedelta(days=n_messages - k)
        stamp = sql_time(sent_at)
        message_id = session.execute(
            sa.text(
                "INSERT INTO messages (event_id, kind, audience, channel, subject, body, status,"
                " send_at, created_by_id, created_at, updated_at)"
                " VALUES (:event_id, 'custom', 'everyone', 'email', :subject, :body, :status,"
                " :t, :owner, :t, :t) RETURNING id"
            ),
            {
                "event_id": event_id,
                "subject": f"Update {k + 1} for {{{{guest_name}}}}",
                "body": BODY,
                "status": "sent_with_failures",
                "t": stamp,
                "owner": owner_id,
            },
        ).scalar_one()
        # Failed when guest id % m < below.
        modulo, below = (5, 2) if k == 0 else (200, 1)
        session.execute(
            sa.text(
                "INSERT INTO deliveries (message_id, guest_id, name, email, status, dry_run,"
                " attempts, last_error, error_kind, next_attempt_at, provider_message_id, sent_at,"
                " created_at, updated_at) "
                "SELECT :message_id, g.id, g.name, g.email,"
                " CASE WHEN g.id % :m < :below THEN 'failed' ELSE 'sent' END, 0, 1,"
                " CASE WHEN g.id % :m < :below THEN '550 5.1.1 mailbox unavailable' END,"
                " CASE WHEN g.id % :m < :below THEN 'permanent' END, NULL,"
                " CASE WHEN g.id % :m < :below THEN NULL"
                " ELSE '<delivery-' || g.id || '.message-' || :message_id || '@events.example.org>' END,"
                " CASE WHEN g.id % :m < :below THEN NULL ELSE :t END, :t, :t "
                "FROM guests g WHERE g.event_id = :event_id ORDER BY g.id"
            ),
            {
                "message_id": message_id,
                "m": modulo,
                "below": below,
                "t": stamp,
                "event_id": event_id,
            },
        )
        counts = dict(
            session.execute(
                sa.text(
                    "SELECT status, count(*) FROM deliveries WHERE message_id = :message_id"
                    " GROUP BY status"
                ),
                {"message_id": message_id},
            ).all()
        )
        sent, failed = counts.get("sent", 0), counts.get("failed", 0)
        # As the dispatcher does when a message finishes: it keeps its final figures.
        session.execute(
            sa.text(
                "UPDATE messages SET final_total = :total, final_sent = :sent,"
                " final_failed = :failed, final_skipped = 0 WHERE id = :message_id"
            ),
            {"message_id": message_id, "total": sent + failed, "sent": sent, "failed": failed},
        )
        batch_id = session.execute(
            sa.text(
                "INSERT INTO batches (message_id, trigger, initiated_label, status, dry_run, total,"
                " sent, failed, skipped, worker, started_at, heartbeat_at, finished_at, error)"
                " VALUES (:message_id, 'schedule', 'scheduler', 'completed_with_failures', 0,"
                " :total, :sent, :failed, 0, 'bench', :t, :t, :t, NULL) RETURNING id"
            ),
            {
                "message_id": message_id,
                "total": sent + failed,
                "sent": sent,
                "failed": failed,
                "t": stamp,
            },
        ).scalar_one()
        session.execute(
            sa.text(
                "INSERT INTO batch_entries (batch_id, delivery_id, outcome, reason, error_kind,"
                " processed_at) "
                "SELECT :batch_id, d.id, d.status, d.last_error, d.error_kind, :t "
                "FROM deliveries d WHERE d.message_id = :message_id ORDER BY d.id"
            ),
            {"batch_id": batch_id, "message_id": message_id, "t": stamp},
        )
        message_ids.append(message_id)
        batch_ids.append(batch_id)
    return History(message_ids, message_ids[0], batch_ids[0])


def add_scheduled_messages(
    session: Session, event_ids: list[int], owner_id: int, n: int, now: datetime
) -> None:
    """n scheduled messages (send_at in the future), spread over ``event_ids`` (consecutive ids)."""
    assert sorted(event_ids) == list(range(min(event_ids), min(event_ids) + len(event_ids)))
    session.execute(
        sa.text(
            "INSERT INTO messages (event_id, kind, audience, channel, subject, body, status,"
            " send_at, created_by_id, created_at, updated_at) "
            + series()
            + "SELECT :first + (i % :events), 'custom', 'attending', 'email',"
            " 'Scheduled note ' || i, 'Hello {{guest_name}}', 'scheduled',"
            " strftime('%Y-%m-%d %H:%M:%S', :start, '+' || (i % 500000) || ' minutes') || '.000000',"
            " :owner, :now, :now FROM seq"
        ),
        {
            "first": min(event_ids),
            "events": len(event_ids),
            "n": n,
            "start": (now + timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "owner": owner_id,
            "now": sql_time(now),
        },
    )
