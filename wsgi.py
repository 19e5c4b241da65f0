"""Entry point for gunicorn (``wsgi:app``) and ``flask --app wsgi``."""

import sys

from dashboard import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    sys.stderr.write(f"configuration error: {error}\n")
    raise SystemExit(2) from None
