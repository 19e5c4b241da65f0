"""SES (API v2, raw content) against moto's server on loopback, with faults injected."""

from __future__ import annotations

import dataclasses
import email
from collections import Counter
from email.policy import default as policy

import pytest

from dashboard.dispatch.mime import MessageBuilder
from dashboard.dispatch.models import BatchStatus, DeliveryStatus, ErrorKind
from dashboard.dispatch.ses import SESSettings, SESTransport
from dashboard.dispatch.transports import Payload, Refused, SlowDown, Unreachable
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.helpers import batches_of, deliveries_of
from tests.ses_server import CREDENTIALS, REGION, SESServer

SENDER = "Events <noreply@example.org>"


@pytest.fixture(scope="module")
def ses_running():
    server = SESServer().start()
    yield server
    server.stop()


@pytest.fixture
def ses_server(ses_running, monkeypatch):
    for name, value in CREDENTIALS.items():  # boto3's usual chain reads the environment
        monkeypatch.setenv(name, value)
    ses_running.reset()
    return ses_running


def payload(n: int, to: str | None = None) -> Payload:
    builder = MessageBuilder(SENDER, "example.org")
    to = to or f"guest{n}@example.org"
    reference = builder.message_id(1, n)
    data = builder.build(
        to_name=f"Guest {n}",
        to_email=to,
        subject=f"Hello {n}",
        body="Dear guest\n",
        message_id=reference,
        unsubscribe_url=f"http://x/u/{n}",
    )
    return Payload(n, builder.sender_address, to, data, reference, f"delivery-{n}")


def transport(server: SESServer) -> SESTransport:
    return SESTransport(SESSettings(region=REGION, endpoint_url=server.url, timeout=5))


def test_raw_content_reaches_ses_with_its_message_id_as_provider_id(ses_server):
    result = transport(ses_server).send(payload(1))
    [stored] = ses_server.sent()
    assert result.ok and result.provider_id == stored["id"]
    mail = email.message_from_string(stored["raw_data"], policy=policy)
    assert mail["Subject"] == "Hello 1" and mail["To"].addresses[0].username == "guest1"
    assert mail["List-Unsubscribe"] == "<http://x/u/1>"


def test_an_unverified_sender_is_refused_settings_not_a_recipient_failure(ses_server):
    ses_server.reset(verified=None)
    with pytest.raises(Refused) as caught:
        transport(ses_server).send(payload(1))
    assert "MessageRejected" in str(caught.value) and "MAIL_DEFAULT_SENDER" in caught.value.setting


@pytest.mark.parametrize(
    "status, code, message, expected",
    [
        (429, "TooManyRequestsException", "Maximum sending rate exceeded.", "slow"),
        (400, "Throttling", "Daily message quota exceeded.", "quota"),
        (500, "InternalFailure", "", ErrorKind.TRANSIENT),
        (400, "MessageRejected", "Illegal address", ErrorKind.PERMANENT),
        (403, "AccessDeniedException", "not authorized", "refused"),
    ],
)
def test_ses_errors_are_classified(ses_server, status, code, message, expected):
    ses_server.fail_next(status, code, message)
    sender = transport(ses_server)
    if expected in ("slow", "quota"):
        with pytest.raises(SlowDown) as slow:
            sender.send(payload(1))
        assert slow.value.quota is (expected == "quota")
    elif expected == "refused":
        with pytest.raises(Refused):
            sender.send(payload(1))
    else:
        result = sender.send(payload(1))
        assert result.kind is expected and code in result.error
    assert ses_server.sent() == []


def test_ses_out_of_reach_is_unreachable(ses_server):
    sender = SESTransport(SESSettings(region=REGION, endpoint_url="http://127.0.0.1:9", timeout=2))
    with pytest.raises(Unreachable, match="cannot reach SES"):
        sender.send(payload(1))


# --- the dispatcher through SES --------------------------------------------------------------


@pytest.fixture
def app_env(app_env, ses_server):
    return {
        **app_env,
        **ses_server.config(),
        "MAIL_DEFAULT_SENDER": SENDER,
        "DISPATCH_CONCURRENCY": "2",
    }


def test_fault_suite_every_guest_once_429s_cost_nothing_no_batch_left_running(
    dispatcher, make_event, make_guests, make_message, ses_server
):
    event = make_event()
    make_guests(event, 40)
    message = make_message(event)
    dispatcher.settings = dataclasses.replace(
        dispatcher.settings, slow_down_seconds=0.05, retry_base_seconds=0
    )
    ses_server.fail_next(429, "TooManyRequestsException", "Maximum sending rate exceeded.", 3)
    ses_server.fail_next(500, "InternalFailure", "Try again")

    for _ in range(3):
        dispatcher.poll()

    db.session.refresh(message)
    assert message.status is MessageStatus.SENT
    received = Counter(ses_server.recipients())
    assert len(received) == 40 and set(received.values()) == {1}
    deliveries = deliveries_of(message)
    assert all(d.status is DeliveryStatus.SENT for d in deliveries)
    # The 500 cost one recipient one attempt; the 429s cost nobody anything.
    assert Counter(d.attempts for d in deliveries) == {1: 39, 2: 1}
    assert {d.provider_message_id for d in deliveries} == {m["id"] for m in ses_server.sent()}
    assert all(b.status is not BatchStatus.RUNNING for b in batches_of(message))
