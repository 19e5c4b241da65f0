"""Resend over its HTTP API, with httpx.

httpx rather than the official ``resend`` SDK: the SDK keeps the key and the URL in
module globals (one per process, not per transport), and turns every network failure
into the same ``ResendError(500)``, so a refused connection (nothing was sent: pause)
could not be told from an answer lost after the request went out (it may have been
accepted: retry with the same key). It also hides ``Retry-After``. The API itself is
small: two POSTs and a JSON error shape.

- A group of one goes to ``POST /emails``, a larger one (up to 100) to ``POST
  /emails/batch`` in permissive mode, so one invalid address fails only its own e-mail.
- Every request carries an ``Idempotency-Key`` made from the deliveries it carries and a
  digest of its body: the same chunk sent again (after a timeout, a lost answer, a crash)
  has the same key and the same content, so Resend answers with the first result instead
  of sending again; different content never reuses a key (Resend would refuse it with 409).
- Each e-mail's result goes to its own delivery, with Resend's id as its provider id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from dashboard.dispatch.transports import (
    Payload,
    Refused,
    SendResult,
    SlowDown,
    Transport,
    TransportSpec,
    Unreachable,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "https://api.resend.com"
#: Resend's limit of e-mails in one batch request.
MAX_BATCH = 100
#: A request whose answer was lost goes again (same key, same body) this many times.
LOST_ANSWER_RETRIES = 2
QUOTA_ERRORS = frozenset({"daily_quota_exceeded", "monthly_quota_exceeded"})

Result = SendResult | Unreachable


@dataclass(frozen=True)
class ResendSettings:
    api_key: str
    url: str = DEFAULT_URL
    timeout: float = 30.0
    batch_size: int = MAX_BATCH

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ResendSettings:
        return cls(
            api_key=config["RESEND_API_KEY"] or "",
            url=(config.get("RESEND_API_URL") or DEFAULT_URL).rstrip("/"),
            timeout=float(config.get("MAIL_TIMEOUT_SECONDS", 30.0)),
            batch_size=int(config.get("RESEND_BATCH_SIZE") or MAX_BATCH),
        )


def resend_spec(config: dict[str, Any]) -> TransportSpec:
    settings = ResendSettings.from_config(config)
    return TransportSpec("resend", lambda: ResendTransport(settings), settings.batch_size)


def email_json(payload: Payload) -> dict[str, Any]:
    """One e-mail as Resend takes it. The recipient is the stored address as it is (the
    display name could make Resend's parser refuse a good address)."""
    email: dict[str, Any] = {
        "from": payload.from_header or payload.sender,
        "to": [payload.recipient],
        "subject": payload.subject,
        "text": payload.body,
    }
    if payload.html:
        email["html"] = payload.html
    if payload.reply_to:
        email["reply_to"] = payload.reply_to
    if payload.headers:
        email["headers"] = dict(payload.headers)
    if payload.attachments:
        email["attachments"] = [
            {"filename": name, "content": base64.b64encode(content).decode("ascii")}
            for name, content in payload.attachments
        ]
    return email


def request_body(payloads: Sequence[Payload]) -> tuple[str, bytes]:
    """The path and the JSON body of one request carrying ``payloads``."""
    if len(payloads) == 1:
        return "/emails", _dump(email_json(payloads[0]))
    return "/emails/batch", _dump([email_json(p) for p in payloads])


def request_key(payloads: Sequence[Payload], body: bytes) -> str:
    """Stable for the same deliveries with the same content, and only for them."""
    digest = hashlib.sha256()
    for payload in payloads:
        digest.update(payload.idempotency_key.encode() + b"\n")
    digest.update(body)
    first = payloads[0].idempotency_key
    if len(payloads) == 1:
        return f"{first}/{digest.hexdigest()[:24]}"
    return f"{first}+{len(payloads) - 1}/{digest.hexdigest()[:32]}"


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class ResendTransport(Transport):
    """One httpx client (a keep-alive connection pool) per sending thread."""

    def __init__(self, settings: ResendSettings):
        self.settings = settings
        self.client: httpx.Client | None = None

    def open(self) -> None:
        if self.client is None:
            timeout = self.settings.timeout
            self.client = httpx.Client(
                base_url=self.settings.url,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                headers={
                    "Authorization": f"Bearer {self.settings.api_key}",
                    "User-Agent": "event-dashboard",
                },
            )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def send(self, payload: Payload) -> SendResult:
        [result] = self.send_group([payload])
        if isinstance(result, Unreachable):
            raise result
        return result

    def send_group(self, payloads: Sequence[Payload]) -> list[Result]:
        if len(payloads) > 1 and any(p.attachments for p in payloads):
            # The batch endpoint drops attachments: a calendar invitation goes one by one.
            return [result for p in payloads for result in self.send_group([p])]
        self.open()
        path, body = request_body(payloads)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": request_key(payloads, body),
        }
        if len(payloads) > 1:
            headers["x-batch-validation"] = "permissive"
        response = self._post(path, body, headers, len(payloads))
        if isinstance(response, httpx.Response):
            return read_answer(response, payloads)
        return [response] * len(payloads)

    def _post(
        self, path: str, body: bytes, headers: dict[str, str], count: int
    ) -> httpx.Response | Result:
        """The answer, or what to record when there is none. A request that went out and
        lost its answer is sent again with the same key and body."""
        assert self.client is not None
        lost: Exception | None = None
        for attempt in range(LOST_ANSWER_RETRIES + 1):
            try:
                return self.client.post(path, content=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                if lost is None:  # nothing went out: the server is not there
                    raise Unreachable(f"cannot reach {self.settings.url}: {error}") from error
                lost = error  # the first try may have been accepted: unknown, so transient
                break
            except httpx.TransportError as error:  # timeout, dropped connection, bad answer
                lost = error
                log.warning(
                    "no answer from Resend for %s e-mails (%s); trying again with the same key",
                    count,
                    type(error).__name__,
                )
                time.sleep(0.2 * (attempt + 1))
        detail = f"{type(lost).__name__}: {lost}".rstrip(": ")
        return SendResult.transient(f"no answer from Resend ({detail})")


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), if the answer has one."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """Resend's error name and message (``{"name": ..., "message": ...}``), or the status."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        return str(data.get("name") or ""), str(data.get("message") or response.reason_phrase)
    return "", response.text[:200] or response.reason_phrase


def about_recipient(message: str) -> bool:
    """A validation error naming the ``to`` field: the recipient's address is refused."""
    lowered = message.lower()
    return "`to`" in lowered or "to field" in lowered or "recipient" in lowered


def read_answer(response: httpx.Response, payloads: Sequence[Payload]) -> list[Result]:
    """One result per payload from Resend's answer."""
    status = response.status_code
    if 200 <= status < 300:
        return _accepted(response, payloads)
    name, message = _error_of(response)
    text = f"{status} {name}: {message}" if name else f"{status} {message}"
    count = len(payloads)
    if status == 429:
        quota = name in QUOTA_ERRORS
        return [SlowDown(text, retry_after(response), quota=quota)] * count
    if status in (401, 403):
        return [Refused(text, setting="RESEND_API_KEY")] * count
    if status == 409 and name == "concurrent_idempotent_requests":
        return [SlowDown(text, retry_after(response) or 1.0)] * count
    if status in (400, 409, 422):
        suppress = count == 1 and status == 422 and about_recipient(message)
        return [SendResult.permanent(text, suppress=suppress)] * count
    if status >= 500:
        return [SendResult.transient(text)] * count
    return [Refused(text, setting="RESEND_API_URL")] * count


def _accepted(response: httpx.Response, payloads: Sequence[Payload]) -> list[Result]:
    """A single send's id, or a batch's ids in order with its per-e-mail validation errors
    (permissive mode lists the refused e-mails by index; the ids are those of the rest)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if len(payloads) == 1 and isinstance(data, dict) and data.get("id"):
        return [SendResult.sent(str(data["id"]))]
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        # Accepted but unreadable: the e-mails went out, so they must not go again.
        log.warning("Resend accepted a request with an unreadable answer: %.200s", response.text)
        return [SendResult.sent(None)] * len(payloads)
    errors = {
        int(item["index"]): str(item.get("message") or "refused")
        for item in data.get("errors") or []
        if isinstance(item, dict) and isinstance(item.get("index"), int)
    }
    ids = iter(str(item.get("id") or "") or None for item in data["data"])
    results: list[Result] = []
    for index in range(len(payloads)):
        if index in errors:
            message = f"422 validation_error: {errors[index]}"
            results.append(SendResult.permanent(message, suppress=about_recipient(message)))
        else:
            results.append(SendResult.sent(next(ids, None)))
    return results
