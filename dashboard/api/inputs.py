"""What the API reads: request bodies and query strings, one pydantic model each.

A view checks access first, then reads its input through these models
(``dashboard.api.load_body`` / ``load_query``), so a stranger gets 404 and a viewer 403
before anyone is told what was wrong with the body. Unknown body fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SkipValidation, WithJsonSchema
from pydantic_core import PydanticCustomError, PydanticUseDefault

from dashboard.api.schemas import MAX_BULK_GUESTS, ChannelName, drop_default, optional
from dashboard.dispatch.queries import ENTRIES_PER_PAGE, EntryFilter
from dashboard.events.models import EventStatus, RsvpStatus
from dashboard.messages.models import Audience, MessageStatus
from dashboard.messages.services import MAX_BODY, MAX_HOLD_AFTER, MAX_SUBJECT, Mode
from dashboard.web import DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE, MAX_SEARCH, clamp_page

# --- input ------------------------------------------------------------------------------------


class Input(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def _rsvp(value: Any) -> Any:
    """As the guest forms read it: any case; blank means not given."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        raise PydanticUseDefault()
    return value.strip().lower()


_ENDS_AT = (
    "ISO 8601, after `starts_at`; without an offset it is read in `timezone`. "
    "Default: two hours after the start."
)
_SENDER_NAME = "The From name of its e-mails (at most 100 characters); empty: the default sender's."
_REPLY_TO = "Where guests' replies go (an e-mail address); empty: no Reply-To."


class EventCreate(Input):
    name: str = Field(description="At most 200 characters.")
    starts_at: str = Field(
        description="ISO 8601; without an offset it is read in `timezone`.",
        examples=["2030-06-01T18:00"],
    )
    timezone: str = Field("UTC", description="IANA time zone name.")
    venue: str = Field("", description="At most 300 characters.")
    ends_at: str | None = Field(None, description=_ENDS_AT)
    sender_name: str = Field("", description=_SENDER_NAME)
    reply_to: str = Field("", description=_REPLY_TO)


class EventUpdate(Input):
    """Absent fields keep their value. Moving the event moves its still-scheduled reminders
    and keeps its length unless `ends_at` is given."""

    name: str = optional(description="At most 200 characters.")
    starts_at: str = optional(description="ISO 8601; without an offset it is read in `timezone`.")
    timezone: str = optional(description="IANA time zone name.")
    venue: str = optional(description="At most 300 characters.")
    ends_at: str = optional(description=_ENDS_AT + ' `""` sets it back to two hours.')
    sender_name: str = optional(description=_SENDER_NAME)
    reply_to: str = optional(description=_REPLY_TO)
    confirm_past: bool = optional(
        description="Required (true) to move the start into the past; its unsent reminders "
        "are then cancelled."
    )


class EventCancel(Input):
    """All optional: without `notify` the guests are not told."""

    notify: bool = Field(False, description="Send a notice to every guest who has not declined.")
    subject: str = optional(description="The notice's subject; a default one when absent.")
    body: str = optional(description="The notice's text; a default one when absent.")


class GuestRow(Input):
    name: str
    email: str
    rsvp_status: Annotated[RsvpStatus, BeforeValidator(_rsvp)] = optional(
        description="Default pending for new guests; kept for existing ones."
    )
    id: Any = optional(description="Ignored, so that a guest read from the API can be sent back.")
    unsubscribed: Any = optional(description="Ignored, like `id`.")
    removed: Any = optional(description="Ignored, like `id` (sending the row restores a guest).")
    removed_at: Any = optional(description="Ignored, like `id`.")


class GuestBulk(Input):
    """Guests matched by e-mail are updated; a bad row is reported, not fatal."""

    guests: Annotated[
        list[Annotated[GuestRow, SkipValidation]], Field(max_length=MAX_BULK_GUESTS)
    ] = Field(description="Each row is checked on its own; see `rejected_rows` in the answer.")


_SEND_AT = (
    "Required for mode=schedule, strictly in the future; without an offset it is read "
    "in the event's time zone."
)
_SUBJECT = f"One line of at most {MAX_SUBJECT} characters; placeholders like {{{{guest_name}}}}."
_BODY = f"Markdown (no raw HTML), at most {MAX_BODY:,} characters."
_CALENDAR = "Attach the event as a calendar invitation (.ics) with “Add to calendar” links."


_HOLD = (
    f"Send to the first N recipients (1 to {MAX_HOLD_AFTER:,}), then pause until a host "
    "resumes it; null: no hold."
)


class MessageCreate(Input):
    audience: Audience
    channel: ChannelName = "email"
    subject: str = Field(description=_SUBJECT)
    body: str = Field(description=_BODY)
    mode: Mode = Mode.DRAFT
    send_at: str | None = Field(None, description=_SEND_AT, examples=["2030-06-01T18:00"])
    attach_calendar: bool | None = Field(None, description=_CALENDAR + " Default: off.")
    hold_after: int | None = Field(None, description=_HOLD, examples=[20])


MAX_TEST_ADDRESSES = 5


class TestSendTo(Input):
    """Where a test goes and whose values fill it; the mail is not a delivery."""

    to: Annotated[list[str], Field(min_length=1, max_length=MAX_TEST_ADDRESSES)] = optional(
        description=f"Up to {MAX_TEST_ADDRESSES} e-mail addresses (default: yours)."
    )
    guest_id: int = optional(
        description="The guest it is rendered as (default: the preview's guest)."
    )


class TestSendDraft(TestSendTo):
    """The message's fields as on the compose form (unsaved), plus where the test goes."""

    audience: Audience = Audience.EVERYONE
    channel: ChannelName = "email"
    subject: str = Field(description=_SUBJECT)
    body: str = Field(description=_BODY)


class MessageUpdate(Input):
    """Only drafts, scheduled and overdue messages; absent fields keep their value."""

    audience: Audience = optional()
    channel: ChannelName = optional()
    subject: str = optional(description=_SUBJECT)
    body: str = optional(description=_BODY)
    mode: Mode | None = Field(
        None,
        description="Switch between draft and scheduled, or send the edited message now.",
    )
    send_at: str | None = Field(None, description=_SEND_AT)
    attach_calendar: bool = optional(description=_CALENDAR)
    hold_after: int | None = Field(None, description=_HOLD)


# --- query strings ------------------------------------------------------------------------------


def _number_or_default(value: Any) -> int:
    """Page numbers as the pages read them: junk or 0 means the field's default."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PydanticUseDefault() from None
    if number == 0:
        raise PydanticUseDefault()
    return number


PageNumber = Annotated[
    int,
    Field(ge=1, le=MAX_PAGE, description=f"Page number, from 1 (at most {MAX_PAGE:,})."),
    BeforeValidator(lambda value: clamp_page(_number_or_default(value))),
]
PerPage = Annotated[
    int,
    Field(ge=1, le=MAX_PER_PAGE, description=f"Items per page (at most {MAX_PER_PAGE})."),
    BeforeValidator(lambda value: min(max(1, _number_or_default(value)), MAX_PER_PAGE)),
]


class Query(BaseModel):
    """A query string: other parameters are ignored."""


class Paging(Query):
    page: PageNumber = 1
    per_page: PerPage = DEFAULT_PER_PAGE


def _statuses(value: Any) -> Any:
    if not value:
        return None
    if not isinstance(value, str):
        return value
    try:
        return tuple(MessageStatus(part.strip()) for part in value.split(",") if part.strip())
    except ValueError:
        raise PydanticCustomError(
            "status_filter",
            "Filter by one or more of: {valid}.",
            {"valid": ", ".join(s.value for s in MessageStatus)},
        ) from None


class RetryQuery(Query):
    permanent: bool = Field(
        False,
        description="Also retry the permanent failures (the server refused the address): "
        "only after fixing the guests' addresses. By default only temporary failures.",
    )


class MessageQuery(Paging):
    status: Annotated[
        tuple[MessageStatus, ...] | None,
        BeforeValidator(_statuses),
        WithJsonSchema(
            {
                "type": "string",
                "description": "Comma-separated statuses to keep.",
                "examples": ["scheduled,sent"],
            }
        ),
    ] = Field(None, json_schema_extra=drop_default)


def _event_statuses(value: Any) -> Any:
    if not value or not isinstance(value, str):
        return value or None
    try:
        return tuple(EventStatus(part.strip()) for part in value.split(",") if part.strip())
    except ValueError:
        raise PydanticCustomError(
            "status_filter",
            "Filter by one or more of: {valid}.",
            {"valid": ", ".join(s.value for s in EventStatus)},
        ) from None


class EventQuery(Paging):
    status: Annotated[
        tuple[EventStatus, ...] | None,
        BeforeValidator(_event_statuses),
        WithJsonSchema(
            {
                "type": "string",
                "description": "Comma-separated statuses to keep (default: all).",
                "examples": ["active,cancelled"],
            }
        ),
    ] = Field(None, json_schema_extra=drop_default)


class RecipientCountQuery(Query):
    audience: Audience


class GuestQuery(Paging):
    include_removed: bool = Field(
        False, description="Also list guests removed from the list (1/true/yes/on)."
    )
    q: str = Field(
        "",
        description=f"Part of the guest's name or e-mail (case-insensitive); "
        f"the first {MAX_SEARCH} characters count.",
    )


class AuditQuery(Paging):
    message_id: int | None = Field(
        None, description="Only the entries of this message (and its batches)."
    )


class EntryQuery(Query):
    status: Annotated[EntryFilter, BeforeValidator(lambda v: v or EntryFilter.ALL)] = Field(
        EntryFilter.ALL, description="Outcome filter; skipped includes dry_run."
    )
    q: str = Field(
        "",
        description=f"Part of the guest's name or e-mail (case-insensitive); "
        f"the first {MAX_SEARCH} characters count.",
    )
    page: PageNumber = 1
    per_page: PerPage = ENTRIES_PER_PAGE
