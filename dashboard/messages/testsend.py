"""A test send: the message as one guest would get it, through the production path, to a
few addresses a host chooses (their own, by default).

The same renderer, channel composer (MIME and headers) and transport as a real send; only
three things differ, on purpose: the subject starts with "[Test] ", the guest's links are
inert (like the preview's: a guest's token is their only credential), and the Message-ID
and idempotency key are the test's own (a provider must not take it for a delivery it has
seen, and a mail client must not take two tests for one message). Nothing is recorded as
a delivery: the audit log keeps who sent which test, to whom and with what result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.models import AuditEntry
from dashboard.audit.services import Actor, record
from dashboard.dispatch.channels import Channel
from dashboard.dispatch.settings import DispatchSettings
from dashboard.dispatch.transports import Payload, SendResult, TransportSpec, Unreachable
from dashboard.errors import Conflict, ValidationError
from dashboard.events.addresses import normalize_email
from dashboard.events.models import Event, Guest
from dashboard.messages.audience import sample_guest
from dashboard.messages.models import Audience, Message
from dashboard.messages.rendering import MessageRenderer
from dashboard.messages.services import clean_message_fields

ACTION = "message.test_send"
PREFIX = "[Test] "
MAX_ADDRESSES = 5
#: How many test sends one user may make an hour (each to up to MAX_ADDRESSES addresses).
PER_HOUR = 20
_SEPARATORS = re.compile(r"[\s,;]+")


class TooManyTestSends(Exception):
    """The user's hourly allowance of test sends is used up (HTTP 429)."""


@dataclass(frozen=True)
class AddressResult:
    to: str
    accepted: bool
    error: str | None = None


@dataclass(frozen=True)
class Report:
    results: list[AddressResult]
    subject: str
    rendered_as: str


@dataclass(frozen=True)
class Draft:
    """The fields a test renders: a saved message's, or the compose form's unsaved ones."""

    audience: Any
    channel: Any
    subject: Any
    body: Any
    message_id: int | None = None
    attach_calendar: bool = False


def draft_of(message: Message) -> Draft:
    """A saved message as a test renders it; only one that has not gone out can be tested."""
    if not message.editable:
        raise Conflict(
            f"This message is {message.status.label.lower()}: only drafts, scheduled and overdue "
            "messages are sent as a test. Duplicate it to try a change."
        )
    return Draft(
        message.audience,
        message.channel,
        message.subject,
        message.body,
        message.id,
        message.attach_calendar,
    )


def clean_addresses(raw: Sequence[str] | str | None, default: str | None) -> list[str]:
    """Up to five addresses (comma- or space-separated text, or a list); none means ``default``."""
    if isinstance(raw, str):
        raw = [part for part in _SEPARATORS.split(raw) if part]
    addresses = [str(item).strip() for item in raw or [] if str(item).strip()]
    if not addresses:
        if not default:
            raise ValidationError({"to": "Give at least one e-mail address."})
        addresses = [default]
    valid, bad = [], []
    for address in addresses:
        try:
            valid.append(normalize_email(address))  # the same rule as a guest's address
        except ValidationError:
            bad.append(address)
    if bad:
        shown = ", ".join(f"“{address[:60]}”" for address in bad[:3])
        raise ValidationError({"to": f"Not an e-mail address: {shown}."})
    unique = list(dict.fromkeys(valid))
    if len(unique) > MAX_ADDRESSES:
        raise ValidationError({"to": f"At most {MAX_ADDRESSES} addresses for a test."})
    return unique


def check_allowance(session: Session, actor: Actor, now: datetime, per_hour: int) -> None:
    """TooManyTestSends once ``actor`` has sent ``per_hour`` tests in the last hour."""
    since = now - timedelta(hours=1)
    mine = (
        AuditEntry.actor_user_id == actor.user_id
        if actor.user_id is not None
        else AuditEntry.actor == actor.label[:300]
    )
    times = session.scalars(
        sa.select(AuditEntry.at)
        .where(AuditEntry.action == ACTION, AuditEntry.at > since, mine)
        .order_by(AuditEntry.at)
    ).all()
    if len(times) >= per_hour:
        wait = max(
            1, int((times[len(times) - per_hour] + timedelta(hours=1) - now).total_seconds())
        )
        raise TooManyTestSends(
            f"You have sent {len(times)} test e-mails in the last hour; the limit is {per_hour} "
            f"an hour. Try again in {_minutes(wait)}."
        )


def _minutes(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return "a minute" if minutes <= 1 else f"{minutes} minutes"


def render_as(
    session: Session, event: Event, audience: Audience, channel: Channel, guest_id: int | None
) -> Any:
    """The guest a test is rendered as: the one asked for, else the preview's guest, else a
    stand-in (an empty audience can still be tested)."""
    if guest_id is not None:
        guest = session.scalar(
            sa.select(Guest).where(
                Guest.id == guest_id, Guest.event_id == event.id, Guest.removed_at.is_(None)
            )
        )
        if guest is None:
            raise ValidationError({"guest_id": "No such guest on this event's list."})
        return guest
    guest = sample_guest(session, event.id, audience, channel)
    return guest or SimpleNamespace(name="Guest Name", email="guest@example.com", token="")


def send_test(
    session: Session,
    event: Event,
    actor: Actor,
    now: datetime,
    draft: Draft,
    *,
    to: Sequence[str] | str | None,
    default_to: str | None,
    guest_id: int | None,
    settings: DispatchSettings,
    transports: Callable[[Channel], TransportSpec],
    per_hour: int = PER_HOUR,
) -> Report:
    """Send a test of ``draft`` rendered as one guest; audited, never a delivery.

    ``transports`` gives the transport the configuration picks for a channel, as dispatch
    uses it. Refused: bad fields or addresses (ValidationError), too many tests this hour
    (TooManyTestSends), a channel nothing here can carry (Conflict).
    """
    check_allowance(session, actor, now, per_hour)
    audience, channel, subject, body = clean_message_fields(
        draft.audience, draft.channel, draft.subject, draft.body
    )
    addresses = clean_addresses(to, default_to)
    guest = render_as(session, event, audience, channel, guest_id)
    try:
        transport = transports(channel)
    except (LookupError, NotImplementedError) as error:
        raise Conflict(f"Nothing here can send the {channel.label} channel: {error}") from None
    renderer = MessageRenderer(
        event,
        subject,
        body,
        settings.base_url,
        attach_calendar=draft.attach_calendar,
        preview=True,
    )
    rendered = renderer.render(guest)
    rendered = dataclasses.replace(rendered, subject=PREFIX + rendered.subject, to_name="")
    composer = channel.composer(settings, draft.message_id or 0, renderer)
    payloads = [
        _own_identity(composer.compose(0, dataclasses.replace(rendered, to_email=address)))
        for address in addresses
    ]
    outcomes = _send(transport, payloads)
    results = [_result(a, outcome) for a, outcome in zip(addresses, outcomes, strict=True)]
    sent = Report(results, rendered.subject, f"{guest.name} <{guest.email}>")
    details = {
        "to": addresses,
        "rendered_as": sent.rendered_as,
        "guest_id": getattr(guest, "id", None),
        "subject": sent.subject,
        "results": [dataclasses.asdict(result) for result in results],
    }
    ids = {"event_id": event.id, "message_id": draft.message_id}
    record(session, actor, ACTION, now=now, **ids, details=details)
    return sent


def _own_identity(payload: Payload) -> Payload:
    """The test's own Message-ID (same form as a delivery's) and idempotency key."""
    token = uuid.uuid4().hex[:16]
    old = payload.message_id
    new = re.sub(r"^<delivery-0\.", f"<test-{token}.", old) if old else old
    data = (
        payload.data.replace(old.encode(), new.encode(), 1) if old and new != old else payload.data
    )
    return dataclasses.replace(payload, message_id=new, idempotency_key=f"test-{token}", data=data)


def _send(spec: TransportSpec, payloads: list[Payload]) -> list[SendResult | Unreachable]:
    transport = spec.make()
    try:
        transport.open()
        return transport.send_group(payloads)
    except Unreachable as error:
        return [error] * len(payloads)
    finally:
        with contextlib.suppress(Exception):  # closing must not hide the results
            transport.close()


def _result(address: str, outcome: SendResult | Unreachable) -> AddressResult:
    if isinstance(outcome, Unreachable):
        return AddressResult(address, False, f"The mail server cannot be reached: {outcome}")
    if outcome.dry_run:
        return AddressResult(address, False, "Dry run is on (DISPATCH_DRY_RUN): nothing was sent.")
    return AddressResult(address, outcome.ok, None if outcome.ok else outcome.error)
