from flask import Flask


def register(app: Flask) -> None:
    """Dispatch CLI commands register here."""
