"""Live progress that tells the truth: recipients count as the mail server answers them
(not once per recorded chunk), the estimate is the rate of the last seconds (it does not
grow while a group is on its way), and a batch whose heartbeat is late says "no sign of
life for N s" instead of an estimate."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from dashboard.dispatch import live
from dashboard.dispatch.live import Answered
from dashboard.dispatch.models import Batch, BatchStatus, BatchTrigger
from dashboard.dispatch.progress import batch_progress
from dashboard.dispatch.transports import SendResult, Transport, TransportSpec, Unreachable
from dashboard.extensions import db
from dashboard.messages.models import Message, MessageStatus
from tests.helpers import HX


def _running(now, **counts) -> Batch:
    values = {
        "id": 1,
        "status": BatchStatus.RUNNING,
        "started_at": now - timedelta(seconds=12),
        "heartbeat_at": now - timedelta(seconds=2),
        "total": 55,
        "sent": 4,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
        **counts,
    }
    return Batch(**values)


def test_answered_recipients_count_and_the_estimate_is_the_recent_rate(now):
    batch = _running(now)
    recorded_only = batch_progress(batch, now)
    assert (recorded_only.done, recorded_only.percent) == (4, 7)

    shown = batch_progress(batch, now, Answered(count=20, rate=5.0))
    assert (shown.done, shown.answered, shown.percent) == (20, 16, 36)
    assert shown.eta_seconds == 7.0  # 35 left at 5 a second, not 12 s * 51 / 4
    assert shown.eta_text == "about 7 s left"


def test_no_answer_lately_gives_no_estimate_rather_than_a_growing_one(now):
    stalled = batch_progress(_running(now), now, Answered(count=4, rate=0.0))
    assert stalled.eta_seconds is None and stalled.eta_text == "estimating time left"


def test_a_late_heartbeat_says_no_sign_of_life(now):
    batch = _running(now, heartbeat_at=now - timedelta(seconds=40))
    late = batch_progress(batch, now, None, late_after=timedelta(seconds=30))
    assert late.silent_for == timedelta(seconds=40)
    assert late.eta_seconds is None and late.eta_text == "no sign of life for 40 s"
    on_time = batch_progress(batch, now, None, late_after=timedelta(seconds=60))
    assert on_time.silent_for is None and on_time.eta_text.startswith("about")


class _Answering(Transport):
    def send(self, payload):
        if payload == "down":
            raise Unreachable("down")
        return SendResult(True, dry_run=payload == "dry")


def test_the_counting_transport_counts_answers_not_outages_or_dry_runs():
    spec = live.counted(TransportSpec("fake", _Answering), ("test", 987_654))
    transport = spec.make()
    transport.send_group(["a", "b"])
    transport.send_group(["dry"])
    transport.send_group(["c", "down", "d"])  # the rest of a group after an outage is not tried
    answered = live.answered(("test", 987_654))
    assert answered is not None and answered.count == 3
    assert answered.rate is not None and answered.rate > 0
    assert live.answered(("test", 987_655)) is None  # a batch this process does not send


def test_a_real_run_counts_every_answer(sent_with_failures):
    _, _, batch = sent_with_failures
    answered = live.answered(live.key(db.session, batch.id))
    assert answered is not None and answered.count == batch.sent + batch.failed == 6


def test_the_live_pieces_say_no_sign_of_life(
    client, auth, owner, event, make_message, make_batch, now
):
    message = make_message(event)
    batch = make_batch(message, total=10, sent=3, heartbeat_at=now - timedelta(seconds=45))
    db.session.commit()
    auth.login(owner)
    piece = client.get(f"/events/{event.id}/messages/{message.id}/progress", headers=HX).text
    assert "no sign of life for 4" in piece  # 45 s, give or take the test's own time
    assert "left" not in piece.split("progress-text")[1].split("</p>")[0]
    page = client.get(f"/events/{event.id}/batches/{batch.id}/progress", headers=HX).text
    assert "no sign of life for 4" in page and "running for" not in page


def test_a_silent_batch_can_be_resumed_at_once(
    client, auth, owner, event, make_guests, make_message, make_batch, dispatcher, now
):
    make_guests(event, 2)
    message = make_message(event, status=MessageStatus.SENDING)
    silent = now - timedelta(seconds=45)
    db.session.execute(
        sa.update(Message)
        .where(Message.id == message.id)
        .values(worker="gone-worker", heartbeat_at=silent)
    )
    stalled = make_batch(message, heartbeat_at=silent, worker="gone-worker")
    auth.login(owner)
    piece = client.get(f"/events/{event.id}/messages/{message.id}/progress", headers=HX).text
    resume = f"/events/{event.id}/messages/{message.id}/resume-stalled"
    assert f'hx-post="{resume}"' in piece and ">Resume</button>" in piece
    assert ">Pause</button>" not in piece

    answer = client.post(resume, headers=HX)
    assert answer.status_code == 200 and "is being sent again" in answer.text
    db.session.expire_all()
    assert db.session.get(Batch, stalled.id).status is BatchStatus.INTERRUPTED
    assert "No sign of life for 4" in db.session.get(Batch, stalled.id).error
    queued = db.session.scalars(sa.select(Batch).where(Batch.trigger == BatchTrigger.RESUME)).one()
    assert queued.initiated_label == owner.email
    assert client.post(resume, headers=HX).status_code == 409  # nothing silent any more

    dispatcher.poll()  # the next dispatcher adopts the new batch at once
    db.session.expire_all()
    assert db.session.get(Message, message.id).status is MessageStatus.SENT
    assert db.session.get(Batch, queued.id).sent == 2


def test_a_batch_with_a_recent_heartbeat_is_not_resumed(
    client, auth, owner, event, make_message, make_batch, now
):
    message = make_message(event, status=MessageStatus.SENDING)
    make_batch(message, heartbeat_at=now - timedelta(seconds=5))
    auth.login(owner)
    url = f"/events/{event.id}/messages/{message.id}"
    assert ">Pause</button>" in client.get(f"{url}/progress", headers=HX).text
    refused = client.post(f"{url}/resume-stalled", headers=HX)
    assert refused.status_code == 409 and "nothing to resume" in refused.text
