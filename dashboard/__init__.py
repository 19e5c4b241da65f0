"""Event communications dashboard: the application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.config import DEBUG_IN_PRODUCTION, ConfigError, load_config
from dashboard.extensions import csrf, db, login_manager, mail, migrate

__all__ = ["ConfigError", "create_app"]

ROOT = Path(__file__).resolve().parent.parent


def create_app(
    overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Flask:
    """Build the app. ``env`` defaults to the process environment (plus ``.env``)."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    if env is None:
        _load_dotenv()
        env = os.environ
    app.config.from_mapping(load_config(env, Path(app.instance_path)))
    if overrides:
        app.config.from_mapping(overrides)
    if app.config["APP_ENV"] == "production" and app.debug:
        raise ConfigError(DEBUG_IN_PRODUCTION)  # Flask reads FLASK_DEBUG from os.environ itself
    if app.config["TRUSTED_PROXY_COUNT"]:
        # Behind a reverse proxy the client's address (the login throttle counts per address)
        # and scheme come from its X-Forwarded-* headers, believed for that many hops only.
        hops = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per poll

    from dashboard import web

    web.install_converters(app)
    _init_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    web.init_app(app)

    from dashboard.dispatch import scheduler

    scheduler.init_app(app)
    return app


def _load_dotenv() -> None:
    from dotenv import load_dotenv

    load_dotenv(ROOT / ".env", override=False)


def _init_extensions(app: Flask) -> None:
    from dashboard import database, models  # noqa: F401  (every table on the metadata)

    db.init_app(app)
    database.configure_engine_events()
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"

    from dashboard.auth import loaders

    loaders.register(login_manager)


def _register_blueprints(app: Flask) -> None:
    from dashboard.admin import suppressions  # noqa: F401 - its pages join the admin blueprint
    from dashboard.admin.metrics import bp as metrics_bp
    from dashboard.admin.routes import bp as admin_bp
    from dashboard.api import bp as api_bp
    from dashboard.auth.routes import bp as auth_bp
    from dashboard.dispatch import control_routes  # noqa: F401 - its pages join dispatch's
    from dashboard.dispatch.routes import bp as dispatch_bp
    from dashboard.events import (  # noqa: F401 - their pages join the events blueprint
        guest_routes,
        lifecycle_routes,
    )
    from dashboard.events.public import bp as public_bp
    from dashboard.events.routes import bp as events_bp
    from dashboard.messages import action_routes  # noqa: F401 - its pages join messages'
    from dashboard.messages.routes import bp as messages_bp
    from dashboard.suppressions.webhooks import bp as webhooks_bp

    for bp in (auth_bp, events_bp, public_bp, messages_bp, dispatch_bp, admin_bp, metrics_bp):
        app.register_blueprint(bp)
    app.register_blueprint(webhooks_bp)
    csrf.exempt(webhooks_bp)  # signed by the provider instead
    app.register_blueprint(api_bp, url_prefix="/api")
    csrf.exempt(
        api_bp
    )  # Bearer calls need no token; session-cookie writes are checked in api/__init__.py


def _register_cli(app: Flask) -> None:
    from dashboard.admin.cli import logs_cli, stats_command
    from dashboard.auth.cli import (
        create_token_command,
        create_user_command,
        set_password_command,
    )
    from dashboard.dispatch.cli import dispatch_cli
    from dashboard.events.cli import (
        check_guest_emails_command,
        import_guests_command,
        seed_demo_command,
    )

    for command in (
        create_user_command,
        set_password_command,
        create_token_command,
        seed_demo_command,
        import_guests_command,
        check_guest_emails_command,
        dispatch_cli,
        stats_command,
        logs_cli,
    ):
        app.cli.add_command(command)
