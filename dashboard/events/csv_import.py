"""Guest import from CSV: parse, plan (created / restored / updated / unchanged / rejected),
apply in bulk.

The same three steps serve the upload preview, its confirmation, the ``import-guests``
CLI command and any bulk API: ``plan_import`` reads the guest list once (one query for
the existing e-mail keys) and ``apply_import`` writes with two executemany statements,
so 20,000 rows take well under a few seconds. Nothing here commits: the caller owns the
one transaction, so a file never half-imports.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dashboard.audit.services import Actor, record
from dashboard.errors import ValidationError
from dashboard.events.addresses import clean_guest
from dashboard.events.models import Event, Guest, RsvpStatus

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
COLUMNS = ("name", "email", "rsvp_status")
HEADER_ALIASES = {
    "name": "name",
    "full name": "name",
    "email": "email",
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "rsvp_status": "rsvp_status",
    "rsvp status": "rsvp_status",
    "rsvp": "rsvp_status",
    "status": "rsvp_status",
}


@dataclass(frozen=True)
class RawRow:
    """One input row as given; ``line`` is where it starts in the file (header is line 1).
    ``problem`` says why the row could not be read at all."""

    line: int
    name: str | None
    email: str | None
    rsvp_status: str | None
    problem: str | None = None


@dataclass(frozen=True)
class CleanRow:
    line: int
    name: str
    email: str
    email_key: str
    rsvp_status: RsvpStatus | None  # None: not given (new guests get pending, others keep theirs)


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    email: str = ""
    #: The row's other values as written, so the rejected rows can be fixed and uploaded again.
    name: str = ""
    rsvp_status: str = ""


@dataclass
class ImportPlan:
    create: list[CleanRow] = field(default_factory=list)
    #: Removed guests whose address is in the file: back on the list, same id and history.
    restore: list[tuple[int, CleanRow]] = field(default_factory=list)  # (guest id, new values)
    update: list[tuple[int, CleanRow]] = field(default_factory=list)  # (guest id, new values)
    unchanged: list[CleanRow] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    #: The name and RSVP an updated or restored guest has now (guest id -> values), so the
    #: preview can say "attending -> declined".
    before: dict[int, tuple[str, RsvpStatus]] = field(default_factory=dict)

    @property
    def importable(self) -> int:
        return len(self.create) + len(self.restore) + len(self.update)

    def summary(self) -> str:
        """The counts in words; restored guests are named only when there are some."""
        counts = self.counts()
        restored = f"{counts['restored']} restored, " if counts["restored"] else ""
        return (
            f"{counts['created']} created, {restored}{counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['rejected']} rejected"
        )

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.create),
            "restored": len(self.restore),
            "updated": len(self.update),
            "unchanged": len(self.unchanged),
            "rejected": len(self.rejected),
        }


# --- parsing --------------------------------------------------------------------------


def decode_upload(data: bytes) -> str:
    """UTF-8 text with or without a byte-order mark; anything else is a clear error."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(
            {
                "file": f"The file is not UTF-8 text (bad byte at position {error.start}); "
                "save it as “CSV UTF-8” and try again."
            }
        ) from None
    if "\x00" in text:
        raise ValidationError(
            {
                "file": "The file contains NUL bytes, so it is not a CSV text file "
                "(a spreadsheet file perhaps?); save it as “CSV UTF-8” and try again."
            }
        )
    return text


def detect_delimiter(header_line: str) -> str:
    """Comma or semicolon, whichever the header uses more (spreadsheets in many locales use ;)."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def parse_csv(text: str) -> list[RawRow]:
    """Rows of a CSV with a header naming ``name``, ``email`` and optionally ``rsvp_status``.

    Header names are case-insensitive and stripped; other columns are ignored; blank lines
    are skipped. A missing header column, an empty file or a malformed header raises
    ``ValidationError`` (the whole file is refused); bad rows are left to ``plan_import``,
    and so is a row whose quote swallowed the lines after it (see ``_records``).
    """
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ValidationError({"file": "The file is empty."})
    first_line = text.lstrip("\r\n").splitlines()[0]
    lines = io.StringIO(text, newline="").readlines()
    rows: list[RawRow] = []
    header: list[str] | None = None
    for line, cells, problem in _records(lines, detect_delimiter(first_line)):
        if header is None:
            if problem:
                raise ValidationError({"file": f"Line {line}: {problem}"})
            if any(cell.strip() for cell in cells):
                header = [HEADER_ALIASES.get(" ".join(cell.split()).lower(), "") for cell in cells]
                _check_header(header, cells)
            continue
        if problem:
            rows.append(RawRow(line, None, None, None, problem))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        values = dict.fromkeys(COLUMNS)
        for column, cell in zip(header, cells, strict=False):
            if column and values[column] is None:
                values[column] = cell.strip()
        rows.append(RawRow(line, values["name"], values["email"], values["rsvp_status"]))
    if header is None:
        raise ValidationError({"file": "The file is empty."})
    if not rows:
        raise ValidationError({"file": "The file has a header row but no guests."})
    return rows


def _records(lines: list[str], delimiter: str) -> Iterator[tuple[int, list[str], str | None]]:
    """(first line, cells, problem) for each record of the file.

    A quoted field may hold a line break, but when the lines it runs across look like rows
    of their own (they hold the delimiter), the quote is a stray one: read as CSV it would
    swallow every row up to the next quote and come out as one absurd row. Such a record
    is reported on its first line, and reading starts again on the line after it, so the
    rows below are not lost.
    """
    offset = 0
    while offset < len(lines):
        reader = csv.reader(iter(lines[offset:]), delimiter=delimiter)
        previous = 0
        try:
            for record in reader:
                first, last = offset + previous + 1, offset + reader.line_num
                previous = reader.line_num
                if last > first and _swallows_rows(record, delimiter):
                    yield first, [], _runaway(first, last)
                    offset = first
                    break
                yield first, record, None
            else:
                return
        except csv.Error as error:
            first = offset + previous + 1
            yield first, [], f"This row is not valid CSV ({error}); it was skipped."
            offset = first


def _swallows_rows(record: list[str], delimiter: str) -> bool:
    return any(
        delimiter in part
        for cell in record
        if "\n" in cell or "\r" in cell
        for part in cell.splitlines()[1:]
    )


def _runaway(first: int, last: int) -> str:
    return (
        f"A quoted field starts on this line and runs across lines {first}-{last} "
        "(a stray quote?). This row was skipped; the lines after it were read on their own."
    )


def _check_header(header: list[str], record: list[str]) -> None:
    missing = [column for column in ("name", "email") if column not in header]
    if missing:
        found = ", ".join(cell.strip() for cell in record if cell.strip()) or "nothing"
        raise ValidationError(
            {
                "file": f"The header row needs the columns name and email (optional: rsvp_status); "
                f"missing {' and '.join(missing)}, found {found}."
            }
        )


# --- planning and applying ------------------------------------------------------------


def clean_row(row: RawRow) -> CleanRow:
    """Validate one row with the same rules as the guest form; ValidationError if bad."""
    if row.problem:
        raise ValidationError(row.problem)
    status_given = bool((row.rsvp_status or "").strip())
    name, email, status = clean_guest(row.name, row.email, row.rsvp_status)
    return CleanRow(row.line, name, email, Guest.key_for(email), status if status_given else None)


def plan_import(session: Session, event: Event, rows: Iterable[RawRow]) -> ImportPlan:
    """Sort rows into create / update / unchanged / rejected with one query to the database.

    The same e-mail (case-insensitive) as a guest already on the list updates that guest's
    name and, when given, status; a removed guest's e-mail restores that guest. A second row
    with an e-mail seen earlier in the file is rejected, and so is a row that fails
    validation; neither stops the others.
    """
    existing = {
        key: (guest_id, name, RsvpStatus(status), removed_at is not None)
        for guest_id, key, name, status, removed_at in session.execute(
            sa.select(
                Guest.id, Guest.email_key, Guest.name, Guest.rsvp_status, Guest.removed_at
            ).where(Guest.event_id == event.id)
        )
    }
    plan = ImportPlan()
    first_line_of: dict[str, int] = {}
    for row in rows:
        try:
            clean = clean_row(row)
        except ValidationError as error:
            plan.rejected.append(
                Rejection(
                    row.line,
                    " ".join(error.errors.values()),
                    (row.email or "").strip(),
                    (row.name or "").strip(),
                    (row.rsvp_status or "").strip(),
                )
            )
            continue
        if clean.email_key in first_line_of:
            plan.rejected.append(
                Rejection(
                    row.line,
                    f"Duplicate e-mail {clean.email}: already on line {first_line_of[clean.email_key]} of this file.",
                    clean.email,
                    clean.name,
                    clean.rsvp_status.value if clean.rsvp_status else "",
                )
            )
            continue
        first_line_of[clean.email_key] = row.line
        if clean.email_key not in existing:
            plan.create.append(clean)
            continue
        guest_id, old_name, old_status, removed = existing[clean.email_key]
        plan.before[guest_id] = (old_name, old_status)
        if removed:
            plan.restore.append((guest_id, clean))
        elif clean.name == old_name and clean.rsvp_status in (None, old_status):
            plan.unchanged.append(clean)
        else:
            plan.update.append((guest_id, clean))
    return plan


def apply_import(
    session: Session, event: Event, plan: ImportPlan, now: datetime, *, actor: Actor
) -> dict[str, int]:
    """Write a plan with one bulk INSERT and one bulk UPDATE, and one audit entry with its
    counts; the caller commits."""
    if plan.create:
        session.execute(
            sa.insert(Guest),
            [
                {
                    "event_id": event.id,
                    "name": row.name,
                    "email": row.email,
                    "email_key": row.email_key,
                    "rsvp_status": row.rsvp_status or RsvpStatus.PENDING,
                    "token": secrets.token_urlsafe(24),
                    "created_at": now,
                    "updated_at": now,
                }
                for row in plan.create
            ],
        )
    changed = [(guest_id, row, {}) for guest_id, row in plan.update]
    changed += [(guest_id, row, {"removed_at": None}) for guest_id, row in plan.restore]
    if changed:
        session.execute(
            sa.update(Guest),
            [
                {"id": guest_id, "name": row.name, "updated_at": now, **extra}
                | ({"rsvp_status": row.rsvp_status} if row.rsvp_status else {})
                for guest_id, row, extra in changed
            ],
        )
    counts = plan.counts()
    if plan.importable:
        details = {"source": "csv", **counts}
        record(session, actor, "guest.import", now=now, event_id=event.id, details=details)
    log.info("guest import into event %s: %s", event.id, counts)
    return counts


def import_csv(
    session: Session, event: Event, text: str, now: datetime, *, actor: Actor
) -> tuple[ImportPlan, dict[str, int]]:
    """Parse, plan and apply in the caller's transaction (used by the CLI and the confirm step)."""
    plan = plan_import(session, event, parse_csv(text))
    return plan, apply_import(session, event, plan, now, actor=actor)


# --- a pending upload between preview and confirmation ---------------------------------

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PENDING_MAX_AGE_SECONDS = 24 * 3600


#: A cell starting with one of these is a formula to a spreadsheet: it is written quoted.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def rejected_csv(plan: ImportPlan) -> str:
    """The rejected rows as a CSV to fix and upload again: the columns of an import, plus
    the line of the original file and the reason."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["name", "email", "rsvp_status", "line", "reason"])
    for r in plan.rejected:
        cells = [r.name, r.email, r.rsvp_status, str(r.line), r.reason]
        writer.writerow(["'" + c if c.startswith(FORMULA_START) else c for c in cells])
    return out.getvalue()


class PendingImports:
    """Uploaded CSV text kept on the server between preview and confirmation.

    The browser only carries a random token; the rows are read again from this file on
    confirmation, so nothing a client sends back is trusted. Files are per event.
    """

    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, event_id: int, token: str) -> Path | None:
        if not TOKEN_RE.match(token or ""):
            return None
        return self.directory / f"{int(event_id)}-{token}.csv"

    def save(self, event_id: int, text: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cleanup()
        token = secrets.token_urlsafe(18)
        path = self._path(event_id, token)
        assert path is not None
        path.write_text(text, encoding="utf-8")
        return token

    def load(self, event_id: int, token: str) -> str | None:
        path = self._path(event_id, token)
        if path is None or not path.is_file():
            return None
        return path.read_text(encoding="utf-8")

    def discard(self, event_id: int, token: str) -> None:
        path = self._path(event_id, token)
        if path is not None:
            path.unlink(missing_ok=True)

    def cleanup(self, max_age_seconds: float = PENDING_MAX_AGE_SECONDS) -> None:
        """Forget previews nobody confirmed within a day."""
        limit = time.time() - max_age_seconds
        for path in self.directory.glob("*.csv"):
            try:
                if path.stat().st_mtime < limit:
                    path.unlink(missing_ok=True)
            except OSError:  # pragma: no cover - a concurrent cleanup got there first
                continue
