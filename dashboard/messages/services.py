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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.auth.models import User
from dashboard.database import count_by
from dashboard.db_types import Words
from dashboard.dispatch import channels, states
from dashboard.dispatch.channels import Channel
from dashboard.dispatch.models import Batch
from dashboard.dispatch.services import start_send_now
from dashboard.errors import ValidationError
from dashboard.events.models import Event
from dashboard.messages import placeholders
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
    actor: User | None,
    *,
    audience: Audience | str,
    channel: Channel | str = channels.EMAIL,
    subject: str,
    body: str,
    mode: Mode | str = Mode.DRAFT,
    send_at: str | datetime | None = None,
    now: datetime,
    kind: MessageKind = MessageKind.CUSTOM,
    attach_calendar: bool | None = None,
) -> Message:
    """A new draft, scheduled message, or one handed to dispatch at once (send_now).

    ``attach_calendar`` None: reminders attach the calendar invitation, others do not.
    For send_now the caller commits and then wakes the scheduler.
    """
    errors: dict[str, str] = {}
    fields: tuple[Audience, Channel, str, str] | None = None
    try:
        fields = clean_message_fields(audience, channel, subject, body)
    except ValidationError as error:
        errors.update(error.errors)
    try:
        clean_mode = _clean_mode(mode, tuple(Mode))
        when = parse_send_at(send_at, event.timezone)
        if clean_mode is Mode.SCHEDULE:
            when = _check_future(when, now)
    except ValidationError as error:
        errors.update(error.errors)
    if errors or fields is None:
        raise ValidationError(errors)

    clean_audience, clean_channel, clean_subject, clean_body = fields
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
        created_by_id=actor.id if actor else None,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    if clean_mode is Mode.SEND_NOW:
        send_now(session, message, actor, now=now)
    return message


# --- change ------------------------------------------------------------------------


def update_message(
    session: Session,
    message: Message,
    *,
    now: datetime,
    actor: User | None = None,
    audience: Audience | str | _Unset = UNSET,
    channel: Channel | str | _Unset = UNSET,
    subject: str | _Unset = UNSET,
    body: str | _Unset = UNSET,
    mode: Mode | str | None = None,
    send_at: str | datetime | None | _Unset = UNSET,
    attach_calendar: bool | _Unset = UNSET,
) -> Message:
    """Change a draft or scheduled message; UNSET fields keep their value.

    ``mode`` switches between draft and schedule (or hands the edited message to
    dispatch with send_now); None keeps the current status. A scheduled message
    needs a future send time whenever the time changes or it becomes scheduled.
    """
    current = MessageStatus(message.status)
    if current not in EDITABLE:
        raise states.refusal(current, MessageStatus.DRAFT)
    errors: dict[str, str] = {}
    fields: tuple[Audience, Channel, str, str] | None = None
    try:
        fields = clean_message_fields(
            message.audience if audience is UNSET else audience,
            message.channel if channel is UNSET else channel,
            message.subject if subject is UNSET else subject,
            message.body if body is UNSET else body,
        )
    except ValidationError as error:
        errors.update(error.errors)
    try:
        target, clean_mode, when = _target_and_time(message, mode, send_at, now)
    except ValidationError as error:
        errors.update(error.errors)
    if errors or fields is None:
        raise ValidationError(errors)
    audience_, channel_, subject_, body_ = fields
    moved = states.move_message(
        session,
        message.id,
        target,
        now=now,
        expected=EDITABLE,
        audience=audience_,
        channel=channel_,
        subject=subject_,
        body=body_,
        send_at=when,
        attach_calendar=message.attach_calendar if attach_calendar is UNSET else attach_calendar,
    )
    session.refresh(message)
    if not moved:  # the scheduler (or another tab) got there first
        raise states.refusal(message.status, MessageStatus.DRAFT)
    if clean_mode is Mode.SEND_NOW:
        send_now(session, message, actor, now=now)
    return message


def _target_and_time(
    message: Message, mode: Mode | str | None, send_at: Any, now: datetime
) -> tuple[MessageStatus, Mode | None, datetime | None]:
    """Where an edit takes the message (its status and send time), or ValidationError."""
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
    else:
        time_changes = current is not MessageStatus.SCHEDULED
    must_be_future = time_changes or when is None
    if target is MessageStatus.SCHEDULED and clean_mode is not Mode.SEND_NOW and must_be_future:
        when = _check_future(when, now)
    return target, clean_mode, when


def schedule_message(
    session: Session, message: Message, *, send_at: str | datetime, now: datetime
) -> Message:
    """draft|scheduled -> scheduled at ``send_at`` (strictly in the future)."""
    return update_message(session, message, now=now, mode=Mode.SCHEDULE, send_at=send_at)


def cancel_message(
    session: Session, message: Message, *, now: datetime, actor: User | None = None
) -> Message:
    """draft|scheduled -> cancelled; anything else raises IllegalTransition (409)."""
    moved = states.move_message(
        session, message.id, MessageStatus.CANCELLED, now=now, expected=EDITABLE
    )
    session.refresh(message)
    if not moved:
        raise states.refusal(message.status, MessageStatus.CANCELLED)
    return message


def send_now(session: Session, message: Message, actor: User | None, *, now: datetime) -> Batch:
    """Hand a draft or scheduled message to dispatch (atomic claim). Commit, then wake."""
    return start_send_now(session, message, actor, now)


# --- reading -----------------------------------------------------------------------


class Tab(Words):
    SCHEDULED = "scheduled"
    SENT = "sent"
    CANCELLED = "cancelled"

    @property
    def statuses(self) -> tuple[MessageStatus, ...]:
        return TAB_STATUSES[self]


TAB_STATUSES: dict[Tab, tuple[MessageStatus, ...]] = {
    Tab.SCHEDULED: (MessageStatus.DRAFT, MessageStatus.SCHEDULED),
    Tab.SENT: (
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.SENT_WITH_FAILURES,
        MessageStatus.FAILED,
    ),
    Tab.CANCELLED: (MessageStatus.CANCELLED,),
}


def tab_for(status: MessageStatus) -> Tab:
    return next(tab for tab, statuses in TAB_STATUSES.items() if status in statuses)


def messages_query(
    event_id: int, statuses: tuple[MessageStatus, ...] | None = None, tab: Tab | None = None
) -> sa.Select[tuple[Message]]:
    """Newest first: by send time on the Sent tab, by creation elsewhere."""
    stmt = sa.select(Message).where(Message.event_id == event_id)
    if statuses:
        stmt = stmt.where(Message.status.in_([s.value for s in statuses]))
    if tab is Tab.SENT:
        return stmt.order_by(
            sa.func.coalesce(Message.send_at, Message.updated_at).desc(), Message.id.desc()
        )
    return stmt.order_by(Message.id.desc())


def tab_counts(session: Session, event_id: int) -> dict[Tab, int]:
    by_status = count_by(session, Message.status, Message.event_id == event_id)
    return {
        tab: sum(by_status.get(status, 0) for status in statuses)
        for tab, statuses in TAB_STATUSES.items()
    }


def get_message_of(session: Session, event: Event, message_id: int) -> Message | None:
    """The message if it belongs to ``event``; None for another event's id (answer 404)."""
    message = session.get(Message, message_id)
    if message is None or message.event_id != event.id:
        return None
    return message
