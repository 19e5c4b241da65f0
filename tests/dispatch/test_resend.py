"""Resend: the transport against a local server that follows Resend's API, then the whole
dispatcher through it with faults injected (429s, 500s, lost answers, bad keys)."""

from __future__ import annotations

import base64
import dataclasses
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.mime import MessageBuilder, unsubscribe_headers
from dashboard.dispatch.models import BatchStatus, BatchTrigger, DeliveryStatus, ErrorKind
from dashboard.dispatch.resend import ResendSettings, ResendTransport, request_body, request_key
from dashboard.dispatch.transports import Payload, Refused, SlowDown, Unreachable
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from dashboard.suppressions.models import Suppression
from tests.helpers import batches_of, deliveries_of, entries_of
from tests.resend_server import API_KEY, ResendServer


@pytest.fixture
def resend_server():
    server = ResendServer().start()
    yield server
    server.stop()


def payload(n: int, to: str | None = None) -> Payload:
    builder = MessageBuilder("Événements <noreply@example.com>", "example.com")
    to = to or f"guest{n}@example.org"
    return Payload(
        delivery_id=n,
        sender=builder.sender_address,
        recipient=to,
        data=b"",
        message_id=builder.message_id(1, n),
        idempotency_key=f"delivery-{n}",
        subject=f"Hello {n}",
        body="Dear guest",
        from_header=builder.from_display,
        headers=unsubscribe_headers(f"http://x/u/{n}"),
    )


def transport(server: ResendServer, **changes) -> ResendTransport:
    settings = ResendSettings(api_key=API_KEY, url=server.url, timeout=5)
    return ResendTransport(dataclasses.replace(settings, **changes))


# --- the transport ------------------------------------------------------------------------


def test_one_email_and_a_batch_each_get_their_own_provider_id(resend_server):
    sender = transport(resend_server)
    [single] = sender.send_group([payload(1)])
    group = sender.send_group([payload(n) for n in range(2, 7)])
    sender.close()

    assert single.ok and all(r.ok for r in group)
    ids = [email["id"] for email in resend_server.sent]
    assert [single.provider_id, *[r.provider_id for r in group]] == ids
    assert [r.path for r in resend_server.requests] == ["/emails", "/emails/batch"]
    first = resend_server.sent[0]
    assert first["from"] == "Événements <noreply@example.com>"
    assert first["to"] == ["guest1@example.org"] and first["text"] == "Dear guest"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_same_chunk_again_has_the_same_key_and_is_not_sent_twice(resend_server):
    group = [payload(n) for n in range(1, 4)]
    first = transport(resend_server).send_group(group)
    again = transport(resend_server).send_group(group)  # another process, after a crash

    assert len(resend_server.sent) == 3
    assert [r.provider_id for r in again] == [r.provider_id for r in first]
    keys = {r.key for r in resend_server.requests}
    assert len(keys) == 1
    other = request_key(group[:2], request_body(group[:2])[1])
    assert other not in keys  # another chunk, another key


def test_an_answer_lost_after_acceptance_is_asked_again_with_the_same_key(resend_server):
    resend_server.drop_next()
    results = transport(resend_server).send_group([payload(n) for n in range(1, 5)])

    assert all(r.ok for r in results)
    assert len(resend_server.sent) == 4  # accepted once, answered on the second asking
    first, second = resend_server.requests
    assert first.key == second.key and first.status == 0 and second.status == 200


@pytest.mark.parametrize(
    "status, name, kind",
    [
        (500, "internal_server_error", ErrorKind.TRANSIENT),
        (502, "bad_gateway", ErrorKind.TRANSIENT),
        (422, "validation_error", ErrorKind.PERMANENT),
    ],
)
def test_error_answers_are_classified(resend_server, status, name, kind):
    resend_server.fail_next(status, name)
    results = transport(resend_server).send_group([payload(1), payload(2)])
    assert [r.kind for r in results] == [kind, kind]
    assert all(str(status) in r.error and not r.suppress for r in results)


def test_slow_down_answers_are_nobodys_failure(resend_server):
    sender = transport(resend_server)
    resend_server.fail_next(429, "rate_limit_exceeded", retry_after="2")
    limited = sender.send_group([payload(1), payload(2)])
    assert all(isinstance(r, SlowDown) and r.retry_after == 2 and not r.quota for r in limited)
    resend_server.fail_next(429, "daily_quota_exceeded")
    [quota] = sender.send_group([payload(3)])
    assert isinstance(quota, SlowDown) and quota.quota and quota.retry_after is None
    assert resend_server.sent == []


def test_a_bad_key_refuses_and_an_absent_server_is_unreachable(resend_server):
    [refused] = transport(resend_server, api_key="re_wrong").send_group([payload(1)])
    assert isinstance(refused, Refused) and "403 invalid_api_key" in str(refused)
    assert refused.setting == "RESEND_API_KEY"
    url = resend_server.url
    resend_server.stop()
    with pytest.raises(Unreachable, match="cannot reach"):
        ResendTransport(ResendSettings(api_key=API_KEY, url=url, timeout=2)).send_group(
            [payload(1)]
        )


def test_an_invalid_recipient_fails_alone_and_is_suppressed(resend_server):
    resend_server.state.invalid = {"broken"}
    results = transport(resend_server).send_group(
        [payload(1), payload(2, "broken@example.org"), payload(3)]
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].kind is ErrorKind.PERMANENT and results[1].suppress
    assert "Invalid `to` field" in results[1].error
    assert sorted(resend_server.recipients()) == ["guest1@example.org", "guest3@example.org"]
    assert [r.provider_id for r in results if r.ok] == [e["id"] for e in resend_server.sent]


# --- the dispatcher through Resend ----------------------------------------------------------


@pytest.fixture
def app_env(app_env, resend_server):
    return {**app_env, **resend_server.config(), "DISPATCH_CONCURRENCY": "2"}


@pytest.fixture
def quick(dispatcher):
    """Short waits after a "slow down", so a test does not sleep for seconds."""
    dispatcher.settings = dataclasses.replace(
        dispatcher.settings, slow_down_seconds=0.05, max_inline_wait=1.0
    )
    return dispatcher


def test_a_message_goes_out_in_batch_requests_with_each_provider_id(
    quick, make_event, make_guests, make_message, resend_server
):
    event = make_event()
    make_guests(event, 130)
    message = make_message(event)

    quick.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    assert sorted(resend_server.recipients()) == sorted(f"guest{i}@example.org" for i in range(130))
    assert sorted(r.emails for r in resend_server.requests) == [30, 100]  # one request a group
    ids = {email["to"][0]: email["id"] for email in resend_server.sent}
    assert {d.email: d.provider_message_id for d in deliveries_of(message)} == ids


def test_a_calendar_invitation_goes_one_request_an_email_with_its_file(
    quick, make_event, make_guests, make_message, resend_server
):
    """Resend's batch endpoint drops attachments, so e-mails carrying the .ics go alone."""
    event = make_event()
    make_guests(event, 3)
    message = make_message(event)
    message.attach_calendar = True
    db.session.commit()

    quick.poll()

    assert [r.emails for r in resend_server.requests] == [1, 1, 1]
    assert sorted(resend_server.recipients()) == [f"guest{i}@example.org" for i in range(3)]
    for email in resend_server.sent:
        [attachment] = email["attachments"]
        assert attachment["filename"] == "invite.ics"
        assert base64.b64decode(attachment["content"]).startswith(b"BEGIN:VCALENDAR")


def test_fault_suite_every_guest_once_429s_cost_nothing_no_batch_left_running(
    quick, make_event, make_guests, make_message, resend_server
):
    """429s with Retry-After, a 500, an answer lost after acceptance and a refused address:
    every guest gets it exactly once, the 429s charge nobody, nothing stays running."""
    event = make_event()
    make_guests(event, 250)
    make_guests(event, 1, prefix="broken")
    message = make_message(event)
    resend_server.state.invalid = {"broken"}
    resend_server.fail_next(429, "rate_limit_exceeded", retry_after="0.1", times=2)
    resend_server.drop_next()
    resend_server.fail_next(500, "internal_server_error")
    quick.settings = dataclasses.replace(quick.settings, retry_base_seconds=0)

    for _ in range(4):
        quick.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.SENT_WITH_FAILURES
    received = Counter(resend_server.recipients())
    assert len(received) == 250 and set(received.values()) == {1}
    deliveries = deliveries_of(message)
    sent = [d for d in deliveries if d.status is DeliveryStatus.SENT]
    assert len(sent) == 250
    # The 500 cost its chunk one attempt (sent at the retry); the 429s cost nothing.
    assert Counter(d.attempts for d in sent) == {1: 150, 2: 100}
    [broken] = [d for d in deliveries if d.email.startswith("broken")]
    assert (broken.status, broken.error_kind) == (DeliveryStatus.FAILED, ErrorKind.PERMANENT)
    assert db.session.scalar(sa.select(Suppression.email)) == broken.email
    assert all(b.status is not BatchStatus.RUNNING for b in batches_of(message))
    assert [b.trigger for b in batches_of(message)] == [BatchTrigger.SCHEDULE, BatchTrigger.RETRY]


def test_a_refused_key_stops_the_batch_with_an_alert_and_charges_nobody(
    app, client, auth, quick, make_event, make_guests, make_message, resend_server, owner
):
    event = make_event()
    make_guests(event, 5)
    message = make_message(event)
    app.config["RESEND_API_KEY"] = "re_revoked"

    quick.poll()

    db.session.refresh(message)
    [batch] = batches_of(message)
    assert batch.status is BatchStatus.INTERRUPTED and "refused our credentials" in batch.error
    assert message.status is MessageStatus.SENDING and message.resume_at is not None
    assert "RESEND_API_KEY" in message.status_reason
    assert all(d.attempts == 0 for d in deliveries_of(message))
    auth.login(owner)
    page = client.get(f"/events/{event.id}/messages/{message.id}").get_data(as_text=True)
    assert "Sending stopped: the mail provider refused our credentials" in page

    app.config["RESEND_API_KEY"] = API_KEY  # fixed (and restarted)
    later = message.resume_at + timedelta(seconds=1)
    quick.clock = lambda: later
    quick.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT and message.status_reason is None
    assert len(resend_server.sent) == 5


def test_a_long_retry_after_makes_the_message_wait_and_resume(
    quick, make_event, make_guests, make_message, resend_server
):
    event = make_event()
    make_guests(event, 4)
    message = make_message(event)
    resend_server.fail_next(429, "rate_limit_exceeded", retry_after="600")

    start = quick.clock()
    quick.poll()

    db.session.refresh(message)
    [paused] = batches_of(message)
    assert paused.status is BatchStatus.INTERRUPTED and "slow down" in paused.error
    assert message.status_reason.startswith("Waiting: the mail server asked us to slow down")
    assert start + timedelta(seconds=599) <= message.resume_at <= start + timedelta(seconds=660)
    assert all(d.attempts == 0 for d in deliveries_of(message))
    assert resend_server.sent == []

    later = message.resume_at + timedelta(seconds=1)
    quick.clock = lambda: later
    quick.poll()
    db.session.refresh(message)
    assert message.status is MessageStatus.SENT and len(resend_server.sent) == 4
    assert all(d.attempts == 1 for d in deliveries_of(message))
    assert [e.outcome.value for e in entries_of(batches_of(message)[-1])] == ["sent"] * 4
