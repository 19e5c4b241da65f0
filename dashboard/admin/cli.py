from flask import Flask


def register(app: Flask) -> None:
    """Admin CLI commands (stats, logs cleanup) register here."""
