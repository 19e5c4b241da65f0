"""The poll: one pass of a worker over the database (the scheduler job, or ``dispatch run-due``).

Each pass records that it ran, recovers batches whose worker went quiet, holds back the
due messages that must not go out now (found too late, or their event has started or is
closed: ``staleness``), claims due messages and runs their batches, takes over messages in ``sending`` that nobody holds
(after an outage, a crash, a retry or a send-now queued by a host), and, with nothing of
its own left, helps other workers' running batches.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import SCHEDULER, Actor, record
from dashboard.db_types import utcnow
from dashboard.dispatch import channels, claim, control, rules, staleness, states
from dashboard.dispatch.finish import finish, pause_for, settle_message
from dashboard.dispatch.models import (
    Batch,
    BatchStatus,
    BatchTrigger,
    Delivery,
    DeliveryStatus,
    SchedulerPoll,
)
from dashboard.dispatch.queries import batch_figures, entry_counts
from dashboard.dispatch.run import BatchRun, prepare
from dashboard.dispatch.settings import Context, DispatchSettings
from dashboard.dispatch.transports import TransportSpec, Unreachable
from dashboard.messages.models import Message, MessageStatus

log = logging.getLogger(__name__)

#: The transport that carries a channel's payloads, as configured.
Transports = Callable[[channels.Channel], TransportSpec]


@dataclass
class PollReport:
    recovered: int = 0
    #: Due messages moved to overdue (or cancelled) instead of being sent.
    held_back: int = 0
    batches: list[int] = field(default_factory=list)
    #: Batches of other workers this one helped send (a chunk or more of their work).
    helped: list[int] = field(default_factory=list)


class Dispatcher:
    """One dispatcher per worker (a process, or a CLI run). Only its thread touches the session."""

    def __init__(
        self,
        session: Session,
        settings: DispatchSettings,
        transports: Transports,
        worker: str,
        clock: Callable[[], datetime] = utcnow,
        actor: Actor = SCHEDULER,
    ):
        self.session = session
        self.settings = settings
        self.transports = transports
        self.worker = worker
        self.clock = clock
        #: Who starts the batches this dispatcher makes: the scheduler, or a CLI command.
        self.actor = actor

    @property
    def ctx(self) -> Context:
        """Made afresh, so a test (or a caller) may swap the settings or the clock."""
        return Context(self.session, self.settings, self.worker, self.clock)

    # --- the pass --------------------------------------------------------------------

    def poll(self, limit: int = 20) -> PollReport:
        """One pass: record the poll, recover stale batches, claim and send due work."""
        report = PollReport()
        self.record_poll()
        report.recovered = self.recover()
        due, report.held_back = self._due(limit)
        for message_id in due:
            now = self.clock()
            fresh = staleness.sendable(now, self.settings.stale_after)
            if claim.claim_due(self.session, message_id, self.worker, now, also=fresh):
                batch = self.new_batch(message_id, BatchTrigger.SCHEDULE, now)
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
            .where(SchedulerPoll.name == self.worker)
            .values(last_poll_at=now, last_error=error)
        ).rowcount
        if not updated:
            self.session.add(SchedulerPoll(name=self.worker, last_poll_at=now, last_error=error))
        self.session.commit()

    def _due(self, limit: int) -> tuple[list[int], int]:
        """Due messages to send, after holding back those found too late (and how many)."""
        return staleness.due(self.session, self.clock(), self.settings.stale_after, limit)

    def _in_flight(self, limit: int) -> list[int]:
        now = self.clock()
        return list(
            self.session.scalars(
                sa.select(Message.id)
                .where(
                    Message.status == MessageStatus.SENDING,
                    sa.or_(Message.resume_at.is_(None), Message.resume_at <= now),
                    claim.lease_lapsed(now, self.settings.lease),
                )
                .order_by(Message.resume_at, Message.id)
                .limit(limit)
            ).all()
        )

    def _joinable(self, limit: int) -> list[tuple[int, int]]:
        """Other workers' running batches with rows nobody has an outcome for yet."""
        now = self.clock()
        rows = self.session.execute(
            sa.select(Batch.id, Batch.message_id)
            .join(Message, Message.id == Batch.message_id)
            .where(
                Batch.status == BatchStatus.RUNNING,
                Batch.heartbeat_at >= now - self.settings.lease,
                Batch.sealed_at.is_(None),
                Batch.worker != self.worker,
                Batch.trigger != BatchTrigger.SEND_ONE,
                Batch.dry_run.is_(self.settings.dry_run),
                Batch.total > Batch.sent + Batch.failed + Batch.skipped,
                Message.status == MessageStatus.SENDING,
                # Until its hold is reached the owner alone sends, so it stops at exactly N.
                sa.or_(Message.hold_after.is_(None), Message.held_at.is_not(None)),
            )
            .order_by(Batch.id)
            .limit(limit)
        ).all()
        return [(row.id, row.message_id) for row in rows]

    # --- helping and taking over --------------------------------------------------------

    def help(self, message_id: int, batch_id: int) -> int:
        """Send chunks of another worker's batch until none is left; how many rows it did.

        A helper claims chunks exactly as the owner does and records them in the same
        batch, but never finalizes the batch or touches the message: its owner does, once
        no claim is left. If the mail server is unreachable the helper gives its chunk back
        and leaves (the owner pauses the message).
        """
        session = self.session
        batch = session.get(Batch, batch_id)
        message = session.get(Message, message_id)
        if batch is None or message is None:
            return 0
        # The owner's scope: never a retry the owner would not send.
        passes = rules.passes(self.settings.max_attempts, batch.started_at)
        run = self._batch_run(batch_id, message, leader=False)
        session.commit()
        try:
            run.pool.open()
            run.help(passes)
        except Unreachable as error:
            log.info("not helping batch %s: %s", batch_id, error)
        except Exception:  # noqa: BLE001 - the owner still has the batch; give the chunk back
            log.exception("helping batch %s failed", batch_id)
            session.rollback()
            claim.release_claims(session, message_id, self.worker)
            session.commit()
        finally:
            run.close()
        if run.processed:
            log.info("helped batch %s with %s deliveries", batch_id, run.processed)
        return run.processed

    def take_over(self, message_id: int) -> int | None:
        """Lease a message in ``sending`` and give it a batch: adopt a queued one or start one."""
        now = self.clock()
        session = self.session
        if not claim.claim_in_flight(session, message_id, self.worker, now, self.settings.lease):
            session.rollback()
            return None
        queued = session.scalar(
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
            session.execute(
                sa.update(Batch)
                .where(Batch.id == queued)
                .values(worker=self.worker, heartbeat_at=now, started_at=now)
            )
            session.commit()
            return queued
        trigger = self._trigger_for(message_id, now)
        if trigger is None:
            settle_message(self.ctx, message_id, now)
            claim.release_lease(session, message_id, self.worker)
            session.commit()
            return None
        batch = self.new_batch(message_id, trigger, now)
        session.commit()
        return batch.id

    def _trigger_for(self, message_id: int, now: datetime) -> BatchTrigger | None:
        def some(*where: sa.ColumnElement[bool]) -> bool:
            query = sa.select(sa.exists().where(Delivery.message_id == message_id, *where))
            return bool(self.session.scalar(query))

        if not some():
            return BatchTrigger.SCHEDULE
        if some(Delivery.status == DeliveryStatus.PENDING):
            return BatchTrigger.RESUME
        if some(rules.retryable(self.settings.max_attempts, now)):
            return BatchTrigger.RETRY
        return None

    def new_batch(self, message_id: int, trigger: BatchTrigger, now: datetime) -> Batch:
        batch = Batch(
            message_id=message_id,
            trigger=trigger,
            initiated_by_id=self.actor.user_id,
            initiated_label=self.actor.label[:254],
            status=BatchStatus.RUNNING,
            dry_run=self.settings.dry_run,
            worker=self.worker,
            started_at=now,
            heartbeat_at=now,
        )
        self.session.add(batch)
        self.session.flush()
        event_id = self.session.scalar(sa.select(Message.event_id).where(Message.id == message_id))
        record(
            self.session,
            self.actor,
            "batch.start",
            now=now,
            event_id=event_id,
            message_id=message_id,
            batch_id=batch.id,
            details={"trigger": trigger, "worker": self.worker},
        )
        return batch

    # --- recovery --------------------------------------------------------------------

    def recover(self) -> int:
        """Mark running batches whose heartbeat is older than the lease as interrupted."""
        now = self.clock()
        cutoff = now - self.settings.lease
        stale = self.session.execute(
            sa.select(Batch.id, Batch.message_id).where(
                Batch.status == BatchStatus.RUNNING,
                Batch.heartbeat_at.is_not(None),
                Batch.heartbeat_at < cutoff,
            )
        ).all()
        recovered = 0
        error = (
            f"The dispatcher stopped responding (no heartbeat for {int(self.settings.lease_seconds)}"
            " s); the recipients without an outcome are sent by a new batch."
        )
        for batch_id, message_id in stale:
            status, note, counts = self._recovered(batch_id, message_id, now, error)
            if states.move_batch(
                self.session,
                batch_id,
                status,
                where=Batch.heartbeat_at < cutoff,
                finished_at=now,
                error=note,
                **counts,
            ):
                recovered += 1
                log.warning("batch %s was stale and is now %s", batch_id, status.value)
                if status is BatchStatus.STOPPED:
                    control.keep_stopped_figures(self.session, message_id)
        self.session.commit()
        return recovered

    def _recovered(
        self, batch_id: int, message_id: int, now: datetime, error: str
    ) -> tuple[BatchStatus, str, dict[str, int]]:
        """How a stale batch ends: as its message's pause or stop says (a stop cancels what
        it left), else interrupted, for a new batch to send the rest."""
        ending = control.ending_for(self.session, message_id)
        if ending is None:
            return (
                BatchStatus.INTERRUPTED,
                error,
                batch_figures(entry_counts(self.session, batch_id)),
            )
        counts = control.end_by_host(
            self.session, message_id, batch_id, ending, None, now, self.settings.lease
        )
        return ending.status, ending.note, counts

    # --- one batch -------------------------------------------------------------------

    def run(self, message_id: int, batch_id: int, only_delivery: int | None = None) -> BatchStatus:
        """Send one batch of ``message_id``. Never leaves the batch running."""
        try:
            return self._run(message_id, batch_id, only_delivery)
        except Exception as error:  # noqa: BLE001 - recorded on the batch, never lost
            log.exception("batch %s failed", batch_id)
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            return finish(
                self.ctx,
                batch_id,
                message_id,
                error=f"Internal error, sending will resume: {detail}",
                pause=timedelta(seconds=self.settings.pause_seconds),
            )

    def _run(self, message_id: int, batch_id: int, only_delivery: int | None) -> BatchStatus:
        batch = self.session.get(Batch, batch_id)
        message = self.session.get(Message, message_id)
        assert batch is not None and message is not None
        as_of = self.clock()
        total, skipped = prepare(self.ctx, batch, message, as_of, only_delivery)
        run = self._batch_run(batch_id, message, leader=True)
        try:
            if total > skipped:
                try:
                    run.pool.open()
                except Unreachable as error:
                    return pause_for(self.ctx, batch_id, message_id, error)
            return run.walk(rules.passes(self.settings.max_attempts, as_of, only_delivery))
        finally:
            run.close()

    def _batch_run(self, batch_id: int, message: Message, *, leader: bool) -> BatchRun:
        spec = self.transports(channels.get(message.channel))
        return BatchRun(self.ctx, spec, batch_id, message, leader=leader, actor=self.actor)
