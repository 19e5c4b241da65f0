"""Reading a date and time typed in an event's time zone (the only place local time comes in)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dashboard.errors import ValidationError

#: Dates outside these years are typing mistakes, and near the ends of what Python's
#: datetime holds (years 1 and 9999) moving them by a time zone or a reminder overflows.
MIN_YEAR = 1900
MAX_YEAR = 2999


def wall_time(value: datetime, zone: ZoneInfo) -> datetime:
    """``value`` as a naive wall-clock time in ``zone`` (what a form shows)."""
    return value.astimezone(zone).replace(tzinfo=None)


def parse_local_datetime(value: str | datetime, timezone: str, field: str) -> datetime:
    """ISO 8601 with an offset, or naive and read in ``timezone``. Returns aware UTC.

    A naive time that does not exist in the zone (skipped by a daylight-saving change)
    is refused rather than silently shifted.
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationError(
                {field: f"{value!r} is not a date and time (ISO 8601, e.g. 2030-05-01T18:00)."}
            ) from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValidationError(
            {field: f"Choose a date between the years {MIN_YEAR} and {MAX_YEAR}."}
        )
    if parsed.tzinfo is None:
        zone = ZoneInfo(timezone)
        parsed = parsed.replace(tzinfo=zone)
        if wall_time(parsed.astimezone(UTC), zone) != parsed.replace(tzinfo=None):
            raise ValidationError(
                {
                    field: f"{parsed:%Y-%m-%d %H:%M} does not exist in {timezone} (the clocks change then)."
                }
            )
    return parsed.astimezone(UTC)
