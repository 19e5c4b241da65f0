"""Provider webhooks that feed the suppression list: ``POST /webhooks/resend``.

Resend signs its webhooks the Svix way (``svix-id``, ``svix-timestamp``,
``svix-signature``, HMAC with ``RESEND_WEBHOOK_SECRET``); the ``svix`` library checks the
signature and refuses a timestamp more than five minutes away. A bad or old signature is
a 401 and changes nothing. ``email.bounced`` (a permanent bounce) and
``email.complained`` suppress the recipients; any other type is answered 200 and ignored.
A delivery already handled (its ``svix-id``) changes nothing the second time.

No login and no CSRF token: the signature is the authentication.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.orm import Session
from svix.webhooks import Webhook, WebhookVerificationError

from dashboard.database import insert_ignoring_duplicates
from dashboard.db_types import utcnow
from dashboard.extensions import db
from dashboard.suppressions.models import SuppressionKind, WebhookReceipt
from dashboard.suppressions.services import Refusal, suppress
from dashboard.web import json_error

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

SOURCE = "resend webhook"


@bp.post("/resend")
def resend() -> Response:
    secret = current_app.config.get("RESEND_WEBHOOK_SECRET")
    if not secret:
        return json_error(404, "Resend webhooks are not set up here (RESEND_WEBHOOK_SECRET).")
    body = request.get_data()
    try:
        Webhook(secret).verify(body, dict(request.headers))
        event = json.loads(body)
    except (WebhookVerificationError, ValueError) as error:
        log.warning("refused a Resend webhook: %s", error)
        return json_error(401, "The webhook's signature is missing, wrong or too old.")
    if not isinstance(event, dict):
        return json_error(400, "The webhook's body is not a JSON object.")
    outcome = handle_resend_event(db.session, event, request.headers["svix-id"], utcnow())
    db.session.commit()
    return jsonify({"outcome": outcome})


def handle_resend_event(
    session: Session, event: dict[str, Any], delivery_id: str, now: datetime
) -> str:
    """What one verified webhook changes; the caller commits. Returns it in a word."""
    kind = str(event.get("type") or "")
    # RETURNING tells whether the row went in (a rowcount after ON CONFLICT differs by driver).
    fresh = session.scalar(
        insert_ignoring_duplicates(session, WebhookReceipt, ["source", "delivery_id"])
        .values(
            source="resend", delivery_id=delivery_id[:200], event_type=kind[:80], received_at=now
        )
        .returning(WebhookReceipt.id)
    )
    if fresh is None:
        return "already handled"
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    recipients = [str(to) for to in _list(data.get("to")) if str(to).strip()]
    if kind == "email.bounced":
        bounce = data.get("bounce") if isinstance(data.get("bounce"), dict) else {}
        if str(bounce.get("type") or "").lower() != "permanent":
            return "ignored: not a hard bounce"
        detail = _bounce_detail(bounce)
        refusals = [Refusal(to, SuppressionKind.HARD_BOUNCE, detail, SOURCE) for to in recipients]
    elif kind == "email.complained":
        detail = "the recipient reported it as spam"
        refusals = [Refusal(to, SuppressionKind.COMPLAINT, detail, SOURCE) for to in recipients]
    else:
        return "ignored"
    suppress(session, refusals, now)
    return f"suppressed {len(refusals)}"


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [value] if value else []


def _bounce_detail(bounce: dict[str, Any]) -> str:
    """The receiving server's words ("550 5.1.1 mailbox unavailable") when Resend passes
    them on, else its own message."""
    code = str(bounce.get("diagnosticCode") or "").strip()
    if code.lower().startswith("smtp;"):
        code = code[5:].strip()
    return code or str(bounce.get("message") or bounce.get("subType") or "").strip()
