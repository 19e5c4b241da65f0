from flask import Flask


def register(app: Flask) -> None:
    """Event CLI commands (seed-demo, import-guests) register here."""
