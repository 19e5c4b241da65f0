"""A local HTTP server that follows Resend's documented sending API, for tests and the bench.

- ``POST /emails`` (one e-mail) and ``POST /emails/batch`` (up to 100; strict by default,
  ``x-batch-validation: permissive`` sends the valid ones and lists the others by index);
- ``Authorization: Bearer <key>``: none is a 401 ``missing_api_key``, a wrong one a 403
  ``invalid_api_key``;
- ``Idempotency-Key``: the same key with the same body answers the first answer again and
  sends nothing; with another body it is a 409 ``invalid_idempotent_request``;
- faults a test queues: any status with Resend's error body and a ``Retry-After``
  (``fail_next``), an answer dropped after the request was accepted (``drop_next``), a
  request rate above which it answers 429 ``rate_limit_exceeded`` (``per_second``), a
  latency per request, recipients refused with a 422 (``invalid``).

Everything accepted is kept in ``sent`` (one dict per e-mail, with its id), every request
in ``requests`` (time, path, e-mails, key, status).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "re_test_0123456789"


@dataclass
class Fault:
    status: int = 500
    name: str = "internal_server_error"
    message: str = "Something went wrong."
    retry_after: str | None = None
    drop: bool = False  # accept the request, then close the connection without answering


@dataclass
class Request:
    at: float
    path: str
    emails: int
    key: str | None
    status: int


@dataclass
class State:
    api_key: str = API_KEY
    latency: float = 0.0
    per_second: float | None = None
    invalid: set[str] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    answers: dict[str, tuple[str, int, bytes]] = field(default_factory=dict)
    recent: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ResendHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        state = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if state.latency:
            time.sleep(state.latency)
        key = self.headers.get("Idempotency-Key")
        status, answer, headers = self._answer(state, body, key)
        if status is None:  # dropped after it was accepted
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _answer(
        self, state: State, body: bytes, key: str | None
    ) -> tuple[int | None, Any, dict[str, str]]:
        path = self.path
        with state.lock:
            emails = _emails_in(body, path)
            record = Request(time.time(), path, len(emails), key, 0)
            state.requests.append(record)
            status, answer, headers = self._decide(state, body, key, emails)
            record.status = status or 0
            return status, answer, headers

    def _decide(
        self, state: State, body: bytes, key: str | None, emails: list[Any]
    ) -> tuple[int | None, Any, dict[str, str]]:
        auth = self.headers.get("Authorization") or ""
        if not auth:
            return _error(401, "missing_api_key", "Missing API key in the authorization header.")
        if auth != f"Bearer {state.api_key}":
            return _error(403, "invalid_api_key", "API key is invalid.")
        if self.path not in ("/emails", "/emails/batch"):
            return _error(404, "not_found", "The requested endpoint does not exist.")
        digest = hashlib.sha256(body).hexdigest()
        if key and key in state.answers:
            seen, status, answer = state.answers[key]
            if seen != digest:
                return _error(
                    409,
                    "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload.",
                )
            return status, json.loads(answer), {}
        if state.per_second is not None and self._over_rate(state):
            return _error(429, "rate_limit_exceeded", "Too many requests.", {"Retry-After": "1"})
        fault = state.faults.popleft() if state.faults else None
        if fault is not None and not fault.drop:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _error(fault.status, fault.name, fault.message, extra)
        status, answer = self._send(state, emails)
        if key and status == 200:
            state.answers[key] = (digest, status, json.dumps(answer).encode())
        if fault is not None:  # accepted, then the answer is lost
            return None, None, {}
        return status, answer, {}

    def _over_rate(self, state: State) -> bool:
        now = time.time()
        while state.recent and state.recent[0] <= now - 1.0:
            state.recent.popleft()
        if len(state.recent) >= (state.per_second or 0):
            return True
        state.recent.append(now)
        return False

    def _send(self, state: State, emails: list[Any]) -> tuple[int, Any]:
        batch = self.path == "/emails/batch"
        if batch and not 1 <= len(emails) <= 100:
            return 422, _body(422, "validation_error", "A batch holds 1 to 100 e-mails.")
        problems = {i: p for i, email in enumerate(emails) if (p := _problem(state, email))}
        permissive = self.headers.get("x-batch-validation") == "permissive"
        if problems and (not batch or not permissive):
            return 422, _body(422, "validation_error", next(iter(problems.values())))
        ids = []
        for index, email in enumerate(emails):
            if index not in problems:
                ident = str(uuid.uuid4())
                state.sent.append({**email, "id": ident})
                ids.append({"id": ident})
        if not batch:
            return 200, ids[0]
        answer: dict[str, Any] = {"data": ids}
        if permissive:
            answer["errors"] = [{"index": i, "message": p} for i, p in problems.items()]
        return 200, answer


def _emails_in(body: bytes, path: str) -> list[Any]:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return []
    if path == "/emails/batch":
        return data if isinstance(data, list) else []
    return [data] if isinstance(data, dict) else []


def _problem(state: State, email: Any) -> str | None:
    if not isinstance(email, dict):
        return "An e-mail must be an object."
    missing = [name for name in ("from", "to", "subject") if not email.get(name)]
    if missing:
        return f"Missing `{missing[0]}` field."
    to = email["to"] if isinstance(email["to"], list) else [email["to"]]
    for address in to:
        if "@" not in str(address) or any(bad in str(address) for bad in state.invalid):
            return (
                "Invalid `to` field. The email address needs to follow the "
                "`email@example.com` or `Name <email@example.com>` format."
            )
    return None


def _body(status: int, name: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "name": name, "message": message}


def _error(
    status: int, name: str, message: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    return status, _body(status, name, message), headers or {}


class ResendHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: State


class ResendServer:
    """``start()`` on a free loopback port; ``url`` is what RESEND_API_URL takes."""

    def __init__(self, latency: float = 0.0):
        self.state = State(latency=latency)
        self._server: ResendHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ResendServer:
        server = ResendHTTPServer(("127.0.0.1", 0), Handler)
        server.state = self.state
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def config(self) -> dict[str, str]:
        """Environment for the app to send through this server."""
        return {
            "MAIL_TRANSPORT": "resend",
            "RESEND_API_KEY": self.state.api_key,
            "RESEND_API_URL": self.url,
        }

    # --- what a test queues ---------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        name: str = "",
        message: str = "",
        retry_after: str | None = None,
        times: int = 1,
    ) -> None:
        fault = Fault(status, name or "error", message or f"HTTP {status}", retry_after)
        with self.state.lock:
            self.state.faults.extend([fault] * times)

    def drop_next(self, times: int = 1) -> None:
        with self.state.lock:
            self.state.faults.extend([Fault(drop=True)] * times)

    # --- what arrived ---------------------------------------------------------------------

    @property
    def sent(self) -> list[dict[str, Any]]:
        return self.state.sent

    @property
    def requests(self) -> list[Request]:
        return self.state.requests

    def recipients(self) -> list[str]:
        return [address for email in self.sent for address in email["to"]]
