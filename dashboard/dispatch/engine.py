"""The dispatcher: turns a claimed message into one e-mail per recipient and records every outcome.

The shape of a batch (seeds 000, 001, 003):

1. Resolve the audience into ``deliveries`` rows (one per message and guest, unique) with
   one INSERT ... SELECT; guests who cannot receive become ``skipped`` with the reason.
2. Walk the deliveries that still need sending in id order, ``commit_every`` at a time:
   claim the chunk (one conditional UPDATE), render, send over the pool, then record
   each recipient's outcome, the batch counters (atomic increments) and the lease
   heartbeat in one commit. A delivery is marked sent only after the transport
   accepted it. A hard crash can therefore repeat at most the one chunk that was sent
   but not yet committed.
3. Other dispatcher processes with nothing of their own to do join the batch
   (``help``): they claim and send chunks the same way and record them in the same
   batch. The owner walks again until no helper holds a claim, then finishes.
4. Finish in a clean transaction (rollback first, then UPDATE statements by id), so
   the state of a failed recipient can never stop the batch from being finalized.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.auth.models import User
from dashboard.database import insert_ignoring_duplicates
from dashboard.db_types import UTCDateTime, utcnow
from dashboard.dispatch import claim
from dashboard.dispatch.mime import MessageBuilder
from dashboard.dispatch.models import (
    Batch,
    BatchEntry,
    BatchStatus,
    BatchTrigger,
    Delivery,
    DeliveryStatus,
    ErrorKind,
    Outcome,
    SchedulerPoll,
)
from dashboard.dispatch.pool import SenderPool
from dashboard.dispatch.settings import DispatchSettings
from dashboard.dispatch.transports import OutgoingEmail, SendResult, Transport, Unreachable
from dashboard.errors import Conflict
from dashboard.events.models import Event, Guest
from dashboard.messages.audience import REASON_UNSUBSCRIBED, in_audience, skip_reason
from dashboard.messages.models import (
    FINISHED,
    Message,
    MessageStatus,
    check_transition,
)
from dashboard.messages.rendering import MessageRenderer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def retryable(max_attempts: int, as_of: datetime | None = None) -> sa.ColumnElement[bool]:
    """A transient failure still under the attempts cap (the cap lives in SQL, invariant 8)."""
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


@dataclass
class Skip:
    reason: str


@dataclass
class PollReport:
    recovered: int = 0
    batches: list[int] = field(default_factory=list)
    #: Batches of other processes this one helped send (a chunk or more of their work).
    helped: list[int] = field(default_factory=list)


#: How often a batch's owner looks again while helpers still hold claims on its rows.
HELPER_WAIT_SECONDS = 0.2


@dataclass
class _Work:
    """One process's part in one batch: the owner's (``leader``) or a helper's."""

    batch_id: int
    message_id: int
    leader: bool
    renderer: MessageRenderer
    builder: MessageBuilder
    pool: SenderPool
    tick: float
    processed: int = 0


class Dispatcher:
    """One dispatcher per process (or per CLI run). Only its thread touches the session."""

    def __init__(
        self,
        session: Session,
        settings: DispatchSettings,
        make_transport: Callable[[], Transport],
        owner: str,
        clock: Clock = utcnow,
    ):
        self.session = session
        self.settings = settings
        self.make_transport = make_transport
        self.owner = owner
        self.clock = clock

    # --- the poll ----------------------------------------------------------------------

    def poll(self, limit: int = 20) -> PollReport:
        """One pass: record the poll, recover stale batches, claim and send due work."""
        report = PollReport()
        self.record_poll()
        report.recovered = self.recover()
        now = self.clock()
        due = self.session.scalars(
            sa.select(Message.id)
            .where(Message.status == MessageStatus.SCHEDULED, Message.send_at <= now)
            .order_by(Message.send_at, Message.id)
            .limit(limit)
        ).all()
        for message_id in due:
            if claim.claim_due(self.session, message_id, self.owner, now):
                batch = self._new_batch(message_id, BatchTrigger.SCHEDULE, now)
                self.session.commit()
                self.run(message_id, batch.id)
                report.batches.append(batch.id)
            else:
                self.session.rollback()
        for message_id in self._in_flight(limit):
            batch_id = self.take_over(message_id)
            if batch_id is not None:
                self.run(message_id, batch_id)
                report.batches.append(batch_id)
        for batch_id, message_id in self._joinable(limit):
            if self.help(message_id, batch_id):
                report.helped.append(batch_id)
        return report

    def record_poll(self, error: str | None = None) -> None:
        now = self.clock()
        updated = self.session.execute(
            sa.update(SchedulerPoll)
            .where(SchedulerPoll.name == self.owner)
            .values(last_poll_at=now, last_error=error)
        ).rowcount
        if not updated:
            self.session.add(SchedulerPoll(name=self.owner, last_poll_at=now, last_error=error))
        self.session.commit()

    def _in_flight(self, limit: int) -> list[int]:
        now = self.clock()
        return list(
            self.session.scalars(
                sa.select(Message.id)
                .where(
                    Message.status == MessageStatus.SENDING,
                    sa.or_(Message.resume_at.is_(None), Message.resume_at <= now),
                    sa.or_(
                        Message.dispatch_owner.is_(None),
                        Message.dispatch_heartbeat_at < now - self.settings.lease,
                    ),
                )
                .order_by(Message.resume_at, Message.id)
                .limit(limit)
            ).all()
        )

    def _joinable(self, limit: int) -> list[tuple[int, int]]:
        """Other processes' running batches with rows nobody has an outcome for yet."""
        now = self.clock()
        return [
            (row.id, row.message_id)
            for row in self.session.execute(
                sa.select(Batch.id, Batch.message_id)
                .join(Message, Message.id == Batch.message_id)
                .where(
                    Batch.status == BatchStatus.RUNNING,
                    Batch.heartbeat_at >= now - self.settings.lease,
                    Batch.sealed_at.is_(None),
                    Batch.owner != self.owner,
                    Batch.trigger != BatchTrigger.SEND_ONE,
                    Batch.dry_run.is_(self.settings.dry_run),
                    Batch.total > Batch.sent + Batch.failed + Batch.skipped,
                    Message.status == MessageStatus.SENDING,
                )
                .order_by(Batch.id)
                .limit(limit)
            ).all()
        ]

    def help(self, message_id: int, batch_id: int) -> int:
        """Send chunks of another process's batch until none is left; how many rows it did.

        A helper claims chunks exactly as the owner does and records them in the same
        batch, but it never finalizes the batch or touches the message: its owner does,
        once no claim is left. If the mail server is unreachable the helper gives its
        chunk back and leaves (the owner pauses the message).
        """
        session = self.session
        batch = session.get(Batch, batch_id)
        message = session.get(Message, message_id)
        if batch is None or message is None:
            return 0
        as_of = batch.started_at  # the owner's scope: never a retry the owner would not send
        work = self._work(batch_id, message, leader=False)
        session.commit()
        try:
            work.pool.open()
            for scope in self._passes(as_of, None):
                if self._send_pass(work, scope) is not None:
                    break
        except Unreachable as error:
            log.info("not helping batch %s: %s", batch_id, error)
        except Exception:  # noqa: BLE001 - the owner still has the batch; give the chunk back
            log.exception("helping batch %s failed", batch_id)
            session.rollback()
            claim.release_claims(session, message_id, self.owner)
            session.commit()
        finally:
            work.pool.close()
        if work.processed:
            log.info("helped batch %s with %s deliveries", batch_id, work.processed)
        return work.processed

    def take_over(self, message_id: int) -> int | None:
        """Lease a message in ``sending`` and give it a batch: adopt a queued one or start one."""
        now = self.clock()
        if not claim.claim_in_flight(
            self.session, message_id, self.owner, now, self.settings.lease
        ):
            self.session.rollback()
            return None
        queued = self.session.scalar(
            sa.select(Batch.id)
            .where(
                Batch.message_id == message_id,
                Batch.status == BatchStatus.RUNNING,
                Batch.heartbeat_at.is_(None),
            )
            .order_by(Batch.id)
            .limit(1)
        )
        if queued is not None:
            self.session.execute(
                sa.update(Batch)
                .where(Batch.id == queued)
                .values(owner=self.owner, heartbeat_at=now, started_at=now)
            )
            self.session.commit()
            return queued
        trigger = self._trigger_for(message_id, now)
        if trigger is None:
            self._settle_message(message_id, now)
            claim.release_lease(self.session, message_id, self.owner)
            self.session.commit()
            return None
        batch = self._new_batch(message_id, trigger, now)
        self.session.commit()
        return batch.id

    def _trigger_for(self, message_id: int, now: datetime) -> BatchTrigger | None:
        has_deliveries = self.session.scalar(
            sa.select(sa.exists().where(Delivery.message_id == message_id))
        )
        if not has_deliveries:
            return BatchTrigger.SCHEDULE
        pending = self.session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.message_id == message_id, Delivery.status == DeliveryStatus.PENDING
                )
            )
        )
        if pending:
            return BatchTrigger.RESUME
        due = self.session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.message_id == message_id, retryable(self.settings.max_attempts, now)
                )
            )
        )
        return BatchTrigger.RETRY if due else None

    def _new_batch(self, message_id: int, trigger: BatchTrigger, now: datetime) -> Batch:
        batch = Batch(
            message_id=message_id,
            trigger=trigger,
            initiated_label="scheduler",
            status=BatchStatus.RUNNING,
            dry_run=self.settings.dry_run,
            owner=self.owner,
            started_at=now,
            heartbeat_at=now,
        )
        self.session.add(batch)
        self.session.flush()
        return batch

    # --- recovery ----------------------------------------------------------------------

    def recover(self) -> int:
        """Mark running batches whose heartbeat is older than the lease as interrupted."""
        now = self.clock()
        cutoff = now - self.settings.lease
        stale = self.session.scalars(
            sa.select(Batch.id).where(
                Batch.status == BatchStatus.RUNNING,
                Batch.heartbeat_at.is_not(None),
                Batch.heartbeat_at < cutoff,
            )
        ).all()
        recovered = 0
        for batch_id in stale:
            counts = self._entry_counts(batch_id)
            done = self.session.execute(
                sa.update(Batch)
                .where(
                    Batch.id == batch_id,
                    Batch.status == BatchStatus.RUNNING,
                    Batch.heartbeat_at < cutoff,
                )
                .values(
                    status=BatchStatus.INTERRUPTED,
                    finished_at=now,
                    error="The dispatcher stopped responding (no heartbeat for "
                    f"{int(self.settings.lease_seconds)} s); the recipients without an outcome "
                    "are sent by a new batch.",
                    **counts,
                )
            ).rowcount
            recovered += done
            if done:
                log.warning("batch %s was stale and is now interrupted", batch_id)
        self.session.commit()
        return recovered

    # --- one batch ---------------------------------------------------------------------

    def run(self, message_id: int, batch_id: int, only_delivery: int | None = None) -> BatchStatus:
        """Send one batch of ``message_id``. Never leaves the batch running."""
        try:
            return self._run(message_id, batch_id, only_delivery)
        except Exception as error:  # noqa: BLE001 - recorded on the batch, never lost
            log.exception("batch %s failed", batch_id)
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            return self._finish(
                batch_id,
                message_id,
                error=f"Internal error, sending will resume: {detail}",
                pause=timedelta(seconds=self.settings.pause_seconds),
            )

    def _run(self, message_id: int, batch_id: int, only_delivery: int | None) -> BatchStatus:
        session = self.session
        batch = session.get(Batch, batch_id)
        message = session.get(Message, message_id)
        assert batch is not None and message is not None
        as_of = self.clock()
        trigger = batch.trigger
        if trigger in (BatchTrigger.SCHEDULE, BatchTrigger.SEND_NOW, BatchTrigger.RESUME):
            self._materialize(message, as_of)
        skipped = self._record_skips(message.id, batch_id, as_of)
        total = skipped + (
            session.scalar(
                sa.select(sa.func.count()).where(
                    Delivery.message_id == message_id, self._scope(as_of, only_delivery)
                )
            )
            or 0
        )
        # From this commit on (total > outcomes so far) other processes may join the batch.
        session.execute(
            sa.update(Batch)
            .where(Batch.id == batch_id)
            .values(total=total, skipped=skipped, dry_run=self.settings.dry_run)
        )
        session.commit()

        work = self._work(batch_id, message, leader=True)
        try:
            if total > skipped:
                try:
                    work.pool.open()
                except Unreachable as error:
                    return self._pause(batch_id, message_id, str(error))
            return self._send_all(work, self._passes(as_of, only_delivery))
        finally:
            work.pool.close()

    def _work(self, batch_id: int, message: Message, *, leader: bool) -> _Work:
        event = self.session.get(Event, message.event_id)
        assert event is not None
        return _Work(
            batch_id=batch_id,
            message_id=message.id,
            leader=leader,
            renderer=MessageRenderer(event, message.subject, message.body, self.settings.base_url),
            builder=MessageBuilder(self.settings.sender, self.settings.message_id_domain),
            pool=SenderPool(
                self.make_transport, self.settings.concurrency, self.settings.rate_per_second
            ),
            tick=max(1.0, self.settings.lease_seconds / 4),
        )

    def _scope(self, as_of: datetime, only_delivery: int | None) -> sa.ColumnElement[bool]:
        if only_delivery is not None:
            return self._only(only_delivery)
        return needs_sending(self.settings.max_attempts, as_of)

    @staticmethod
    def _only(delivery_id: int) -> sa.ColumnElement[bool]:
        """A single re-send (``send_one`` made the row pending); sent, it leaves the scope."""
        return sa.and_(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)

    def _passes(self, as_of: datetime, only_delivery: int | None) -> list[sa.ColumnElement[bool]]:
        """The scope as OR-free parts, walked one after the other.

        ``pending OR retryable`` in one keyset query makes SQLite merge two indexes and
        sort every remaining row for each group (O(n) per group, O(n²) per batch); each
        part alone walks the (message_id, status, id) index and stops after one group.
        """
        if only_delivery is not None:
            return [self._only(only_delivery)]
        return [
            Delivery.status == DeliveryStatus.PENDING,
            retryable(self.settings.max_attempts, as_of),
        ]

    def _send_all(self, work: _Work, passes: list[sa.ColumnElement[bool]]) -> BatchStatus:
        """The owner's walk: every pass, then again while helpers still hold claims.

        A helper that stops (killed, or its mail server unreachable) leaves claims that
        run out after the lease; the next walk from the start picks those rows up.
        """
        patience = 2 * self.settings.lease_seconds + 5  # a live helper renews its claims
        deadline = time.monotonic() + patience
        while True:
            # Looked at before the walk: a claim that lapses during it is walked next time.
            helpers_busy = claim.claimed_by_others(
                self.session, work.message_id, self.owner, self.clock(), self.settings.lease
            )
            self.session.commit()
            done_before = work.processed
            for scope in passes:
                status = self._send_pass(work, scope)
                if status is not None:
                    return status
            if work.processed > done_before:
                # Rows behind the cursor may have been given back or their claims lapsed.
                deadline = time.monotonic() + patience
                continue
            if not helpers_busy or time.monotonic() > deadline:
                break  # a row a helper still holds then is awaited or resumed by _finish
            time.sleep(HELPER_WAIT_SECONDS)
            if not self._heartbeat(work, []):
                return self._lost_lease(work)
        return self._finish(work.batch_id, work.message_id)

    def _lost_lease(self, work: _Work) -> BatchStatus:
        return self._finish(
            work.batch_id,
            work.message_id,
            interrupted="Another dispatcher took this message over (lease expired).",
            release=False,
        )

    def _send_pass(self, work: _Work, scope: sa.ColumnElement[bool]) -> BatchStatus | None:
        """Claim and send one chunk at a time in id order; a status when the batch must stop.

        The owner and any helper run this same walk: each claims the next unclaimed
        chunk (``commit_every`` rows) with one conditional UPDATE, so two processes
        never hold the same row.
        """
        session = self.session
        last_id = 0
        while True:
            now = self.clock()
            ids = claim.claim_deliveries(
                session,
                batch_id=work.batch_id,
                message_id=work.message_id,
                scope=scope,
                owner=self.owner,
                now=now,
                lease=self.settings.lease,
                after_id=last_id,
                limit=self.settings.commit_every,
            )
            session.commit()
            if not ids:
                return None
            last_id = ids[-1]
            rows = session.execute(
                sa.select(
                    Delivery.id,
                    Delivery.attempts,
                    Guest.name,
                    Guest.email,
                    Guest.token,
                    Guest.unsubscribed_at,
                )
                .join(Guest, Guest.id == Delivery.guest_id)
                .where(Delivery.id.in_(ids))
                .order_by(Delivery.id)
            ).all()
            session.commit()  # end the read before the slow part
            outcomes: list[tuple[int, int, SendResult | Skip]] = []
            emails: list[OutgoingEmail] = []
            attempts_of: dict[int, int] = {}
            for row in rows:
                attempts_of[row.id] = row.attempts
                if row.unsubscribed_at is not None:
                    outcomes.append((row.id, row.attempts, Skip(REASON_UNSUBSCRIBED)))
                    continue
                try:
                    emails.append(self._compose(row, work))
                except Exception as error:  # noqa: BLE001 - one recipient's problem only
                    log.warning("delivery %s could not be rendered: %s", row.id, error)
                    outcomes.append(
                        (row.id, row.attempts, SendResult.permanent(f"could not render: {error}"))
                    )
            results = work.pool.wait(
                work.pool.submit(emails), work.tick, partial(self._heartbeat, work, ids)
            )
            unreachable: Unreachable | None = None
            for email, result in zip(emails, results, strict=True):
                if isinstance(result, Unreachable):
                    unreachable = unreachable or result  # not charged to the recipient
                else:
                    outcomes.append((email.delivery_id, attempts_of[email.delivery_id], result))
            still_owner = self._record(work, outcomes)
            work.processed += len(outcomes)
            if unreachable is not None:
                if not work.leader:
                    claim.release_claims(session, work.message_id, self.owner)
                    session.commit()
                    return BatchStatus.INTERRUPTED  # the owner pauses the message
                return self._pause(work.batch_id, work.message_id, str(unreachable))
            if not still_owner:
                return self._lost_lease(work)

    def _compose(self, row, work: _Work) -> OutgoingEmail:  # type: ignore[no-untyped-def]
        guest = SimpleNamespace(name=row.name, email=row.email, token=row.token)
        rendered = work.renderer.render(guest)  # type: ignore[arg-type]
        builder = work.builder
        message_ref = builder.message_id(work.message_id, row.id)
        data = builder.build(
            to_name=rendered.to_name,
            to_email=rendered.to_email,
            subject=rendered.subject,
            body=rendered.body,
            message_id=message_ref,
            unsubscribe_url=rendered.unsubscribe_url,
        )
        return OutgoingEmail(
            delivery_id=row.id,
            sender=builder.sender_address,
            recipient=rendered.to_email,
            data=data,
            message_id=message_ref,
            subject=rendered.subject,
            body=rendered.body,
        )

    def _heartbeat(self, work: _Work, claimed: list[int]) -> bool:
        """Keep this chunk's claims; the owner also keeps its lease and the batch's heartbeat."""
        now = self.clock()
        claim.renew_claims(self.session, claimed, self.owner, now)
        owner = True
        if work.leader:
            owner = self._owner_heartbeat(work.batch_id, work.message_id, now)
        self.session.commit()
        return owner

    def _owner_heartbeat(self, batch_id: int, message_id: int, now: datetime) -> bool:
        """The message lease and the batch heartbeat (the caller commits)."""
        self.session.execute(sa.update(Batch).where(Batch.id == batch_id).values(heartbeat_at=now))
        return claim.renew_lease(self.session, message_id, self.owner, now)

    def _record(self, work: _Work, outcomes: list[tuple[int, int, SendResult | Skip]]) -> bool:
        """Write one group of outcomes, the counters and the heartbeat in one commit."""
        if not outcomes:
            return self._heartbeat(work, [])
        batch_id = work.batch_id
        now = self.clock()
        updates: list[dict] = []
        entries: list[dict] = []
        sent = failed = skipped = 0
        released = {"claimed_by": None, "claimed_at": None, "updated_at": now}
        for delivery_id, attempts, result in outcomes:
            entry = {
                "batch_id": batch_id,
                "delivery_id": delivery_id,
                "worker": self.owner,
                "processed_at": now,
                "error_kind": None,
            }
            if isinstance(result, Skip) or result.dry_run:
                # Not sent: skipped with its reason; a dry run says so on the row and entry.
                dry_run = not isinstance(result, Skip)
                reason = result.error if dry_run else result.reason  # type: ignore[union-attr]
                skipped += 1
                updates.append(
                    {
                        "id": delivery_id,
                        "status": DeliveryStatus.SKIPPED,
                        "dry_run": dry_run,
                        "last_error": reason,
                        "next_attempt_at": None,
                        **released,
                    }
                )
                outcome = Outcome.DRY_RUN if dry_run else Outcome.SKIPPED
                entries.append({**entry, "outcome": outcome, "reason": reason})
            elif result.ok:
                sent += 1
                updates.append(
                    {
                        "id": delivery_id,
                        "status": DeliveryStatus.SENT,
                        "attempts": attempts + 1,
                        "sent_at": now,
                        "provider_message_id": result.provider_id,
                        "last_error": None,
                        "error_kind": None,
                        "next_attempt_at": None,
                        **released,
                    }
                )
                entries.append({**entry, "outcome": Outcome.SENT, "reason": None})
            else:
                failed += 1
                tries = attempts + 1
                retry_at = None
                reason = result.error or "unknown error"
                if result.kind is ErrorKind.TRANSIENT:
                    if tries < self.settings.max_attempts:
                        retry_at = now + self.settings.backoff(tries)
                        reason = (
                            f"{reason} (attempt {tries} of {self.settings.max_attempts}; retrying)"
                        )
                    else:
                        reason = (
                            f"{reason} (attempt {tries} of {self.settings.max_attempts}; giving up)"
                        )
                updates.append(
                    {
                        "id": delivery_id,
                        "status": DeliveryStatus.FAILED,
                        "attempts": tries,
                        "last_error": result.error,
                        "error_kind": result.kind,
                        "next_attempt_at": retry_at,
                        **released,
                    }
                )
                entries.append(
                    {
                        **entry,
                        "outcome": Outcome.FAILED,
                        "reason": reason,
                        "error_kind": result.kind,
                    }
                )
        session = self.session
        session.execute(sa.update(Delivery), updates)
        # A row re-sent after its sender's claim ran out is recorded once per batch.
        session.execute(
            insert_ignoring_duplicates(session, BatchEntry, ["batch_id", "delivery_id"]), entries
        )
        progress = {
            "sent": Batch.sent + sent,
            "failed": Batch.failed + failed,
            "skipped": Batch.skipped + skipped,
        }
        if work.leader:
            progress["heartbeat_at"] = now
        session.execute(sa.update(Batch).where(Batch.id == batch_id).values(**progress))
        owner = True
        if work.leader:
            owner = claim.renew_lease(session, work.message_id, self.owner, now)
        session.commit()
        return owner

    # --- audience ----------------------------------------------------------------------

    def _materialize(self, message: Message, now: datetime) -> int:
        """One delivery row per audience member not yet having one (INSERT ... SELECT)."""
        reason = skip_reason()
        existing = sa.exists().where(
            Delivery.message_id == message.id, Delivery.guest_id == Guest.id
        )
        select = sa.select(
            sa.literal(message.id),
            Guest.id,
            Guest.email,
            sa.case(
                (reason.is_(None), sa.literal(DeliveryStatus.PENDING.value)),
                else_=sa.literal(DeliveryStatus.SKIPPED.value),
            ),
            reason,
            sa.literal(0),
            sa.literal(False),
            sa.literal(now, UTCDateTime()),
            sa.literal(now, UTCDateTime()),
        ).where(Guest.event_id == message.event_id, in_audience(message.audience), ~existing)
        result = self.session.connection().execute(  # Core: a real rowcount on every driver
            sa.insert(Delivery).from_select(
                [
                    "message_id",
                    "guest_id",
                    "email",
                    "status",
                    "last_error",
                    "attempts",
                    "dry_run",
                    "created_at",
                    "updated_at",
                ],
                select,
            )
        )
        return result.rowcount or 0

    def _record_skips(self, message_id: int, batch_id: int, now: datetime) -> int:
        """Skipped deliveries that no batch has recorded yet get their entry in this one."""
        recorded = sa.exists().where(BatchEntry.delivery_id == Delivery.id)
        self.session.execute(
            sa.insert(BatchEntry).from_select(
                ["batch_id", "delivery_id", "outcome", "reason", "worker", "processed_at"],
                sa.select(
                    sa.literal(batch_id),
                    Delivery.id,
                    sa.literal(Outcome.SKIPPED.value),
                    Delivery.last_error,
                    sa.literal(self.owner),
                    sa.literal(now, UTCDateTime()),
                ).where(
                    Delivery.message_id == message_id,
                    Delivery.status == DeliveryStatus.SKIPPED,
                    Delivery.dry_run.is_(False),
                    ~recorded,
                ),
            )
        )
        # Counted, not taken from rowcount: drivers disagree about INSERT ... SELECT.
        return (
            self.session.scalar(
                sa.select(sa.func.count()).where(
                    BatchEntry.batch_id == batch_id, BatchEntry.outcome == Outcome.SKIPPED
                )
            )
            or 0
        )

    # --- finishing ---------------------------------------------------------------------

    def _entry_counts(self, batch_id: int) -> dict[str, int]:
        rows = self.session.execute(
            sa.select(BatchEntry.outcome, sa.func.count())
            .where(BatchEntry.batch_id == batch_id)
            .group_by(BatchEntry.outcome)
        ).all()
        by = {Outcome(outcome): n for outcome, n in rows}
        return {
            "sent": by.get(Outcome.SENT, 0),
            "failed": by.get(Outcome.FAILED, 0),
            "skipped": by.get(Outcome.SKIPPED, 0) + by.get(Outcome.DRY_RUN, 0),
        }

    def _pause(self, batch_id: int, message_id: int, reason: str) -> BatchStatus:
        pause = timedelta(seconds=self.settings.pause_seconds)
        log.warning("mail server unreachable, pausing message %s: %s", message_id, reason)
        return self._finish(
            batch_id,
            message_id,
            interrupted=f"Mail server unreachable: {reason}. Sending resumes automatically.",
            pause=pause,
        )

    def _finish(
        self,
        batch_id: int,
        message_id: int,
        *,
        interrupted: str | None = None,
        error: str | None = None,
        pause: timedelta | None = None,
        release: bool = True,
    ) -> BatchStatus:
        """Finalize in a clean transaction: statements by id, figures from the rows (invariants 6, 7).

        First the batch is sealed, so no helper claims more of it, and the chunks that
        helpers are still sending are waited for (at most one lease), so that their
        outcomes are in the figures.
        """
        session = self.session
        session.rollback()
        session.execute(sa.update(Batch).where(Batch.id == batch_id).values(sealed_at=self.clock()))
        session.commit()
        if release:
            self._wait_for_helpers(batch_id, message_id)
        claim.release_claims(session, message_id, self.owner)
        now = self.clock()
        counts = self._entry_counts(batch_id)
        if interrupted:
            status = BatchStatus.INTERRUPTED
        elif error:
            status = BatchStatus.FAILED
        elif counts["failed"] == 0:
            status = BatchStatus.COMPLETED
        elif counts["sent"] == 0 and counts["skipped"] == 0:
            status = BatchStatus.FAILED
        else:
            status = BatchStatus.COMPLETED_WITH_FAILURES
        session.execute(
            sa.update(Batch)
            .where(Batch.id == batch_id)
            .values(
                status=status,
                finished_at=now,
                heartbeat_at=now,
                error=interrupted or error,
                **counts,
            )
        )
        if release:
            self._settle_message(message_id, now, pause=pause)
            claim.release_lease(session, message_id, self.owner)
        session.commit()
        log.info("batch %s of message %s: %s %s", batch_id, message_id, status.value, counts)
        return status

    def _wait_for_helpers(self, batch_id: int, message_id: int) -> None:
        deadline = time.monotonic() + self.settings.lease_seconds
        while claim.claimed_by_others(
            self.session, message_id, self.owner, self.clock(), self.settings.lease
        ):
            self.session.commit()
            if time.monotonic() > deadline:
                return
            time.sleep(HELPER_WAIT_SECONDS)
            self._owner_heartbeat(batch_id, message_id, self.clock())
            self.session.commit()
        self.session.commit()

    def _settle_message(
        self, message_id: int, now: datetime, pause: timedelta | None = None
    ) -> None:
        """Decide what the message waits for next, or give it its final status."""
        session = self.session
        status = session.scalar(sa.select(Message.status).where(Message.id == message_id))
        if status is not MessageStatus.SENDING:
            return
        if pause is not None:
            session.execute(
                sa.update(Message).where(Message.id == message_id).values(resume_at=now + pause)
            )
            return
        pending = session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.message_id == message_id, Delivery.status == DeliveryStatus.PENDING
                )
            )
        )
        next_retry = session.scalar(
            sa.select(sa.func.min(Delivery.next_attempt_at)).where(
                Delivery.message_id == message_id, retryable(self.settings.max_attempts)
            )
        )
        if pending or next_retry is not None:
            resume = now if pending else next_retry
            session.execute(
                sa.update(Message).where(Message.id == message_id).values(resume_at=resume)
            )
            return
        figures = final_figures(session, message_id)
        sent, failed = figures["final_sent"], figures["final_failed"]
        if failed == 0:
            final = MessageStatus.SENT
        elif sent == 0:
            final = MessageStatus.FAILED
        else:
            final = MessageStatus.SENT_WITH_FAILURES
        check_transition(MessageStatus.SENDING, final)
        session.execute(
            sa.update(Message)
            .where(Message.id == message_id, Message.status == MessageStatus.SENDING)
            .values(status=final, resume_at=None, updated_at=now, **figures)
        )


# --- manual actions (called by routes, the API and the CLI) ------------------------------


def final_figures(session: Session, message_id: int) -> dict[str, int]:
    """The message's delivery figures, aggregated from its rows (kept on a finished message)."""
    by_status = dict(
        session.execute(
            sa.select(Delivery.status, sa.func.count())
            .where(Delivery.message_id == message_id)
            .group_by(Delivery.status)
        ).all()
    )
    return {
        "final_total": sum(by_status.values()),
        "final_sent": by_status.get(DeliveryStatus.SENT, 0),
        "final_failed": by_status.get(DeliveryStatus.FAILED, 0),
        "final_skipped": by_status.get(DeliveryStatus.SKIPPED, 0),
    }


NO_FINAL_FIGURES = {
    "final_total": None,
    "final_sent": None,
    "final_failed": None,
    "final_skipped": None,
}


def retry_failed(session: Session, message: Message, actor: User | None, now: datetime) -> Batch:
    """Re-send only the failed deliveries of ``message``, in a new batch, reusing their rows."""
    failed = session.scalar(
        sa.select(sa.func.count()).where(
            Delivery.message_id == message.id, Delivery.status == DeliveryStatus.FAILED
        )
    )
    if not failed:
        raise Conflict("This message has no failed deliveries to retry.")
    busy = session.scalar(
        sa.select(
            sa.exists().where(Batch.message_id == message.id, Batch.status == BatchStatus.RUNNING)
        )
    )
    if busy:
        raise Conflict("A batch of this message is still running; retry when it has finished.")
    if message.status not in FINISHED and message.status is not MessageStatus.SENDING:
        raise Conflict(f"A {message.status.label.lower()} message has nothing to retry.")
    session.execute(
        sa.update(Delivery)
        .where(Delivery.message_id == message.id, Delivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.PENDING, next_attempt_at=None, updated_at=now)
    )
    moved = session.execute(
        sa.update(Message)
        .where(Message.id == message.id, Message.status.in_([*FINISHED, MessageStatus.SENDING]))
        .values(
            status=MessageStatus.SENDING,
            resume_at=None,
            dispatch_owner=None,
            updated_at=now,
            **NO_FINAL_FIGURES,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise Conflict("The message changed meanwhile; reload and try again.")
    batch = claim.queue_batch(session, message.id, BatchTrigger.RETRY_FAILED, actor, now)
    session.refresh(message)
    return batch


def send_one(dispatcher: Dispatcher, delivery_id: int, actor: User | None) -> Batch:
    """Re-send one delivery on purpose (CLI ``dispatch send-one``), whatever its status.

    Refused while a batch of the same message is running, so it never races a batch.
    """
    session = dispatcher.session
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise LookupError(f"no delivery with id {delivery_id}")
    now = dispatcher.clock()
    taken = session.execute(
        sa.update(Message)
        .where(
            Message.id == delivery.message_id,
            sa.or_(
                Message.dispatch_owner.is_(None),
                Message.dispatch_heartbeat_at < now - dispatcher.settings.lease,
            ),
        )
        .values(dispatch_owner=dispatcher.owner, dispatch_heartbeat_at=now)
    ).rowcount
    if not taken:
        session.rollback()
        raise Conflict("A batch of this message is running; try again when it has finished.")
    session.execute(
        sa.update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status=DeliveryStatus.PENDING, next_attempt_at=None, updated_at=now)
    )
    batch = claim.queue_batch(session, delivery.message_id, BatchTrigger.SEND_ONE, actor, now)
    batch.owner, batch.heartbeat_at = dispatcher.owner, now
    session.commit()
    dispatcher.run(delivery.message_id, batch.id, only_delivery=delivery_id)
    # A finished message keeps figures that now include this delivery's new outcome.
    session.execute(
        sa.update(Message)
        .where(Message.id == delivery.message_id, Message.final_total.is_not(None))
        .values(**final_figures(session, delivery.message_id))
    )
    session.commit()
    session.refresh(batch)
    return batch
