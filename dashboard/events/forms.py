"""Forms of the events pages. Field rules live in the services; these only shape input."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from dashboard.events.models import Role, RsvpStatus

DATETIME_LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
ROLE_CHOICES = [
    SelectChoice(role.value, role.value.capitalize())
    for role in (Role.OWNER, Role.EDITOR, Role.VIEWER)
]
RSVP_CHOICES = [SelectChoice(status.value, status.label) for status in RsvpStatus]
GUEST_ANSWERS = [
    SelectChoice(RsvpStatus.ATTENDING.value, "Yes, I will attend"),
    SelectChoice(RsvpStatus.MAYBE.value, "Maybe"),
    SelectChoice(RsvpStatus.DECLINED.value, "No, I cannot come"),
]


class EventForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired("The event needs a name."), Length(max=200)]
    )
    starts_at = DateTimeLocalField(
        "Starts at (local time of the event)",
        format=DATETIME_LOCAL_FORMATS,
        validators=[InputRequired("Enter the date and time the event starts.")],
    )
    timezone = StringField(
        "Time zone", validators=[DataRequired("Choose the event's time zone.")], default="UTC"
    )
    venue = StringField("Venue", validators=[Length(max=300)])
    ends_at = DateTimeLocalField(
        "Ends at (local time of the event)",
        format=DATETIME_LOCAL_FORMATS,
        validators=[Optional()],
    )
    sender_name = StringField("Sender", validators=[Length(max=100)])
    reply_to = EmailField("Replies go to", validators=[Length(max=254)])
    #: Shown once a save would move the event into the past: the host confirms it.
    confirm_past = BooleanField("Yes, move it into the past and cancel its unsent reminders")


class CancelEventForm(FlaskForm):
    """The confirm step of cancelling an event, with its optional notice to the guests."""

    notify = BooleanField("Send a cancellation notice to every guest who has not declined")
    subject = StringField("Subject of the notice")
    body = TextAreaField("Notice", render_kw={"rows": 8})


class CollaboratorForm(FlaskForm):
    email = EmailField(
        "User's e-mail", validators=[DataRequired("Enter the user's e-mail."), Length(max=254)]
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.EDITOR.value)


class GuestForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Name is required."), Length(max=200)])
    email = EmailField("E-mail", validators=[DataRequired("E-mail is required."), Length(max=254)])
    rsvp_status = SelectField("RSVP", choices=RSVP_CHOICES, default=RsvpStatus.PENDING.value)


class ImportUploadForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to upload.")])


class ImportConfirmForm(FlaskForm):
    token = HiddenField(validators=[DataRequired()])


class RsvpForm(FlaskForm):
    rsvp_status = RadioField(
        "Will you attend?", choices=GUEST_ANSWERS, validators=[InputRequired("Choose an answer.")]
    )


class ConfirmForm(FlaskForm):
    """A form with only its CSRF token: remove buttons, unsubscribe confirmation; a
    button's refused action collects its reason in ``form_errors``."""
