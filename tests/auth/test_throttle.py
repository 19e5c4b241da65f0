"""Failed sign-ins are throttled per account and per address, in storage every process shares."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from dashboard import create_app
from dashboard.auth import services
from dashboard.auth.models import RateLimitCounter
from dashboard.auth.throttle import DatabaseStorage
from dashboard.extensions import db
from tests.conftest import PASSWORD


def _try(client, email="owner@example.com", password="wrong password", address="10.0.0.1"):
    return client.post(
        "/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_ten_failures_then_429_even_for_the_right_password(client, owner):
    for _ in range(10):
        assert _try(client).status_code == 200
    refused = _try(client, password=PASSWORD)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 14 * 60 < wait <= 15 * 60
    text = refused.get_data(as_text=True)
    assert "Too many failed sign-ins for this account or from this address." in text
    assert "Try again in 15 minutes." in text
    assert client.get("/account/tokens").status_code == 302  # not signed in


def test_the_account_is_throttled_from_any_address(client, owner):
    for n in range(10):
        _try(client, address=f"10.0.1.{n}")
    assert _try(client, password=PASSWORD, address="10.0.2.1").status_code == 429


def test_an_address_is_throttled_across_accounts(client, owner, make_user):
    make_user("other@example.com")
    for n in range(10):
        _try(client, email=f"guess{n}@example.com")
    assert _try(client, email="other@example.com", password=PASSWORD).status_code == 429
    # Another address signs the same account in.
    assert (
        _try(client, email="other@example.com", password=PASSWORD, address="10.9.9.9").status_code
        == 302
    )


def test_a_success_clears_the_account_count(client, owner):
    for _ in range(9):
        _try(client, address="10.0.3.1")
    assert _try(client, password=PASSWORD, address="10.0.3.2").status_code == 302
    client.post("/logout")
    for _ in range(9):
        assert _try(client, address="10.0.3.3").status_code == 200
    assert _try(client, password=PASSWORD, address="10.0.3.4").status_code == 302


def test_an_unknown_email_costs_the_same_password_hash(client, owner, monkeypatch):
    calls: list[str] = []
    real = services.check_password_hash

    def counting(hash_: str, password: str) -> bool:
        calls.append(hash_.split("$", 1)[0])
        return real(hash_, password)

    monkeypatch.setattr(services, "check_password_hash", counting)
    monkeypatch.setattr("dashboard.auth.models.check_password_hash", counting)
    _try(client, email="nobody@example.com")
    _try(client, email=owner.email)
    assert len(calls) == 2 and calls[0] == calls[1]  # one hash each, of the same method


def test_the_throttle_rule_and_storage_are_checked_at_start(app_env):
    from dashboard.config import ConfigError

    with pytest.raises(ConfigError, match="LOGIN_THROTTLE='often'"):
        create_app(env={**app_env, "LOGIN_THROTTLE": "often"})
    with pytest.raises(ConfigError, match="LOGIN_THROTTLE_STORAGE='bogus://x'"):
        create_app(env={**app_env, "LOGIN_THROTTLE_STORAGE": "bogus://x"})
    memory = create_app(env={**app_env, "LOGIN_THROTTLE_STORAGE": "memory://"})
    assert memory.config["LOGIN_THROTTLE_STORAGE"] == "memory://"


def test_two_app_instances_share_the_counts(app_env, owner):
    """Two processes on one database: the failures of both count toward one limit."""
    first = create_app(overrides={"WTF_CSRF_ENABLED": False}, env=app_env)
    second = create_app(overrides={"WTF_CSRF_ENABLED": False}, env=app_env)
    for n in range(10):
        with (first if n % 2 else second).test_client() as browser:
            assert _try(browser).status_code == 200
    for instance in (first, second):
        with instance.test_client() as browser:
            assert _try(browser, password=PASSWORD).status_code == 429
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RateLimitCounter)) == 2


def test_the_database_storage_counts_atomically_and_expires(app):
    storage = DatabaseStorage(db.engine)
    limiter = FixedWindowRateLimiter(storage)
    rule = parse("3 per 1 second")
    assert [limiter.hit(rule, "k") for _ in range(4)] == [True, True, True, False]
    assert storage.get(rule.key_for("k")) == 4
    assert not limiter.test(rule, "k")
    reset = limiter.get_window_stats(rule, "k").reset_time
    assert time.time() < reset <= time.time() + 1
    time.sleep(1.05)
    assert limiter.test(rule, "k") and storage.get(rule.key_for("k")) == 0
    assert limiter.hit(rule, "k")  # a new window starts at one
    assert storage.get(rule.key_for("k")) == 1
    limiter.clear(rule, "k")
    assert storage.get(rule.key_for("k")) == 0
    assert storage.check() and storage.reset() == 0


def test_failures_counted_at_the_same_time_by_two_instances_all_count(app_env, app):
    """The upsert is one statement: racing increments from two engines lose none."""
    engines = []
    for _ in range(2):
        other = create_app(env=app_env)
        with other.app_context():
            engines.append(db.engine)
    storages = [DatabaseStorage(engine) for engine in engines]

    def hammer(storage: DatabaseStorage) -> None:
        for _ in range(25):
            storage.incr("race", 60)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in storages * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert storages[0].get("race") == 100
    for engine in engines:
        engine.dispose()
