"""Composing, editing, scheduling and cancelling messages. Plain functions; the caller commits.

Every change to an existing message is one guarded write on its row through
``dispatch.states.move_message`` (``UPDATE ... WHERE id = ? AND status IN ('draft',
'scheduled')``). If that touches no row, the scheduler (or another browser tab) got there
first and the change is refused with IllegalTransition. If it touches the row, this
transaction holds the row's write lock (the whole database on SQLite) until commit, so
the scheduler's own conditional claim cannot slip in between the check and the write.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, changes, record
from dashboard.dispatch import channels, states
from dashboard.dispatch.channels import Channel
from dashboard.dispatch.models import Batch
from dashboard.dispatch.services import SENDABLE_NOW, start_send_now
from dashboard.errors import Conflict, ValidationError
from dashboard.events.models import Event
from dashboard.messages import placeholders
from dashboard.messages.checks import check_receivers, check_sendable
from dashboard.messages.models import (
    EDITABLE,
    Audience,
    Message,
    MessageKind,
    MessageStatus,
)
from dashboard.timeutil import parse_local_datetime

MAX_SUBJECT = 300
MAX_BODY = 100 * 1024  # characters


class Mode(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULE = "schedule"
    SEND_NOW = "send_now"

    @property
    def label(self) -> str:
        return {"draft": "Save as draft", "schedule": "Schedule", "send_now": "Send now"}[
            self.value
        ]


class _Unset(enum.Enum):
    UNSET = "unset"


#: "Leave this field as it is" for partial updates (PATCH), distinct from None.
UNSET: Final = _Unset.UNSET


# --- validation --------------------------------------------------------------------


def parse_send_at(value: str | datetime | None, timezone: str) -> datetime | None:
    """ISO 8601 with offset, or naive read in the event's time zone. Returns aware UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_local_datetime(value, timezone, "send_at")


def _clean_mode(mode: Mode | str | None, allowed: tuple[Mode, ...]) -> Mode:
    try:
        value = Mode(mode)
    except ValueError:
        choices = ", ".join(m.value for m in allowed)
        raise ValidationError({"mode": f"Mode must be one of: {choices}."}) from None
    if value not in allowed:
        choices = ", ".join(m.value for m in allowed)
        raise ValidationError({"mode": f"Mode must be one of: {choices}."})
    return value


def clean_message_fields(
    audience: Any, channel: Any, subject: Any, body: Any
) -> tuple[Audience, Channel, str, str]:
    """Validate the envelope; every bad field is reported at once."""
    errors: dict[str, str] = {}
    try:
        clean_audience = Audience(audience)
    except ValueError:
        errors["audience"] = "Choose an audience: " + ", ".join(a.value for a in Audience) + "."
        clean_audience = Audience.EVERYONE
    try:
        clean_channel = channels.get(channel)
    except LookupError:
        names = ", ".join(c.name for c in channels.available())
        errors["channel"] = f"Choose a channel: {names}."
        clean_channel = channels.EMAIL

    clean_subject = subject.strip() if isinstance(subject, str) else ""
    clean_body = body.replace("\r\n", "\n") if isinstance(body, str) else ""  # as browsers count
    for field, raw, clean, rule in (
        ("subject", subject, clean_subject, SUBJECT_RULE),
        ("body", body, clean_body, BODY_RULE),
    ):
        problem = _text_problem(raw, clean, rule)
        if problem:
            errors[field] = problem
    if errors:
        raise ValidationError(errors)
    return clean_audience, clean_channel, clean_subject, clean_body


@dataclass(frozen=True)
class TextRule:
    """What a subject or a body must be; the texts are the errors a host reads."""

    what: str
    required: str
    too_long: str
    limit: int
    single_line: bool = False


SUBJECT_RULE = TextRule(
    "subject",
    "A subject is required.",
    "The subject has {n} characters; at most {limit}.",
    MAX_SUBJECT,
    single_line=True,
)
BODY_RULE = TextRule(
    "message",
    "The message text is required.",
    "The message has {n:,} characters; at most {limit:,} (100 KB).",
    MAX_BODY,
)


def _text_problem(raw: Any, clean: str, rule: TextRule) -> str | None:
    if raw is not None and not isinstance(raw, str):
        return f"The {rule.what} must be text."
    if not clean.strip():
        return rule.required
    if rule.single_line and ("\r" in clean or "\n" in clean):
        return f"The {rule.what} must be a single line (no line breaks)."
    if len(clean) > rule.limit:
        return rule.too_long.format(n=len(clean), limit=rule.limit)
    try:
        placeholders.validate(clean)
    except placeholders.PlaceholderError as error:
        return str(error)
    return None


#: The largest "send to the first N": a hold is a sample, not a send in parts.
MAX_HOLD_AFTER = 100_000


def clean_hold_after(value: Any) -> int | None:
    """None (no hold) or a whole number of recipients from 1 to ``MAX_HOLD_AFTER``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError({"hold_after": "Give a whole number of guests, or leave it empty."})
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(
            {"hold_after": "Give a whole number of guests, or leave it empty."}
        ) from None
    if not 1 <= number <= MAX_HOLD_AFTER:
        raise ValidationError(
            {"hold_after": f"Give a number from 1 to {MAX_HOLD_AFTER:,}, or leave it empty."}
        )
    return number


def _check_future(send_at: datetime | None, now: datetime) -> datetime:
    if send_at is None:
        raise ValidationError({"send_at": "Choose the date and time to send it."})
    if send_at <= now:
        raise ValidationError(
            {"send_at": "That time has already passed; choose a time in the future."}
        )
    return send_at


# --- create ------------------------------------------------------------------------


def create_message(
    session: Session,
    event: Event,
    actor: Actor,
    *,
    audience: Audience | str,
    channel: Channel | str = channels.EMAIL,
    subject: str,
    body: str,
    mode: Mode | str = Mode.DRAFT,
    send_at: str | datetime | None = None,
    hold_after: int | str | None = None,
    now: datetime,
    kind: MessageKind = MessageKind.CUSTOM,
    attach_calendar: bool | None = None,
) -> Message:
    """A new draft, scheduled message, or one handed to dispatch at once (send_now).

    ``attach_calendar`` None: reminders attach the calendar invitation, others do not.
    For send_now the caller commits and then wakes the scheduler. Refused (Conflict) on a
    cancelled or archived event.
    """
    if event.closed_reason is not None:
        raise Conflict(event.closed_reason)
    fields, (clean_mode, when), hold = _every_error(
        lambda: clean_message_fields(audience, channel, subject, body),
        lambda: _new_mode_and_time(event, mode, send_at, now),
        lambda: clean_hold_after(hold_after),
    )
    clean_audience, clean_channel, clean_subject, clean_body = fields
    if clean_mode is not Mode.DRAFT:
        check_receivers(session, event.id, clean_audience, clean_channel)
    message = Message(
        event_id=event.id,
        kind=kind,
        audience=clean_audience,
        channel=clean_channel,
        subject=clean_subject,
        body=clean_body,
        attach_calendar=kind is not MessageKind.CUSTOM
        if attach_calendar is None
        else bool(attach_calendar),
        # A new row starts where its mode says; send-now then moves it like any draft.
        status=MessageStatus.SCHEDULED if clean_mode is Mode.SCHEDULE else MessageStatus.DRAFT,
        send_at=when if clean_mode is not Mode.SEND_NOW else None,
        hold_after=hold,
        created_by_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    details = {"kind": message.kind, **_audited(message)}
    record(session, actor, "message.create", now=now, **_ids(message), details=details)
    if clean_mode is Mode.SEND_NOW:
        send_now(session, message, actor, now=now)
    return message


def _new_mode_and_time(
    event: Event, mode: Any, send_at: Any, now: datetime
) -> tuple[Mode, datetime | None]:
    clean_mode = _clean_mode(mode, tuple(Mode))
    when = parse_send_at(send_at, event.timezone)
    if clean_mode is Mode.SCHEDULE:
        when = _check_future(when, now)
    return clean_mode, when


def _every_error(*steps: Callable[[], Any]) -> list[Any]:
    """Run each validation step and report the field errors of all of them at once."""
    errors: dict[str, str] = {}
    results: list[Any] = []
    for step in steps:
        try:
            results.append(step())
        except ValidationError as error:
            errors.update(error.errors)
    if errors:
        raise ValidationError(errors)
    return results


# --- change ------------------------------------------------------------------------


def update_message(
    session: Session,
    message: Message,
    *,
    now: datetime,
    actor: Actor,
    audience: Audience | str | _Unset = UNSET,
    channel: Channel | str | _Unset = UNSET,
    subject: str | _Unset = UNSET,
    body: str | _Unset = UNSET,
    mode: Mode | str | None = None,
    send_at: str | datetime | None | _Unset = UNSET,
    attach_calendar: bool | _Unset = UNSET,
    hold_after: int | str | None | _Unset = UNSET,
) -> Message:
    """Change a draft, scheduled or overdue message; UNSET fields keep their value.

    ``mode`` switches between draft and schedule (or hands the edited message to dispatch
    with send_now); None keeps the status. A scheduled message needs a future send time
    whenever the time changes or it becomes scheduled; a move ends the ``status_reason``.
    """
    current = MessageStatus(message.status)
    if current not in EDITABLE:
        raise states.refusal(current, MessageStatus.DRAFT)
    fields, (target, clean_mode, when), hold = _every_error(
        lambda: clean_message_fields(
            message.audience if audience is UNSET else audience,
            message.channel if channel is UNSET else channel,
            message.subject if subject is UNSET else subject,
            message.body if body is UNSET else body,
        ),
        lambda: _target_and_time(message, mode, send_at, now),
        lambda: message.hold_after if hold_after is UNSET else clean_hold_after(hold_after),
    )
    audience_, channel_, subject_, body_ = fields
    check_sendable(session, message, audience_, channel_, target, clean_mode is Mode.SEND_NOW, now)
    before = _audited(message)
    moved = states.move_message(
        session,
        message.id,
        target,
        now=now,
        expected=[status for status in EDITABLE if states.allowed(status, target)],
        audience=audience_,
        channel=channel_,
        subject=subject_,
        body=body_,
        send_at=when,
        hold_after=hold,
        status_reason=message.status_reason if target is current else None,
        attach_calendar=message.attach_calendar if attach_calendar is UNSET else attach_calendar,
    )
    session.refresh(message)
    if not moved:  # the scheduler (or another tab) got there first
        raise states.refusal(message.status, MessageStatus.DRAFT)
    _record_edit(session, actor, message, before, now)
    if clean_mode is Mode.SEND_NOW:
        send_now(session, message, actor, now=now)
    return message


def _record_edit(
    session: Session, actor: Actor, message: Message, before: dict[str, Any], now: datetime
) -> None:
    """``message.schedule`` when it is scheduled anew or at another time, else
    ``message.edit``; nothing when nothing changed."""
    changed = changes(before, _audited(message))
    if not changed:
        return
    timed = "send_at" in changed or "status" in changed
    scheduled = timed and message.status is MessageStatus.SCHEDULED
    action = "message.schedule" if scheduled else "message.edit"
    record(session, actor, action, now=now, **_ids(message), details={"changes": changed})


def _audited(message: Message) -> dict[str, Any]:
    """The fields of a message whose changes the audit log keeps."""
    return {
        "status": message.status,
        "audience": message.audience,
        "channel": message.channel,
        "subject": message.subject,
        "body": message.body,
        "send_at": message.send_at,
        "attach_calendar": message.attach_calendar,
        "hold_after": message.hold_after,
    }


def _ids(message: Message) -> dict[str, int]:
    return {"event_id": message.event_id, "message_id": message.id}


def _target_and_time(
    message: Message, mode: Mode | str | None, send_at: Any, now: datetime
) -> tuple[MessageStatus, Mode | None, datetime | None]:
    """Where an edit takes the message (its status and send time), or ValidationError.

    An overdue message given a new send time is scheduled again.
    """
    current = MessageStatus(message.status)
    target, clean_mode, when = current, None, message.send_at
    if mode is not None:
        clean_mode = _clean_mode(mode, tuple(Mode))
        if clean_mode is Mode.DRAFT:
            target = MessageStatus.DRAFT
        elif clean_mode is Mode.SCHEDULE:
            target = MessageStatus.SCHEDULED
    if send_at is not UNSET and clean_mode is not Mode.SEND_NOW:
        when = parse_send_at(send_at, message.event.timezone)
        time_changes = True
        if current is MessageStatus.OVERDUE and clean_mode is None and when is not None:
            target = MessageStatus.SCHEDULED
    else:
        time_changes = current is not MessageStatus.SCHEDULED
    must_be_future = time_changes or when is None
    if target is MessageStatus.SCHEDULED and clean_mode is not Mode.SEND_NOW and must_be_future:
        when = _check_future(when, now)
    return target, clean_mode, when


def schedule_message(
    session: Session, message: Message, *, send_at: str | datetime, now: datetime, actor: Actor
) -> Message:
    """draft|scheduled -> scheduled at ``send_at`` (strictly in the future)."""
    return update_message(
        session, message, now=now, actor=actor, mode=Mode.SCHEDULE, send_at=send_at
    )


def cancel_message(session: Session, message: Message, *, now: datetime, actor: Actor) -> Message:
    """draft|scheduled|overdue -> cancelled; anything else raises IllegalTransition (409)."""
    was = message.status
    moved = states.move_message(
        session,
        message.id,
        MessageStatus.CANCELLED,
        now=now,
        expected=EDITABLE,
        status_reason=None,
    )
    session.refresh(message)
    if not moved:
        raise states.refusal(message.status, MessageStatus.CANCELLED)
    details = {"changes": changes({"status": was}, {"status": message.status})}
    record(session, actor, "message.cancel", now=now, **_ids(message), details=details)
    return message


def send_now(session: Session, message: Message, actor: Actor, *, now: datetime) -> Batch:
    """Hand a draft, scheduled, overdue or dry-run message to dispatch (atomic claim).
    Commit, then wake. Refused (409) when nobody would receive it."""
    if message.status not in SENDABLE_NOW:
        raise states.refusal(message.status, MessageStatus.SENDING)
    audience, channel = message.audience, message.channel
    check_sendable(session, message, audience, channel, message.status, True, now, Conflict)
    return start_send_now(session, message, actor, now)
