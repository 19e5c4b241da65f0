"""Throttling failed sign-ins, per account and per client address, with the ``limits`` library.

After ``LOGIN_THROTTLE`` failures (default 10 in 15 minutes, counted from the first) the
account, or the address, gets a 429 with ``Retry-After`` until the window ends; the right
password is not even checked then. A success clears the account's count (not the
address's, or one account of an attacker's would reset the count for all the others).

``limits`` keeps counters in a storage. Its storages are memory (one process only) and
servers we do not run (Redis, Memcached, MongoDB); it has none for SQL. So
``DatabaseStorage`` keeps them in a table of ours, with one atomic upsert per failure:
every process on the same database (PostgreSQL, or SQLite) shares the counts.
``LOGIN_THROTTLE_STORAGE`` may name any storage URI of ``limits`` instead (``memory://``,
``redis://...``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard.auth.models import RateLimitCounter
from dashboard.database import dialect_insert
from dashboard.extensions import db

DEFAULT_RULE = "10 per 15 minutes"
DATABASE = "database"
_counters = RateLimitCounter.__table__


class DatabaseStorage(Storage):
    """A ``limits`` storage (fixed window) in the ``rate_limit_counters`` table."""

    STORAGE_SCHEME = ["dashboard-database"]

    def __init__(self, engine: Engine, wrap_exceptions: bool = False):
        super().__init__(None, wrap_exceptions=wrap_exceptions)
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def _insert(self) -> sa.Insert:
        return dialect_insert(self.engine.dialect.name)(_counters)  # type: ignore[no-any-return]

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """One statement: a new window, or one more in the current one, whichever applies
        (two processes failing at once both count)."""
        now = time.time()
        stmt = self._insert().values(key=key, count=amount, expires_at=now + expiry)
        lapsed = _counters.c.expires_at <= now
        stmt = stmt.on_conflict_do_update(
            index_elements=[_counters.c.key],
            set_={
                "count": sa.case((lapsed, amount), else_=_counters.c.count + amount),
                "expires_at": sa.case((lapsed, now + expiry), else_=_counters.c.expires_at),
            },
        ).returning(_counters.c.count)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_counters).where(_counters.c.expires_at <= now - 3600))
            return int(conn.execute(stmt).scalar_one())

    def _row(self, key: str) -> sa.Row | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(_counters.c.count, _counters.c.expires_at).where(
                    _counters.c.key == key, _counters.c.expires_at > time.time()
                )
            ).first()

    def get(self, key: str) -> int:
        row = self._row(key)
        return int(row.count) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return float(row.expires_at) if row else time.time()

    def check(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(sa.select(1))
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(_counters)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(_counters).where(_counters.c.key == key))


@dataclass
class LoginThrottle:
    limiter: FixedWindowRateLimiter
    rule: RateLimitItem

    def _keys(self, email: str, address: str) -> tuple[tuple[str, str], ...]:
        return (("login-account", email), ("login-address", address))

    def wait(self, email: str, address: str) -> int | None:
        """Seconds until a sign-in may be tried again, or None when it may now."""
        waits = [
            self.limiter.get_window_stats(self.rule, *key).reset_time - time.time()
            for key in self._keys(email, address)
            if not self.limiter.test(self.rule, *key)
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, email: str, address: str) -> None:
        for key in self._keys(email, address):
            self.limiter.hit(self.rule, *key)

    def succeeded(self, email: str) -> None:
        self.limiter.clear(self.rule, "login-account", email)


def parse_rule(text: str) -> RateLimitItem:
    """``10 per 15 minutes`` and the like; ValueError when ``limits`` cannot read it."""
    return parse(text)


def throttle_for(app: Flask) -> LoginThrottle:
    """The app's throttle, made on first use (the database storage needs the engine)."""
    throttle = app.extensions.get("login_throttle")
    if throttle is None:
        uri = app.config["LOGIN_THROTTLE_STORAGE"]
        storage = DatabaseStorage(db.engine) if uri == DATABASE else storage_from_string(uri)
        throttle = LoginThrottle(
            FixedWindowRateLimiter(storage), parse_rule(app.config["LOGIN_THROTTLE"])
        )
        app.extensions["login_throttle"] = throttle
    return throttle
