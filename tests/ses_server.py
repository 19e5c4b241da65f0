"""SES for tests: moto's server on loopback, behind a small front that can answer a queued
fault instead (SES's REST-JSON error shape: ``x-amzn-ErrorType`` and a JSON body), the way
the Resend test server does. ``url`` is what SES_ENDPOINT_URL takes."""

from __future__ import annotations

import http.client
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FrontServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = None
        if self.command == "POST" and "/outbound-emails" in self.path:
            with self.server.lock:
                self.server.requests += 1
                fault = self.server.faults.popleft() if self.server.faults else None
        if fault is not None:
            status, code, message = fault
            self._answer(
                status, {"x-amzn-ErrorType": code}, json.dumps({"message": message}).encode()
            )
            return
        conn = http.client.HTTPConnection(*self.server.moto, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        conn.request(self.command, self.path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        keep = {
            k: v
            for k, v in answer.getheaders()
            if k.lower() in ("content-type", "x-amzn-errortype", "x-amzn-requestid")
        }
        conn.close()
        self._answer(answer.status, keep, data)

    def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    moto: tuple[str, int]
    faults: deque[tuple[int, str, str]]
    lock: threading.Lock
    requests: int


class SESServer:
    def __init__(self) -> None:
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.front: FrontServer | None = None

    def start(self) -> SESServer:
        self.moto.start()
        front = FrontServer(("127.0.0.1", 0), Front)
        front.moto = self.moto.get_host_and_port()
        front.faults, front.lock, front.requests = deque(), threading.Lock(), 0
        self.front = front
        threading.Thread(target=front.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.front is not None:
            self.front.shutdown()
            self.front.server_close()
            self.front = None
        self.moto.stop()

    @property
    def url(self) -> str:
        assert self.front is not None
        host, port = self.front.server_address[:2]
        return f"http://{host}:{port}"

    def moto_url(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    def reset(self, verified: str | None = "noreply@example.org") -> None:
        """Forget everything sent and queued; verify ``verified`` as a sender identity."""
        conn = http.client.HTTPConnection(*self.moto.get_host_and_port(), timeout=10)
        conn.request("POST", "/moto-api/reset")
        conn.getresponse().read()
        conn.close()
        assert self.front is not None
        with self.front.lock:
            self.front.faults.clear()
            self.front.requests = 0
        if verified:
            client = boto3.client(
                "ses",
                region_name=REGION,
                endpoint_url=self.moto_url(),
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            client.verify_email_identity(EmailAddress=verified)

    def fail_next(self, status: int, code: str, message: str = "", times: int = 1) -> None:
        assert self.front is not None
        with self.front.lock:
            self.front.faults.extend([(status, code, message or code)] * times)

    def sent(self) -> list[dict[str, Any]]:
        """What SES (moto) accepted: one dict per message, with its recipient and raw data."""
        conn = http.client.HTTPConnection(*self.moto.get_host_and_port(), timeout=10)
        conn.request("GET", "/moto-api/data.json")
        data = json.loads(conn.getresponse().read())
        conn.close()
        return list(data.get("ses", {}).get("RawMessage", []))

    def recipients(self) -> list[str]:
        return [sorted(set(item["destinations"]))[0] for item in self.sent()]

    def config(self) -> dict[str, str]:
        return {"MAIL_TRANSPORT": "ses", "SES_REGION": REGION, "SES_ENDPOINT_URL": self.url}
