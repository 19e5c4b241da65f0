from flask import Flask


def init_app(app: Flask) -> None:
    """Start the poller when SCHEDULER_ENABLED (filled in by the dispatch engine)."""
