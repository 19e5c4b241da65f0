"""Filter forms of the admin pages (GET, so no CSRF token); the retry forms carry one."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import Optional, ValidationError

from dashboard.dispatch.models import BatchStatus

STATUS_CHOICES = [SelectChoice("", "All statuses")] + [
    SelectChoice(s.value, s.label) for s in BatchStatus
]


class BatchFilterForm(FlaskForm):
    class Meta:
        csrf = False

    status = SelectField("Status", choices=STATUS_CHOICES, default="", validators=[Optional()])


def _coerce_event(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value)


class FailureFilterForm(FlaskForm):
    """Event (one with failures) and a UTC date range of the last failure."""

    class Meta:
        csrf = False

    event = SelectField(
        "Event", coerce=_coerce_event, validators=[Optional()], validate_choice=False
    )
    since = DateField("From (UTC)", validators=[Optional()])
    until = DateField("Until (UTC, inclusive)", validators=[Optional()])

    def validate_until(self, field: DateField) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The end date is before the start date.")
