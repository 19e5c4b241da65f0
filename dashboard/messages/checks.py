"""What may be scheduled or sent: never a message that can no longer be sent, never for
nobody. The compose form, the row buttons and the API refuse with the same words."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from dashboard.dispatch.channels import Channel
from dashboard.dispatch.staleness import send_refusal
from dashboard.errors import Conflict, ValidationError
from dashboard.messages.audience import count_recipients
from dashboard.messages.models import Audience, Message, MessageStatus


def check_receivers(
    session: Session,
    event_id: int,
    audience: Audience,
    channel: Channel,
    error: type[Exception] = ValidationError,
) -> None:
    """Refuse when nobody of ``audience`` would receive it, with who is left out and why:
    a form's error on the audience (400), or ``Conflict`` (409) for a message as it is."""
    nobody = count_recipients(session, event_id, audience, channel).nobody()
    if nobody is None:
        return
    if error is ValidationError:
        raise ValidationError({"audience": nobody})
    raise error(nobody)


def check_sendable(
    session: Session,
    message: Message,
    audience: Audience,
    channel: Channel,
    target: MessageStatus,
    sends_now: bool,
    now: datetime,
    error: type[Exception] = ValidationError,
) -> None:
    """An edit (or a send-now) that schedules the message or sends it now.

    Refused with the reason (409) when it can never be sent (a reminder of an event that
    has started or is closed). Refused with ``error`` when nobody would receive it (an
    edit's error on the audience, 400; a send-now button's 409); a message that was
    scheduled already may be edited (a host fixing a reminder's text before adding guests).
    """
    if not sends_now and target is not MessageStatus.SCHEDULED:
        return
    refused = send_refusal(message, message.event, now)
    if refused is not None:
        raise Conflict(refused)
    if sends_now or message.status is not MessageStatus.SCHEDULED:
        check_receivers(session, message.event_id, audience, channel, error)
