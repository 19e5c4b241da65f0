"""The run of one batch: prepare it, walk its deliveries chunk by chunk, send, record.

1. ``prepare``: the audience becomes delivery rows (``recipients.materialize``), guests
   who cannot receive are recorded as skipped, and the batch learns its total.
2. ``BatchRun.walk``: the deliveries that still need sending, in id order, a chunk of
   ``commit_every`` at a time: claim the chunk (one conditional UPDATE), render and
   compose each payload, send over the pool, then record every outcome, the counters
   and the heartbeat in one commit. The walk is pipelined by one chunk: chunk k+1 is
   claimed, composed and queued on the pool while chunk k is on the wire, and chunk k is
   recorded while k+1 sends, so the sending threads never wait for the main thread. A
   delivery is still recorded only from its transport's answer; a hard crash can repeat
   at most the two chunks that were sent but not yet committed. With a rate or a
   ``hold_after`` the walk is one chunk at a time (the rate's slots are taken as threads
   free up, and the hold counts what was sent).
3. Other workers with nothing of their own to do help with the same walk
   (``BatchRun.help``); the owner walks again until no helper holds a claim, then
   finishes (``finish.finish``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from dashboard.audit.services import SCHEDULER, Actor
from dashboard.dispatch import channels, claim, control, live, recipients, rules
from dashboard.dispatch.finish import (
    HELPER_WAIT_SECONDS,
    finish,
    lost_lease,
    owner_heartbeat,
    pause_for,
)
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger, Delivery, DeliveryStatus
from dashboard.dispatch.pool import SenderPool
from dashboard.dispatch.record import Outcome, record_outcomes
from dashboard.dispatch.sending import Flight, Sender
from dashboard.dispatch.settings import Context
from dashboard.dispatch.transports import Payload, SendResult, TransportSpec, Unreachable
from dashboard.events.models import Event, Guest
from dashboard.messages.audience import REASON_REMOVED, REASON_UNSUBSCRIBED, SUPPRESSED
from dashboard.messages.models import Message
from dashboard.messages.rendering import MessageRenderer
from dashboard.suppressions import services as suppressions
from dashboard.suppressions.models import SuppressionKind

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Chunk:
    """One claimed chunk between being put on the wire and being recorded."""

    ids: list[int]
    rows: list[Any]
    outcomes: list[Outcome]
    payloads: list[Payload]
    flight: Flight


#: Triggers whose batch first turns the audience into delivery rows.
MATERIALIZING = frozenset({BatchTrigger.SCHEDULE, BatchTrigger.SEND_NOW, BatchTrigger.RESUME})


def prepare(
    ctx: Context, batch: Batch, message: Message, as_of: datetime, only_delivery: int | None
) -> tuple[int, int]:
    """Deliveries and skips of the batch, and its total (of what needs sending ``as_of``);
    commits. Returns (total, skipped).

    From this commit on (total > outcomes so far) other workers may join the batch.
    """
    session = ctx.session
    if batch.trigger in MATERIALIZING:
        recipients.materialize(session, message, ctx.clock())
    skipped = recipients.record_skips(session, message.id, batch.id, ctx.worker, ctx.clock())
    scope = rules.scope(ctx.settings.max_attempts, as_of, only_delivery)
    total = skipped + recipients.count_in_scope(session, message.id, scope)
    session.execute(
        sa.update(Batch)
        .where(Batch.id == batch.id)
        .values(total=total, skipped=skipped, dry_run=ctx.settings.dry_run)
    )
    session.commit()
    return total, skipped


class BatchRun:
    """One worker's part in one batch: the owner's (``leader``) or a helper's."""

    def __init__(
        self,
        ctx: Context,
        spec: TransportSpec,
        batch_id: int,
        message: Message,
        *,
        leader: bool,
        actor: Actor = SCHEDULER,
    ):
        event = ctx.session.get(Event, message.event_id)
        assert event is not None
        channel = channels.get(message.channel)
        settings = ctx.settings
        self.ctx = ctx
        self.batch_id = batch_id
        self.message_id = message.id
        self.leader = leader
        self.actor = actor
        #: Send to this many, then pause (the owner alone sends until then).
        self.hold_after = message.hold_after if leader and message.held_at is None else None
        self.address = channel.address()
        self.suppression = channel.suppression()
        self.loading = self._loading()
        self.renderer = MessageRenderer(
            event,
            message.subject,
            message.body,
            settings.base_url,
            attach_calendar=message.attach_calendar,
        )
        self.composer = channel.composer(settings, message.id, self.renderer)
        self.transport = spec.name
        self.pool = SenderPool(
            live.counted(spec, live.key(ctx.session, batch_id)), settings.concurrency
        )
        self.tick = max(1.0, settings.lease_seconds / 4)
        # A provider's batch request carries a whole group: a chunk holds one per sending
        # thread, so they go in parallel. A crash repeats at most that chunk, and a provider
        # with idempotency keys answers its repeat from the first send.
        grouped = spec.group_size > 1
        self.chunk = max(settings.commit_every, spec.group_size * settings.concurrency * grouped)
        # A deliberate re-send is a new request: a provider must not answer it from the
        # first send's idempotency key.
        trigger = ctx.session.scalar(sa.select(Batch.trigger).where(Batch.id == batch_id))
        self.key_suffix = f"/resend-{batch_id}" if trigger is BatchTrigger.SEND_ONE else ""
        self.processed = 0
        #: The rows of the chunks on the wire, whose claims the heartbeat renews.
        self.in_flight: list[int] = []
        self.sender = Sender(ctx, self.pool, self.tick, self._renew_in_flight)
        if leader:  # committed with the walk's first statement
            ctx.session.execute(
                sa.update(Batch).where(Batch.id == batch_id).values(transport=spec.name)
            )

    def close(self) -> None:
        self.pool.close()

    # --- the owner's walk -------------------------------------------------------------

    def walk(self, passes: list[sa.ColumnElement[bool]]) -> BatchStatus:
        """Every pass, then again while helpers still hold claims; then finish.

        A helper that stops (killed, or its mail server unreachable) leaves claims that run
        out after the lease; the next walk from the start picks those rows up.
        """
        ctx = self.ctx
        patience = 2 * ctx.settings.lease_seconds + 5  # a live helper renews its claims
        deadline = time.monotonic() + patience
        while True:
            # Looked at before the walk: a claim that lapses during it is walked next time.
            helpers_busy = claim.claimed_by_others(
                ctx.session, self.message_id, ctx.worker, ctx.clock(), ctx.settings.lease
            )
            ctx.session.commit()
            done_before = self.processed
            for scope in passes:
                status = self.send_pass(scope)
                if status is not None:
                    return status
            if self._sealed():
                break  # a host paused or stopped it: finish waits for what is on the wire
            if self.processed > done_before:
                # Rows behind the cursor may have been given back or their claims lapsed.
                deadline = time.monotonic() + patience
                continue
            if not helpers_busy or time.monotonic() > deadline:
                break  # a row a helper still holds then is awaited or resumed by finish
            time.sleep(HELPER_WAIT_SECONDS)
            if not self.heartbeat([]):
                return lost_lease(ctx, self.batch_id, self.message_id)
        return finish(ctx, self.batch_id, self.message_id)

    def help(self, passes: list[sa.ColumnElement[bool]]) -> None:
        """A helper's walk: claim and send chunks until none is left (the owner finishes)."""
        for scope in passes:
            if self.send_pass(scope) is not None:
                return

    # --- one pass, one chunk ------------------------------------------------------------

    def send_pass(self, scope: sa.ColumnElement[bool]) -> BatchStatus | None:
        """Claim and send one chunk at a time in id order; a status when the batch must stop.

        The owner and any helper run this same walk: each claims the next unclaimed chunk
        with one conditional UPDATE, so two workers never hold the same row. The next
        chunk is claimed and put on the wire before the one in flight is recorded.
        """
        ctx = self.ctx
        last_id = 0
        flying: Chunk | None = None
        while True:
            if flying is not None and not self._pipelined():
                status = self._land(flying)
                flying = None
                if status is not None:
                    return status
            room = self._room()
            if room == 0:
                return self._hold()  # nothing is in flight: a hold walks one chunk at a time
            ids = claim.claim_deliveries(
                ctx.session,
                batch_id=self.batch_id,
                message_id=self.message_id,
                scope=scope,
                worker=ctx.worker,
                now=ctx.clock(),
                lease=ctx.settings.lease,
                after_id=last_id,
                limit=room,
            )
            ctx.session.commit()
            if not ids:
                return None if flying is None else self._land(flying)
            last_id = ids[-1]
            started = self._launch(ids)
            if flying is not None:
                status = self._land(flying, started)
                if status is not None:
                    return status
            flying = started

    def _pipelined(self) -> bool:
        """Whether the next chunk may go on the wire before the one in flight is recorded."""
        return self.hold_after is None and not self.sender.interval

    # --- a host's controls, seen between chunks -----------------------------------------

    def _sealed(self) -> bool:
        """No process may claim more of this batch (a host paused or stopped its message)."""
        session = self.ctx.session
        still_open = session.scalar(sa.select(claim.open_batch(self.batch_id)))
        session.commit()
        return not still_open

    def _room(self) -> int:
        """How many rows the next chunk may hold: a chunk, or what is left before the hold."""
        every = self.chunk
        if self.hold_after is None:
            return every
        sent = self.ctx.session.scalar(
            sa.select(sa.func.count()).where(
                Delivery.message_id == self.message_id, Delivery.status == DeliveryStatus.SENT
            )
        )
        return max(0, min(every, self.hold_after - (sent or 0)))

    def _hold(self) -> BatchStatus | None:
        """``hold_after`` reached: the message pauses for a host to check, unless nobody is
        left to send it to (then the batch simply ends)."""
        ctx = self.ctx
        self.hold_after = None
        left = ctx.session.scalar(
            sa.select(
                sa.exists().where(
                    Delivery.message_id == self.message_id,
                    Delivery.status == DeliveryStatus.PENDING,
                )
            )
        )
        if not left or not control.hold(ctx.session, self.message_id, self.actor, ctx.clock()):
            ctx.session.commit()
            return None
        ctx.session.commit()
        log.info("message %s reached its hold; pausing", self.message_id)
        return finish(ctx, self.batch_id, self.message_id)

    def _launch(self, ids: list[int]) -> Chunk:
        """Load and compose a claimed chunk and put it on the wire (without waiting)."""
        rows = self._load(ids)
        outcomes, payloads = self._compose(rows)
        self.in_flight.extend(ids)
        return Chunk(ids, rows, outcomes, payloads, self.sender.begin(payloads))

    def _land(self, chunk: Chunk, following: Chunk | None = None) -> BatchStatus | None:
        """Wait for ``chunk`` and record it; a status when the batch must stop, after
        recording ``following`` too (already on the wire: its answers are kept)."""
        stop, still_owner = self._collect(chunk)
        if following is not None and (stop is not None or not still_owner):
            next_stop, next_owner = self._collect(following)
            stop = stop or next_stop
            still_owner = still_owner and next_owner
        if stop is not None:
            if not self.leader:
                claim.release_claims(self.ctx.session, self.message_id, self.ctx.worker)
                self.ctx.session.commit()
                return BatchStatus.INTERRUPTED  # the owner pauses the message
            return pause_for(self.ctx, self.batch_id, self.message_id, stop)
        if not still_owner:
            return lost_lease(self.ctx, self.batch_id, self.message_id)
        return None

    def _collect(self, chunk: Chunk) -> tuple[Unreachable | None, bool]:
        """The chunk's answers recorded in one commit: why to stop, and whether this
        worker still owns the batch."""
        sent = self.sender.end(chunk.flight)
        attempts_of = {row.id: row.attempts for row in chunk.rows}
        outcomes = chunk.outcomes
        for payload, result in zip(chunk.payloads, sent.results, strict=True):
            # Not charged to the recipient: held back by the quota, or nobody's fault.
            if result is not None and not isinstance(result, Unreachable):
                outcomes.append((payload.delivery_id, attempts_of[payload.delivery_id], result))
        self._keep_recipients(chunk.rows)  # written after the send, with its outcomes
        self._suppress_refused(chunk.payloads, sent.results)
        still_owner = self.record(outcomes)
        self.processed += len(outcomes)
        landed = set(chunk.ids)
        self.in_flight = [row for row in self.in_flight if row not in landed]
        return sent.stop, still_owner

    def _suppress_refused(self, payloads: list[Payload], results: list[Any]) -> None:
        """Addresses refused for good join the suppression list (with this chunk's commit)."""
        refused = [
            suppressions.Refusal(
                payload.recipient, SuppressionKind.HARD_BOUNCE, result.error or "", self.transport
            )
            for payload, result in zip(payloads, results, strict=True)
            if isinstance(result, SendResult) and result.suppress
        ]
        if refused:
            suppressions.suppress(self.ctx.session, refused, self.ctx.clock())

    def _loading(self) -> sa.Select[Any]:
        """The chunk's rows with their guest's values now: built once per batch, each chunk
        binds its ids."""
        suppressed = sa.null() if self.suppression is None else self.suppression
        return (
            sa.select(
                Delivery.id,
                Delivery.attempts,
                Guest.name,
                self.address.label("address"),
                Guest.token,
                Guest.unsubscribed_at,
                Guest.removed_at,
                Delivery.name.label("kept_name"),
                Delivery.email.label("kept_address"),
                suppressed.label("suppressed"),
            )
            .join(Guest, Guest.id == Delivery.guest_id)
            .where(Delivery.id.in_(sa.bindparam("ids", expanding=True)))
            .order_by(Delivery.id)
        )

    def _load(self, ids: list[int]) -> list[Any]:
        rows = self.ctx.session.connection().execute(self.loading, {"ids": ids}).all()
        self.ctx.session.commit()  # end the read before the slow part
        return list(rows)

    def _compose(self, rows: list[Any]) -> tuple[list[Outcome], list[Payload]]:
        """Payloads to send, and the outcomes already known (skips, render failures)."""
        outcomes: list[Outcome] = []
        payloads: list[Payload] = []
        for row in rows:
            if row.removed_at is not None:  # removed after the delivery was made
                outcomes.append((row.id, row.attempts, rules.Skip(REASON_REMOVED)))
                continue
            if row.unsubscribed_at is not None:
                outcomes.append((row.id, row.attempts, rules.Skip(REASON_UNSUBSCRIBED)))
                continue
            if row.suppressed is not None:  # bounced or complained since the row was made
                outcomes.append((row.id, row.attempts, rules.Skip(SUPPRESSED + row.suppressed)))
                continue
            try:
                guest = SimpleNamespace(name=row.name, email=row.address, token=row.token)
                rendered = self.renderer.render(guest)  # type: ignore[arg-type]
                payload = self.composer.compose(row.id, rendered)
                if self.key_suffix:
                    key = payload.idempotency_key + self.key_suffix
                    payload = dataclasses.replace(payload, idempotency_key=key)
                payloads.append(payload)
            except Exception as error:  # noqa: BLE001 - one recipient's problem only
                log.warning("delivery %s could not be rendered: %s", row.id, error)
                failure = SendResult.permanent(f"could not render: {error}")
                outcomes.append((row.id, row.attempts, failure))
        return outcomes, payloads

    def _keep_recipients(self, rows: list[Any]) -> None:
        """The name and address a delivery goes to now, where the guest changed them since it
        was made (a corrected address before a retry): committed with the chunk's outcomes."""
        changed = [
            {"id": row.id, "name": row.name, "email": row.address}
            for row in rows
            if row.removed_at is None
            and (row.name, row.address) != (row.kept_name, row.kept_address)
        ]
        if changed:
            self.ctx.session.execute(sa.update(Delivery), changed)

    # --- heartbeat and recording -------------------------------------------------------

    def _renew_in_flight(self) -> bool:
        return self.heartbeat(list(self.in_flight))

    def heartbeat(self, claimed: list[int]) -> bool:
        """Keep this chunk's claims; the owner also keeps its lease and the batch's heartbeat."""
        ctx = self.ctx
        now = ctx.clock()
        claim.renew_claims(ctx.session, claimed, ctx.worker, now)
        owner = True
        if self.leader:
            owner = owner_heartbeat(ctx, self.batch_id, self.message_id, now)
        ctx.session.commit()
        return owner

    def record(self, outcomes: list[Outcome]) -> bool:
        """One chunk's outcomes, counters and heartbeat in one commit. False: lease lost."""
        if not outcomes:
            return self.heartbeat([])
        ctx = self.ctx
        now = ctx.clock()
        record_outcomes(ctx, self.batch_id, outcomes, now, heartbeat=self.leader)
        owner = True
        if self.leader:
            owner = claim.renew_lease(ctx.session, self.message_id, ctx.worker, now)
        ctx.session.commit()
        return owner
