"""Settings read from the environment and validated once, at start-up.

Every problem is raised as ``ConfigError`` with one human sentence, so that
``wsgi.py`` can print a single clear line instead of a traceback.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
ENVIRONMENTS = ("development", "testing", "production")
#: How long "Keep me signed in" keeps a browser signed in.
REMEMBER_FOR = timedelta(days=30)

Number = TypeVar("Number", int, float)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


DEBUG_IN_PRODUCTION = (
    "FLASK_DEBUG is on with APP_ENV=production: the debugger would let anyone who reaches "
    "an error page run code on the server; unset FLASK_DEBUG"
)


def debug_requested(raw: str | None) -> bool:
    """FLASK_DEBUG as Flask itself reads it: on unless empty, 0, false or no."""
    return bool(raw) and raw.strip().lower() not in ("0", "false", "no")


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    """Strict boolean: 1/true/yes/on or 0/false/no/off; anything else is an error."""
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(
        f"{name}={raw!r} is not a boolean; use one of 1/true/yes/on or 0/false/no/off"
    )


def parse_int(name: str, raw: str | None, default: int | None, minimum: int = 0) -> int | None:
    return _parse_number(name, raw, default, minimum, int, "a whole number")


def parse_float(
    name: str, raw: str | None, default: float | None, minimum: float = 0.0
) -> float | None:
    return _parse_number(name, raw, default, minimum, float, "a number")


def _parse_number(
    name: str,
    raw: str | None,
    default: Number | None,
    minimum: Number,
    convert: Callable[[str], Number],
    noun: str,
) -> Number | None:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = convert(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {noun}") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _database_url(raw: str | None, instance_path: Path) -> str:
    if not raw:
        return f"sqlite:///{instance_path / 'dashboard.sqlite3'}"
    if raw.startswith("postgres://"):  # Heroku-style alias
        raw = "postgresql://" + raw.removeprefix("postgres://")
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"DATABASE_URL={raw!r} is not a database URL "
            "(expected e.g. sqlite:///path/app.db or postgresql+psycopg://user:pw@host/db)"
        ) from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"DATABASE_URL uses {backend!r}; only sqlite and postgresql are supported"
        )
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def load_config(env: Mapping[str, str], instance_path: Path) -> dict[str, Any]:
    """Build the Flask config mapping from ``env``; raise ConfigError on bad input."""
    app_env = (env.get("APP_ENV") or "production").strip().lower()
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV={app_env!r} must be one of {', '.join(ENVIRONMENTS)}")
    if app_env == "production" and debug_requested(env.get("FLASK_DEBUG")):
        raise ConfigError(DEBUG_IN_PRODUCTION)

    secret = env.get("SECRET_KEY", "").strip()
    if not secret:
        if app_env == "production":
            raise ConfigError(
                "SECRET_KEY is not set; generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        secret = _development_secret(instance_path)

    base_url = (env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").strip().rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"PUBLIC_BASE_URL={base_url!r} must start with http:// or https://")

    return {
        "APP_ENV": app_env,
        "TESTING": app_env == "testing",
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": _database_url(env.get("DATABASE_URL"), instance_path),
        **_mail_settings(env),
        **_dispatch_settings(env, app_env),
        "STATS_TOKEN": env.get("STATS_TOKEN") or None,
        "PUBLIC_BASE_URL": base_url,
        **_login_settings(env),
        "SQLITE_BUSY_TIMEOUT_MS": parse_int(
            "SQLITE_BUSY_TIMEOUT_MS", env.get("SQLITE_BUSY_TIMEOUT_MS"), 15000, 0
        ),
        "WTF_CSRF_TIME_LIMIT": None,
        # Bigger requests are refused before anything reads them (CSV uploads stop at 5 MB).
        "MAX_CONTENT_LENGTH": 6 * 1024 * 1024,
        # A 100 KB message body of non-ASCII text is several times that once form-encoded.
        "MAX_FORM_MEMORY_SIZE": 2 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        # The remember-me cookie carries a per-login token (stored hashed, revoked on
        # sign-out and password change); it is as secret as the session cookie.
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": base_url.startswith("https://"),
        "REMEMBER_COOKIE_DURATION": REMEMBER_FOR,
    }


def _login_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The sign-in throttle and the proxies whose forwarded client address is believed."""
    from limits.errors import ConfigurationError
    from limits.storage import storage_from_string

    from dashboard.auth.throttle import DATABASE, DEFAULT_RULE, parse_rule

    rule = (env.get("LOGIN_THROTTLE") or DEFAULT_RULE).strip()
    try:
        parse_rule(rule)
    except ValueError:
        raise ConfigError(
            f"LOGIN_THROTTLE={rule!r} is not a rate (expected e.g. '10 per 15 minutes')"
        ) from None
    storage = (env.get("LOGIN_THROTTLE_STORAGE") or DATABASE).strip()
    if storage != DATABASE:
        try:
            storage_from_string(storage)
        except (ConfigurationError, ValueError) as error:
            raise ConfigError(
                f"LOGIN_THROTTLE_STORAGE={storage!r} is not a storage the limits library "
                f"can use ({error}); leave it unset to keep the counts in the database"
            ) from None
    return {
        "LOGIN_THROTTLE": rule,
        "LOGIN_THROTTLE_STORAGE": storage,
        "TRUSTED_PROXY_COUNT": parse_int(
            "TRUSTED_PROXY_COUNT", env.get("TRUSTED_PROXY_COUNT"), 0, 0
        ),
    }


#: The transports e-mail can go through, and the seed's order when none is named: the
#: first one whose setting is present wins.
MAIL_TRANSPORTS = ("resend", "smtp", "ses", "log")
PICKED_BY = (("RESEND_API_KEY", "resend"), ("MAIL_SERVER", "smtp"), ("SES_REGION", "ses"))
NEEDS = {"resend": "RESEND_API_KEY", "smtp": "MAIL_SERVER", "ses": "SES_REGION"}


def _mail_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Flask-Mail's settings and the transport that carries e-mail."""
    mail_server = env.get("MAIL_SERVER", "").strip() or None
    transport = _mail_transport(env)
    use_tls = parse_bool("MAIL_USE_TLS", env.get("MAIL_USE_TLS"), False)
    use_ssl = parse_bool("MAIL_USE_SSL", env.get("MAIL_USE_SSL"), False)
    if use_tls and use_ssl:
        raise ConfigError("MAIL_USE_TLS and MAIL_USE_SSL cannot both be on")
    return {
        "MAIL_SERVER": mail_server or "localhost",
        "MAIL_PORT": parse_int("MAIL_PORT", env.get("MAIL_PORT"), 465 if use_ssl else 25, 1),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": use_tls,
        "MAIL_USE_SSL": use_ssl,
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER")
        or "Event Dashboard <noreply@localhost>",
        "MAIL_TRANSPORT": transport,
        "MAIL_TIMEOUT_SECONDS": parse_float(
            "MAIL_TIMEOUT_SECONDS", env.get("MAIL_TIMEOUT_SECONDS"), 30.0, 0.1
        ),
        **_provider_settings(env),
    }


def _mail_transport(env: Mapping[str, str]) -> str:
    """MAIL_TRANSPORT as named, or the first configured one (Resend > SMTP > SES > log)."""
    named = (env.get("MAIL_TRANSPORT") or "").strip().lower()
    if not named:
        configured = [name for key, name in PICKED_BY if (env.get(key) or "").strip()]
        return configured[0] if configured else "log"
    if named not in MAIL_TRANSPORTS:
        raise ConfigError(f"MAIL_TRANSPORT={named!r} must be one of {', '.join(MAIL_TRANSPORTS)}")
    needed = NEEDS.get(named)
    if needed and not (env.get(needed) or "").strip():
        raise ConfigError(f"MAIL_TRANSPORT={named} needs {needed}")
    return named


def _provider_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Resend's and SES's settings (credentials for SES come from boto3's usual chain)."""
    secret = (env.get("RESEND_WEBHOOK_SECRET") or "").strip() or None
    if secret is not None:
        _check_webhook_secret(secret)
    batch_size = parse_int("RESEND_BATCH_SIZE", env.get("RESEND_BATCH_SIZE"), 100, 1)
    if batch_size is not None and batch_size > 100:
        raise ConfigError(f"RESEND_BATCH_SIZE={batch_size}: Resend takes at most 100 a request")
    return {
        "RESEND_API_KEY": (env.get("RESEND_API_KEY") or "").strip() or None,
        "RESEND_API_URL": _http_url("RESEND_API_URL", env.get("RESEND_API_URL"))
        or "https://api.resend.com",
        "RESEND_BATCH_SIZE": batch_size,
        "RESEND_WEBHOOK_SECRET": secret,
        "SES_REGION": (env.get("SES_REGION") or "").strip() or None,
        "SES_ENDPOINT_URL": _http_url("SES_ENDPOINT_URL", env.get("SES_ENDPOINT_URL")),
    }


def _http_url(name: str, raw: str | None) -> str | None:
    value = (raw or "").strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("http://", "https://")) or len(value) < 10:
        raise ConfigError(f"{name}={value!r} must be an http:// or https:// URL")
    return value


def _check_webhook_secret(secret: str) -> None:
    """Resend's signing secret is ``whsec_`` and base64 (as its dashboard shows it)."""
    key = secret.removeprefix("whsec_")
    try:
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except binascii.Error:
        raw = b""
    if not secret.startswith("whsec_") or len(raw) < 16:
        raise ConfigError(
            "RESEND_WEBHOOK_SECRET is not a signing secret: expected whsec_ followed by "
            "base64, as Resend shows it on the webhook's page"
        )


def _dispatch_settings(env: Mapping[str, str], app_env: str) -> dict[str, Any]:
    """The scheduler's and the dispatcher's settings, and how long logs are kept."""

    def number(parse: Any, name: str, default: Any, minimum: Any) -> Any:
        return parse(name, env.get(name), default, minimum)

    return {
        "DISPATCH_DRY_RUN": parse_bool("DISPATCH_DRY_RUN", env.get("DISPATCH_DRY_RUN"), False),
        "SCHEDULER_ENABLED": parse_bool(
            "SCHEDULER_ENABLED", env.get("SCHEDULER_ENABLED"), app_env != "testing"
        ),
        "SCHEDULER_POLL_SECONDS": number(parse_float, "SCHEDULER_POLL_SECONDS", 15.0, 0.1),
        "DISPATCH_MAX_ATTEMPTS": number(parse_int, "DISPATCH_MAX_ATTEMPTS", 5, 1),
        "DISPATCH_RETRY_BASE_SECONDS": number(
            parse_float, "DISPATCH_RETRY_BASE_SECONDS", 60.0, 0.0
        ),
        "DISPATCH_CONCURRENCY": number(parse_int, "DISPATCH_CONCURRENCY", 8, 1),
        "DISPATCH_RATE_PER_SECOND": number(parse_float, "DISPATCH_RATE_PER_SECOND", None, 0.001),
        "DISPATCH_DAILY_QUOTA": number(parse_int, "DISPATCH_DAILY_QUOTA", None, 1),
        "DISPATCH_COMMIT_EVERY": number(parse_int, "DISPATCH_COMMIT_EVERY", 50, 1),
        "DISPATCH_LEASE_SECONDS": number(parse_float, "DISPATCH_LEASE_SECONDS", None, 1.0),
        "DISPATCH_STALE_AFTER_MINUTES": number(parse_int, "DISPATCH_STALE_AFTER_MINUTES", 360, 1),
        "LOG_RETENTION_DAYS": number(parse_int, "LOG_RETENTION_DAYS", 180, 1),
        "AUDIT_RETENTION_DAYS": number(parse_int, "AUDIT_RETENTION_DAYS", 730, 1),
    }


def _development_secret(instance_path: Path) -> str:
    """Development only: a random key kept in instance/, never a constant."""
    path = instance_path / "dev_secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    return key
