from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from dashboard.db_types import utcnow


@dataclass(frozen=True)
class DispatchSettings:
    """What the engine needs from the configuration, read once (services never read current_app)."""

    base_url: str
    sender: str
    max_attempts: int = 5
    retry_base_seconds: float = 60.0
    commit_every: int = 50
    concurrency: int = 8
    rate_per_second: float | None = None
    dry_run: bool = False
    lease_seconds: float = 60.0
    #: How long an outage pauses a message before the next try (at least one poll interval).
    pause_seconds: float = 60.0
    #: A scheduled message found later than this after its send time is held back, not sent.
    stale_after_minutes: int = 360
    #: E-mails all processes together may hand to the transport in any 24 hours (None: no cap).
    daily_quota: int | None = None
    #: After a "slow down" without Retry-After: the first wait, doubled each time, and how
    #: many waits a chunk makes before the batch stops (a longer wait stops it at once).
    slow_down_seconds: float = 1.0
    slow_down_waits: int = 3
    max_inline_wait: float = 30.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    @property
    def stale_after(self) -> timedelta:
        return timedelta(minutes=self.stale_after_minutes)

    def backoff(self, attempts: int) -> timedelta:
        """Wait before retry number ``attempts`` (1-based): base, 2*base, 4*base, ..."""
        return timedelta(seconds=self.retry_base_seconds * (2 ** max(0, attempts - 1)))

    @property
    def message_id_domain(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DispatchSettings:
        poll = float(config.get("SCHEDULER_POLL_SECONDS", 15.0))
        lease = config.get("DISPATCH_LEASE_SECONDS") or max(60.0, 4 * poll)
        return cls(
            base_url=config["PUBLIC_BASE_URL"],
            sender=config["MAIL_DEFAULT_SENDER"],
            max_attempts=int(config["DISPATCH_MAX_ATTEMPTS"]),
            retry_base_seconds=float(config["DISPATCH_RETRY_BASE_SECONDS"]),
            commit_every=int(config.get("DISPATCH_COMMIT_EVERY", 50)),
            concurrency=int(config["DISPATCH_CONCURRENCY"]),
            rate_per_second=config.get("DISPATCH_RATE_PER_SECOND"),
            dry_run=bool(config["DISPATCH_DRY_RUN"]),
            lease_seconds=float(lease),
            pause_seconds=max(float(config["DISPATCH_RETRY_BASE_SECONDS"]), poll),
            stale_after_minutes=int(config.get("DISPATCH_STALE_AFTER_MINUTES", 360)),
            daily_quota=config.get("DISPATCH_DAILY_QUOTA"),
        )


def process_name() -> str:
    """A worker's name: this dispatcher process in leases, claims, batches and entries."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Context:
    """What every step of a send needs: the session (only this worker's thread touches it),
    the settings, this worker's name and the clock."""

    session: Session
    settings: DispatchSettings
    worker: str
    clock: Callable[[], datetime] = utcnow
