"""The bench sink: reading a message's content in one piece receives exactly what
aiosmtpd's own line-by-line loop does (the same messages, the same bytes after
un-stuffing), whatever the content's dots and line ends."""

from __future__ import annotations

import smtplib

import pytest

from bench.sink import Sink

pytestmark = pytest.mark.slow

MESSAGES = [
    b"Subject: plain\r\n\r\nOne line.\r\n",
    b"Subject: dots\r\n\r\n.a line that starts with a dot\r\n..two\r\n.\r\nend.\r\n",
    b"Subject: no final line end\r\n\r\nlast line.",
    b"Subject: empty body\r\n\r\n",
    b".\r\n",  # a lone dot: the client stuffs it, the sink must not end the message there
    b"",
    b"Subject: long\r\n\r\n" + b"x" * 990 + b"\r\n" + b"y. \r\n" * 3000,
]


def send_all(sink: Sink) -> dict[str, int]:
    with smtplib.SMTP(sink.host, sink.smtp_port) as client:
        for number, data in enumerate(MESSAGES):
            client.sendmail("from@example.org", [f"to{number}@example.org"], data)
    return sink.count()


def test_the_block_reader_receives_what_the_line_reader_does():
    with Sink() as block, Sink(line_reader=True) as lines:
        received = send_all(block)
        assert received == send_all(lines)
    assert received["messages"] == received["recipients"] == len(MESSAGES)
    assert received["duplicates"] == 0
    # What smtplib sends for each, less the transparency dots: every line (even of an
    # empty message) ends in CRLF.
    expected = sum(len(d) + (0 if d.endswith(b"\r\n") else 2) for d in MESSAGES)
    assert received["bytes"] == expected
