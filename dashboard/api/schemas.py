"""The JSON shapes of the API (DESIGN.md section 6): one pydantic model per shape.

Output models read the rows they describe (``from_attributes``) and are what the views
return; spectree serializes them and builds /api/openapi.json from the same classes.
Input models validate request bodies and query strings (see ``dashboard.api.load_body``).
Field names are a stable interface: add, never rename.

Output schemas are exact: a field that can be null says so, one that is sometimes left
out is optional and never null, and enums come from the domain's own enum classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Generic, Self, TypedDict, TypeVar
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    RootModel,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from dashboard.dispatch.models import (
    BatchStatus,
    BatchTrigger,
    ErrorKind,
    Outcome,
)
from dashboard.dispatch.progress import batch_progress
from dashboard.dispatch.queries import Counts, SendTimes
from dashboard.events.models import EventStatus, RsvpStatus
from dashboard.messages.models import (
    FINISHED,
    Audience,
    MessageKind,
    MessageStatus,
)
from dashboard.web import MAX_PER_PAGE

MAX_BULK_GUESTS = 10_000

#: Messages in these states carry delivery ``counts``.
WITH_COUNTS = FINISHED | frozenset(
    {MessageStatus.SENDING, MessageStatus.DRY_RUN, MessageStatus.PAUSED, MessageStatus.STOPPED}
)

T = TypeVar("T")


class Context(TypedDict, total=False):
    """What an output model needs besides the row (``model_validate(row, context=...)``)."""

    tz: tzinfo  # the event's zone, for a message's send_at
    counts: Mapping[int, Counts]  # delivery figures by message id
    times: Mapping[int, SendTimes]  # when messages went out and finished, by message id
    now: datetime  # for a running batch's progress


class Derived:
    """A row seen with a few more attributes, for the fields that are not columns."""

    __slots__ = ("_extra", "_row")

    def __init__(self, row: Any, **extra: Any) -> None:
        self._row = row
        self._extra = extra

    def __getattr__(self, name: str) -> Any:
        try:
            return self._extra[name]
        except KeyError:
            return getattr(self._row, name)


def drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _is_none(value: object) -> bool:
    return value is None


def optional(**kwargs: Any) -> Any:
    """A field that may be left out but is never null: absent from the JSON when unset
    (output), or "keep the current value" (input)."""
    return Field(default=None, exclude_if=_is_none, json_schema_extra=drop_default, **kwargs)


#: ISO 8601 with the offset of the value (``+00:00`` for UTC, never ``Z``).
IsoDateTime = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
IsoText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Count = Annotated[int, Field(ge=0)]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- events and guests -------------------------------------------------------------------


class Event(Out):
    id: int
    name: str
    starts_at: IsoDateTime = Field(description="With the event's UTC offset.")
    timezone: str = Field(description="IANA time zone name.", examples=["Europe/Berlin"])
    venue: str
    status: EventStatus = Field(description="Cancelled and archived events send nothing more.")
    cancelled_at: IsoDateTime | None = Field(description="With the event's UTC offset.")
    ends_at: IsoDateTime = Field(description="With the event's UTC offset.")
    sender_name: str = Field(description="The From name of its e-mails; empty: the default.")
    reply_to: str = Field(description="The Reply-To address of its e-mails; empty: none.")
    created_at: IsoDateTime
    updated_at: IsoDateTime

    @model_validator(mode="after")
    def _in_event_zone(self) -> Self:
        zone = ZoneInfo(self.timezone)
        self.starts_at = self.starts_at.astimezone(zone)
        self.ends_at = self.ends_at.astimezone(zone)
        if self.cancelled_at is not None:
            self.cancelled_at = self.cancelled_at.astimezone(zone)
        return self


class EventEnded(Event):
    """The answer of cancel and archive: the event, and what ending it took with it."""

    cancelled_messages: Count = Field(
        description="How many draft, scheduled and overdue messages it cancelled."
    )
    notice_message_id: int | SkipJsonSchema[None] = optional(
        description="The cancellation notice being sent (cancel with `notify`)."
    )


class Guest(Out):
    id: int
    name: str
    email: str
    rsvp_status: RsvpStatus
    unsubscribed: bool
    removed: bool = Field(
        description="Removed from the guest list: in no audience or count; adding the "
        "address again brings the guest back with the same id."
    )
    removed_at: IsoDateTime | None


class RejectedRow(BaseModel):
    index: int = Field(description="Position of the row in the request's `guests`.")
    email: str | None
    errors: dict[str, str] = Field(description="Field name (or `__all__`) -> message.")


class GuestBulkResult(BaseModel):
    created: Count
    restored: Count = Field(
        description="Removed guests whose address was sent again: back on the list with their "
        "id and history."
    )
    updated: Count
    rejected: Count
    rejected_rows: list[RejectedRow]
    guests: list[Guest] = Field(
        description="The created guests, then the restored ones, then the updated ones."
    )


# --- messages ---------------------------------------------------------------------------


class MessageCounts(Out):
    """sent + failed + skipped + cancelled + pending = total."""

    total: Count
    sent: Count
    failed: Count
    skipped: Count
    pending: Count
    cancelled: Count = Field(description="Left unsent by a stop.")


def _channel_name(value: Any) -> Any:
    return getattr(value, "name", value)


#: A channel by name; which ones exist is the installation's registry (``email`` always).
ChannelName = Annotated[
    str,
    BeforeValidator(_channel_name),
    Field(description="A channel this installation provides, e.g. email.", examples=["email"]),
]


class Message(Out):
    id: int
    event_id: int
    kind: MessageKind
    label: str = Field(description="Friendly name of the kind.", examples=["1-day reminder"])
    audience: Audience
    channel: ChannelName
    subject: str
    body: str = Field(description="Markdown; e-mails carry it as HTML and as plain text.")
    attach_calendar: bool = Field(
        description="E-mails attach the event as a calendar invitation (.ics)."
    )
    status: MessageStatus
    status_reason: str | None = Field(
        description="Why the system put it in its status, e.g. overdue: "
        '"due Sat 28 Nov 09:00, found 3 days late".'
    )
    send_at: IsoDateTime | None = Field(description="With the event's UTC offset.")
    editable: bool = Field(
        description="Only drafts, scheduled and overdue messages can be changed."
    )
    hold_after: int | None = Field(
        description="Send to the first N recipients, then pause until a host resumes it."
    )
    paused_at: IsoDateTime | SkipJsonSchema[None] = optional(
        description="While paused: when (with the event's UTC offset)."
    )
    paused_by: str | SkipJsonSchema[None] = optional(description="While paused: who paused it.")
    created_at: IsoDateTime
    updated_at: IsoDateTime
    counts: MessageCounts | SkipJsonSchema[None] = optional(
        description="Only while sending and once finished."
    )
    started_at: IsoDateTime | SkipJsonSchema[None] = optional(
        description="When it went out (its first batch started); only once it went to dispatch."
    )
    finished_at: IsoDateTime | SkipJsonSchema[None] = optional(
        description="When its newest batch ended; absent while one runs."
    )

    @model_validator(mode="after")
    def _from_context(self, info: ValidationInfo) -> Self:
        context: Context = info.context or {}
        zone = context.get("tz")
        if self.send_at is not None and zone is not None:
            self.send_at = self.send_at.astimezone(zone)
        if self.paused_at is not None and zone is not None:
            self.paused_at = self.paused_at.astimezone(zone)
        times = context.get("times", {}).get(self.id)
        if times is not None:
            self.started_at = times.started_at.astimezone(zone or UTC)
            if times.finished_at is not None:
                self.finished_at = times.finished_at.astimezone(zone or UTC)
        if self.status in WITH_COUNTS:
            figures = context.get("counts", {}).get(self.id) or Counts()
            self.counts = MessageCounts.model_validate(figures)
        return self


class MessageSent(Message):
    """The answer of send-now: the message and the batch that sends it."""

    batch_id: int


class RecipientCount(Out):
    audience: Audience
    count: Count = Field(validation_alias="will_receive", description="Guests who will get it.")
    in_audience: Count
    left_out: Count = Field(description="In the audience but not receiving it.")
    unsubscribed: Count
    no_address: Count
    suppressed: Count = Field(description="On the suppression list (hard bounces, complaints).")


# --- batches ------------------------------------------------------------------------------


class BatchCounts(Out):
    """sent + failed + skipped + cancelled = total once the batch has finished (skipped
    includes dry runs; cancelled: left unsent by a stop)."""

    total: Count
    sent: Count
    failed: Count
    skipped: Count
    cancelled: Count


class Progress(Out):
    done: Count
    percent: Annotated[int, Field(ge=0, le=100)]
    eta_seconds: float | None = Field(description="Estimated seconds left, when known.")

    @field_validator("eta_seconds")
    @classmethod
    def _tenths(cls, value: float | None) -> float | None:
        return round(value, 1) if value is not None else None


class Batch(Out):
    id: int
    message_id: int
    trigger: BatchTrigger
    trigger_label: str
    initiated_by: str = Field(
        description='Who started it: a user\'s e-mail, "<e-mail> (token <name>)" for an API '
        'token, "cli:<command> ..." for a command, or "scheduler".'
    )
    status: BatchStatus
    dry_run: bool
    counts: BatchCounts
    started_at: IsoDateTime
    finished_at: IsoDateTime | None
    heartbeat_at: IsoDateTime | None
    error: str | None
    progress: Progress | SkipJsonSchema[None] = optional(description="Only while running.")

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, row: Any, info: ValidationInfo) -> Any:
        if isinstance(row, Mapping):
            return row
        now = (info.context or {}).get("now")
        running = now is not None and row.status is BatchStatus.RUNNING
        return Derived(
            row,
            counts=row,
            trigger_label=row.trigger.label,
            initiated_by=row.initiated_label or "scheduler",
            progress=batch_progress(row, now) if running else None,
        )


class BatchDetail(Batch):
    """One batch by id, with the event it belongs to."""

    event_id: int


class BatchEntry(Out):
    id: int
    delivery_id: int
    guest_id: int
    guest_name: str
    email: str
    outcome: Outcome
    reason: str | None
    error_kind: ErrorKind | None
    processed_at: IsoDateTime


# --- the audit log --------------------------------------------------------------------------


class AuditEntry(Out):
    """One change: who made it, when, and what changed."""

    id: int
    at: IsoDateTime
    actor: str = Field(
        description='A user\'s e-mail, "<e-mail> (token <name>)", "cli:<command> ..." or '
        '"scheduler".'
    )
    action: str = Field(
        description='"<object>.<verb>", e.g. "message.edit", "batch.retry_failed", "guest.remove".',
        examples=["message.schedule"],
    )
    event_id: int | None
    message_id: int | None
    batch_id: int | None
    guest_id: int | None
    details: dict[str, Any] = Field(
        description='What changed; an edit lists `changes` as `{field: {"old", "new"}}`.'
    )


# --- lists ----------------------------------------------------------------------------------


class Page(Out, Generic[T]):
    items: list[T]
    page: Annotated[int, Field(ge=1)]
    per_page: Annotated[int, Field(ge=1, le=MAX_PER_PAGE)]
    total: Count


class EventPage(Page[Event]):
    pass


class MessagePage(Page[Message]):
    pass


class BatchPage(Page[Batch]):
    pass


class EntryPage(Page[BatchEntry]):
    pass


class GuestPage(Page[Guest]):
    pass


class AuditPage(Page[AuditEntry]):
    pass


# --- errors, monitoring, the document -----------------------------------------------------


class ErrorBody(BaseModel):
    """Every error: a message for people, and for bad input the fields at fault."""

    error: str = Field(description="A human-readable message.")
    fields: dict[str, str] | SkipJsonSchema[None] = optional(
        description="On 400 for bad input: field name (or `__all__`) -> message."
    )
    current_status: MessageStatus | SkipJsonSchema[None] = optional(
        description="On 409 when a message's status refuses the change."
    )


class OpenAPIDocument(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""
