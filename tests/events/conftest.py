"""Helpers for the events pages: CSV uploads and reading a hidden form field."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient

from dashboard.events.models import Event


def csv_upload(text: str | bytes, filename: str = "guests.csv") -> dict[str, object]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return {"file": (io.BytesIO(data), filename)}


def upload_csv(client: FlaskClient, event: Event, text: str | bytes):
    return client.post(
        f"/events/{event.id}/guests/import",
        data=csv_upload(text),
        content_type="multipart/form-data",
    )


def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html
    )
    assert match, f"no hidden field {name!r} in the page"
    return match.group(1)
