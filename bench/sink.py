"""An SMTP sink in its own process: counts what it receives, keeps no bodies.

Run as ``python -m bench.sink [DELAY] [--no-pipelining] [--line-reader]``; it waits DELAY
seconds before answering each message (a relay's latency; 0 by default), offers
PIPELINING unless told not to, and prints one JSON line ``{"smtp_port": ..,
"control_port": ..}`` when both ports listen. The control port speaks one line per
request: ``COUNT`` answers a JSON object (messages, distinct recipients, duplicate
recipients, bytes), ``RESET`` answers the same and sets everything to zero, ``QUIT``
stops the sink. Distinct recipients are kept as a set of addresses (a few MB for
100,000), which is what lets the benchmark prove "exactly once" at the receiving end.

The sink is aiosmtpd, reading a message's content in one piece as a relay written in C
does (``block_smtp``); ``--line-reader`` keeps aiosmtpd's own DATA loop, which runs
Python for every line: a Python relay, to show what an e-mail's lines cost one.

``Sink`` is the parent's handle: it starts the process and talks to the control port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Tally:
    messages: int = 0
    bytes: int = 0
    duplicates: int = 0
    recipients: set[str] = field(default_factory=set)

    def snapshot(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "recipients": len(self.recipients),
            "duplicates": self.duplicates,
            "bytes": self.bytes,
        }

    def reset(self) -> dict[str, int]:
        snap = self.snapshot()
        self.messages = self.bytes = self.duplicates = 0
        self.recipients = set()
        return snap


class CountingHandler:
    """aiosmtpd handler: accept everything, count it, drop the content.

    It offers PIPELINING (RFC 2920), as the relays a deployment sends through do (Postfix,
    Exim, Amazon SES, SendGrid, Mailgun); ``pipelining=False`` makes a sink that does not.
    aiosmtpd reads commands one line at a time from a buffer, so it answers pipelined
    commands in order without any change of its own."""

    def __init__(self, tally: Tally, delay: float = 0.0, pipelining: bool = True):
        self.tally = tally
        self.delay = delay
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]  # noqa: N802
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        if self.delay:  # a real relay's time per message (its queue write, its checks)
            await asyncio.sleep(self.delay)
        tally = self.tally
        tally.messages += 1
        tally.bytes += len(envelope.content or b"")
        for rcpt in envelope.rcpt_tos:
            if rcpt in tally.recipients:
                tally.duplicates += 1
            else:
                tally.recipients.add(rcpt)
        return "250 OK"


def block_smtp() -> type:
    """aiosmtpd's SMTP, reading a message's content in one piece, as a relay in C does.

    aiosmtpd's own DATA loop runs Python for every line of content (about 2.6 µs a line
    on the bench VM): on loopback the sink, not the dispatcher, would set the pace, and an
    e-mail's cost would grow with its lines far beyond what a relay in C spends on them.
    Commands are still read and answered by aiosmtpd, and content is un-stuffed as RFC
    5321 says, so the byte counts are the same as with aiosmtpd's loop."""
    from aiosmtpd.smtp import SMTP

    class BlockSMTP(SMTP):
        line_length_limit = 64 * 1024 * 1024  # the reader's limit: a whole message fits

        async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
            assert self.envelope is not None
            if await self.check_helo_needed():
                return
            if not self.envelope.rcpt_tos or arg:
                await self.push("503 Error: need RCPT command" if not arg else "501 Syntax: DATA")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            data = b""
            while data != b".\r\n" and not data.endswith(b"\r\n.\r\n"):
                data += await self._reader.readuntil(b".\r\n")
            content = data[:-3].replace(b"\r\n..", b"\r\n.")
            if content.startswith(b".."):
                content = content[1:]
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status)

    return BlockSMTP


async def serve(
    host: str = "127.0.0.1", delay: float = 0.0, pipelining: bool = True, line_reader: bool = False
) -> None:
    from aiosmtpd.smtp import SMTP

    smtp_class = SMTP if line_reader else block_smtp()
    tally = Tally()
    handler = CountingHandler(tally, delay, pipelining)
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()

    def make_smtp() -> SMTP:
        # A fixed hostname: otherwise every connection pays socket.getfqdn().
        return smtp_class(handler, hostname="bench-sink", data_size_limit=10 * 1024 * 1024)

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                command = line.decode().strip().upper()
                if command == "RESET":
                    answer: dict[str, Any] = tally.reset()
                elif command == "QUIT":
                    answer = {"bye": True}
                    if not stopped.done():
                        stopped.set_result(None)
                else:
                    answer = tally.snapshot()
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        writer.close()

    smtp_server = await loop.create_server(make_smtp, host, 0)
    control_server = await asyncio.start_server(control, host, 0)
    ports = {
        "smtp_port": smtp_server.sockets[0].getsockname()[1],
        "control_port": control_server.sockets[0].getsockname()[1],
    }
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    try:
        await stopped
    finally:
        smtp_server.close()
        control_server.close()


class Sink:
    """The parent's handle on a sink process (a context manager)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        delay: float = 0.0,
        pipelining: bool = True,
        line_reader: bool = False,
    ):
        self.host = host
        self.delay = delay
        self.pipelining = pipelining
        self.line_reader = line_reader
        self.proc: subprocess.Popen[str] | None = None
        self.smtp_port = 0
        self.control_port = 0
        self._control: socket.socket | None = None
        self._reader: Any = None

    def start(self) -> Sink:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", str(self.delay)]
            + ([] if self.pipelining else ["--no-pipelining"])
            + (["--line-reader"] if self.line_reader else []),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the SMTP sink did not start")
        ports = json.loads(line)
        self.smtp_port, self.control_port = ports["smtp_port"], ports["control_port"]
        self._control = socket.create_connection((self.host, self.control_port), timeout=30)
        self._reader = self._control.makefile("r", encoding="utf-8")
        return self

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._control is not None
        self._control.sendall(command.encode() + b"\n")
        return json.loads(self._reader.readline())

    def count(self) -> dict[str, int]:
        return self._ask("COUNT")

    def reset(self) -> dict[str, int]:
        return self._ask("RESET")

    def cpu_seconds(self) -> float:
        """User + system CPU the sink process has used so far (Linux ``/proc``)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def mail_env(self) -> dict[str, str]:
        """Environment for the app to send through this sink."""
        return {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": str(self.smtp_port),
            "MAIL_TRANSPORT": "smtp",
        }

    def stop(self) -> None:
        if self._control is not None:
            with contextlib.suppress(OSError, ValueError):
                self._ask("QUIT")
            self._reader.close()
            self._control.close()
            self._control = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(
        serve(
            delay=float(arguments[0]) if arguments else 0.0,
            pipelining="--no-pipelining" not in sys.argv,
            line_reader="--line-reader" in sys.argv,
        )
    )
