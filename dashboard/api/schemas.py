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
from datetime import datetime, tzinfo
from typing import Annotated, Any, Generic, Literal, Self, TypedDict, TypeVar
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
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from dashboard.dispatch.models import (
    BatchStatus,
    BatchTrigger,
    DeliveryStatus,
    ErrorKind,
    Outcome,
)
from dashboard.dispatch.progress import batch_progress
from dashboard.dispatch.queries import Counts
from dashboard.events.models import RsvpStatus
from dashboard.messages.models import (
    FINISHED,
    Audience,
    MessageKind,
    MessageStatus,
)
from dashboard.web import MAX_PER_PAGE

MAX_BULK_GUESTS = 10_000

#: Messages in these states carry delivery ``counts``.
WITH_COUNTS = frozenset({MessageStatus.SENDING, *FINISHED})

T = TypeVar("T")


class Context(TypedDict, total=False):
    """What an output model needs besides the row (``model_validate(row, context=...)``)."""

    tz: tzinfo  # the event's zone, for a message's send_at
    counts: Mapping[int, Counts]  # delivery figures by message id
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
    ends_at: IsoDateTime = Field(description="With the event's UTC offset.")
    sender_name: str = Field(description="The From name of its e-mails; empty: the default.")
    reply_to: str = Field(description="The Reply-To address of its e-mails; empty: none.")
    created_at: IsoDateTime
    updated_at: IsoDateTime

    @model_validator(mode="after")
    def _in_event_zone(self) -> Self:
        self.starts_at = self.starts_at.astimezone(ZoneInfo(self.timezone))
        self.ends_at = self.ends_at.astimezone(ZoneInfo(self.timezone))
        return self


class Guest(Out):
    id: int
    name: str
    email: str
    rsvp_status: RsvpStatus
    unsubscribed: bool


class RejectedRow(BaseModel):
    index: int = Field(description="Position of the row in the request's `guests`.")
    email: str | None
    errors: dict[str, str] = Field(description="Field name (or `__all__`) -> message.")


class GuestBulkResult(BaseModel):
    created: Count
    updated: Count
    rejected: Count
    rejected_rows: list[RejectedRow]
    guests: list[Guest] = Field(description="The created guests, then the updated ones.")


# --- messages ---------------------------------------------------------------------------


class MessageCounts(Out):
    total: Count
    sent: Count
    failed: Count
    skipped: Count
    pending: Count


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
    send_at: IsoDateTime | None = Field(description="With the event's UTC offset.")
    editable: bool = Field(description="Only drafts and scheduled messages can be changed.")
    created_at: IsoDateTime
    updated_at: IsoDateTime
    counts: MessageCounts | SkipJsonSchema[None] = optional(
        description="Only while sending and once finished."
    )

    @model_validator(mode="after")
    def _from_context(self, info: ValidationInfo) -> Self:
        context: Context = info.context or {}
        zone = context.get("tz")
        if self.send_at is not None and zone is not None:
            self.send_at = self.send_at.astimezone(zone)
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


# --- batches ------------------------------------------------------------------------------


class BatchCounts(Out):
    """sent + failed + skipped = total once the batch has finished (skipped includes dry runs)."""

    total: Count
    sent: Count
    failed: Count
    skipped: Count


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
    initiated_by: str = Field(description='The e-mail of the user who started it, or "scheduler".')
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


def _each(enum: type[Any], title: str) -> type[BaseModel]:
    """A count per value of ``enum`` (every value is always present)."""
    fields: dict[str, Any] = {member.value: (Count, ...) for member in enum}
    return create_model(title, **fields)


MessagesByStatus = _each(MessageStatus, "MessagesByStatus")
DeliveriesByStatus = _each(DeliveryStatus, "DeliveriesByStatus")


class DeliveryStats(BaseModel):
    last_24h: DeliveriesByStatus  # type: ignore[valid-type]
    all: DeliveriesByStatus  # type: ignore[valid-type]


class BatchStats(BaseModel):
    running: Count
    stuck: Count = Field(description="Running without a heartbeat for longer than the lease.")
    interrupted_last_24h: Count


class SchedulerState(BaseModel):
    enabled: bool
    poll_seconds: float
    last_poll_at: IsoText | None
    seconds_since_poll: float | None
    status: Literal["disabled", "never polled", "late", "ok"]


class Stats(BaseModel):
    """Counts from the database, computed on each call."""

    generated_at: IsoText
    messages: MessagesByStatus  # type: ignore[valid-type]
    deliveries: DeliveryStats
    failed_awaiting_retry: Count = Field(
        description="Transient failures under the attempts cap with a next attempt scheduled."
    )
    failed_permanently: Count = Field(
        description="Failed and not retried automatically (permanent error or attempts exhausted)."
    )
    batches: BatchStats
    last_poll_at: IsoText | None
    scheduler: SchedulerState


class OpenAPIDocument(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""
