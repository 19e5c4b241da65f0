"""The compose form, shared by "new message" and "edit message".

The form only parses; the rules (lengths, CR/LF, placeholders, future send time)
live in ``messages.services`` so the page and the API refuse the same things.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from dashboard.dispatch import channels
from dashboard.events.models import Event
from dashboard.messages.models import Audience, Message, MessageStatus
from dashboard.messages.services import MAX_HOLD_AFTER, Mode

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


class ComposeForm(FlaskForm):
    audience = SelectField(
        "Audience",
        choices=[SelectChoice(a.value, a.label) for a in Audience],
        default=Audience.EVERYONE.value,
    )
    channel = SelectField(
        "Channel",
        choices=[],
        default=channels.EMAIL.name,
    )
    subject = StringField("Subject")
    body = TextAreaField("Message", render_kw={"rows": 10})
    mode = RadioField(
        "When", choices=[SelectChoice(m.value, m.label) for m in Mode], default=Mode.DRAFT.value
    )
    send_at = DateTimeLocalField("Send at", format=LOCAL_FORMATS, validators=[Optional()])
    attach_calendar = BooleanField(
        "Attach a calendar invitation (.ics) and “Add to calendar” links"
    )
    hold_after = IntegerField(
        "Send to the first N guests, then wait for me",
        validators=[
            Optional(),
            NumberRange(1, MAX_HOLD_AFTER, f"A number from 1 to {MAX_HOLD_AFTER:,}, or empty."),
        ],
        render_kw={"min": 1, "max": MAX_HOLD_AFTER, "inputmode": "numeric"},
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.channel.choices = [SelectChoice(c.name, c.label) for c in channels.available()]

    def send_at_local(self) -> datetime | None:
        """The naive local date-time the host picked; the service reads it in the event's zone."""
        return self.send_at.data

    def fill_from(self, message: Message, event: Event) -> None:
        self.audience.data = message.audience.value
        self.channel.data = message.channel.value
        self.subject.data = message.subject
        self.body.data = message.body
        self.attach_calendar.data = message.attach_calendar
        self.hold_after.data = message.hold_after
        timed = message.status in (MessageStatus.SCHEDULED, MessageStatus.OVERDUE)
        self.mode.data = Mode.SCHEDULE.value if timed else Mode.DRAFT.value
        self.send_at.data = (
            message.send_at.astimezone(event.tz).replace(tzinfo=None, second=0, microsecond=0)
            if message.send_at
            else None
        )
