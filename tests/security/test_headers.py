"""Production settings and the browser's security headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Response

from dashboard import create_app
from dashboard.config import ConfigError, load_config
from dashboard.security import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "x" * 32}


@pytest.mark.parametrize("value", ["1", "true", "on", "anything"])
def test_production_with_flask_debug_refuses_to_start(tmp_path, value):
    with pytest.raises(ConfigError, match="FLASK_DEBUG is on with APP_ENV=production"):
        load_config({**PRODUCTION, "FLASK_DEBUG": value}, tmp_path)


def test_flask_run_debug_in_production_refuses_to_start(monkeypatch, tmp_path):
    """``flask run --debug`` sets FLASK_DEBUG in the process environment, which Flask reads."""
    monkeypatch.setenv("FLASK_DEBUG", "1")
    env = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    with pytest.raises(ConfigError, match="FLASK_DEBUG"):
        create_app(env=env)


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_production_without_debug_starts(tmp_path, value):
    assert load_config({**PRODUCTION, "FLASK_DEBUG": value}, tmp_path)["APP_ENV"] == "production"


def test_development_may_debug(tmp_path):
    assert load_config({"APP_ENV": "development", "FLASK_DEBUG": "1"}, tmp_path)


@pytest.mark.parametrize("path", ["/login", "/api/openapi.json", "/healthz", "/static/css/app.css"])
def test_every_answer_has_the_content_security_policy(client, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "Strict-Transport-Security" not in response.headers  # http://dashboard.test


def test_hsts_when_the_public_address_is_https(app_env):
    app = create_app(env={**app_env, "PUBLIC_BASE_URL": "https://events.example.org"})
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_an_answer_with_its_own_policy_keeps_it(app, client):
    own = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

    def sandboxed() -> Response:
        return Response("<p>mail</p>", headers={"Content-Security-Policy": own})

    app.add_url_rule("/sandboxed-for-test", view_func=sandboxed)
    assert client.get("/sandboxed-for-test").headers["Content-Security-Policy"] == own


INLINE = [
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<style", re.I), "a <style> element"),
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\shx-on[:-]|\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_needs_inline_script_or_style():
    """The policy allows neither; a template that used them would break in the browser."""
    found = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        # The e-mail layout is no page of ours: it travels in e-mails, and the preview frame
        # that shows it is served with its own policy (inline styles, nothing executable).
        if "mail" not in path.relative_to(ROOT / "templates").parts[:1]
        for pattern, what in INLINE
        if pattern.search(path.read_text())
    ]
    assert found == []


def test_htmx_injects_no_style_and_evaluates_nothing(client):
    page = client.get("/login").get_data(as_text=True)
    config = re.search(r'<meta name="htmx-config" content=\'([^\']*)\'>', page).group(1)
    assert '"includeIndicatorStyles": false' in config
    assert '"allowEval": false' in config
