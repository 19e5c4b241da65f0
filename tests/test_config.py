"""Start-up validation: bad settings stop the app with one clear line."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.config import ConfigError, load_config, parse_bool

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("word", ["1", "true", "YES", "on", " On "])
def test_true_words(word):
    assert parse_bool("X", word, False) is True


@pytest.mark.parametrize("word", ["0", "false", "No", "off"])
def test_false_words(word):
    assert parse_bool("X", word, True) is False


@pytest.mark.parametrize("word", ["maybe", "2", "enabled", "y"])
def test_unparsable_boolean_is_an_error(word):
    with pytest.raises(ConfigError, match="not a boolean"):
        parse_bool("DISPATCH_DRY_RUN", word, False)


def test_missing_secret_outside_development(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production"}, tmp_path)


def test_development_secret_is_random_and_kept(tmp_path):
    first = load_config({"APP_ENV": "development"}, tmp_path)["SECRET_KEY"]
    second = load_config({"APP_ENV": "development"}, tmp_path)["SECRET_KEY"]
    assert first == second and len(first) >= 32
    other = load_config({"APP_ENV": "development"}, tmp_path / "other")["SECRET_KEY"]
    assert other != first


@pytest.mark.parametrize(
    "url, message",
    [("not a url", "not a database URL"), ("mysql://u@h/db", "only sqlite and postgresql")],
)
def test_bad_database_url(tmp_path, url, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"APP_ENV": "testing", "DATABASE_URL": url}, tmp_path)


def test_postgres_url_gets_psycopg3_driver(tmp_path):
    config = load_config({"APP_ENV": "testing", "DATABASE_URL": "postgresql://u:p@h/db"}, tmp_path)
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


def test_transport_defaults_follow_mail_server(tmp_path):
    assert load_config({"APP_ENV": "testing"}, tmp_path)["MAIL_TRANSPORT"] == "log"
    config = load_config({"APP_ENV": "testing", "MAIL_SERVER": "smtp.example.org"}, tmp_path)
    assert config["MAIL_TRANSPORT"] == "smtp"


@pytest.mark.parametrize(
    "env, picked",
    [
        ({}, "log"),
        ({"SES_REGION": "eu-west-1"}, "ses"),
        ({"SES_REGION": "eu-west-1", "MAIL_SERVER": "smtp.example.org"}, "smtp"),
        ({"MAIL_SERVER": "smtp.example.org", "RESEND_API_KEY": "re_123"}, "resend"),
        ({"RESEND_API_KEY": "re_123", "MAIL_TRANSPORT": "SES", "SES_REGION": "x"}, "ses"),
        ({"RESEND_API_KEY": "re_123", "MAIL_TRANSPORT": "log"}, "log"),
    ],
)
def test_the_first_configured_transport_wins_unless_one_is_named(tmp_path, env, picked):
    """The seed's order: Resend, then SMTP, then SES, else the log."""
    assert load_config({"APP_ENV": "testing", **env}, tmp_path)["MAIL_TRANSPORT"] == picked


@pytest.mark.parametrize(
    "env, message",
    [
        ({"MAIL_TRANSPORT": "mailgun"}, "must be one of resend, smtp, ses, log"),
        ({"MAIL_TRANSPORT": "resend"}, "MAIL_TRANSPORT=resend needs RESEND_API_KEY"),
        ({"MAIL_TRANSPORT": "ses"}, "MAIL_TRANSPORT=ses needs SES_REGION"),
        ({"MAIL_TRANSPORT": "smtp"}, "MAIL_TRANSPORT=smtp needs MAIL_SERVER"),
        ({"RESEND_API_URL": "api.resend.com"}, "RESEND_API_URL='api.resend.com' must be an http"),
        ({"SES_ENDPOINT_URL": "ftp://x.example"}, "SES_ENDPOINT_URL='ftp://x.example' must be"),
        ({"RESEND_WEBHOOK_SECRET": "secret"}, "RESEND_WEBHOOK_SECRET is not a signing secret"),
        ({"DISPATCH_DAILY_QUOTA": "0"}, "DISPATCH_DAILY_QUOTA=0 must be at least 1"),
        ({"RESEND_BATCH_SIZE": "many"}, "RESEND_BATCH_SIZE='many' is not a whole number"),
        ({"RESEND_BATCH_SIZE": "101"}, "RESEND_BATCH_SIZE=101: Resend takes at most 100"),
    ],
)
def test_provider_settings_are_checked_at_start_up(tmp_path, env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config({"APP_ENV": "testing", **env}, tmp_path)


def test_resend_settings_have_their_defaults(tmp_path):
    config = load_config({"APP_ENV": "testing", "RESEND_API_KEY": "re_1"}, tmp_path)
    assert config["RESEND_API_URL"] == "https://api.resend.com"
    assert (config["RESEND_BATCH_SIZE"], config["DISPATCH_DAILY_QUOTA"]) == (100, None)


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"MAIL_TRANSPORT": "resend"}, "MAIL_TRANSPORT=resend needs RESEND_API_KEY"),
        ({"DISPATCH_DRY_RUN": "maybe"}, "DISPATCH_DRY_RUN='maybe' is not a boolean"),
        ({"DATABASE_URL": "nope://"}, "DATABASE_URL"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
    ],
)
def test_wsgi_prints_one_line_not_a_traceback(tmp_path, env, expected):
    full_env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "production",
        "SECRET_KEY": "x" * 32,
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=tmp_path,
        env={**full_env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error:") and expected in lines[0]
