"""The subject header: RFC 2047 encoded words written directly, cheaply."""

from __future__ import annotations

import base64
import time
from email import message_from_bytes, policy

import pytest

from dashboard.dispatch.mime import encode_subject

SUBJECTS = [
    "Ça commence: Fête d'été 🎉",
    "日本語の件名です。" * 12,
    "Zoë " + "é" * 200,
    "x" * 950,  # ASCII, but too long for one line
    "🎉" * 40,
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subject_reads_back_whole_in_short_lines(subject):
    header = "Subject: " + encode_subject(subject)
    lines = header.split("\r\n")
    assert all(len(line) <= 76 for line in lines)
    for word in header.removeprefix("Subject: ").split("\r\n "):
        # Every encoded word is whole UTF-8 on its own: no character is cut in two.
        assert word.startswith("=?utf-8?b?") and word.endswith("?=")
        base64.b64decode(word[10:-2]).decode("utf-8")
    mail = message_from_bytes(
        (header + "\r\nTo: a@example.org\r\n\r\nbody\r\n").encode("ascii"), policy=policy.default
    )
    assert mail["Subject"] == subject


def test_plain_subject_is_left_as_it_is():
    assert encode_subject("Hello\r\n  there") == "Hello there"


def test_encoding_costs_microseconds_not_a_millisecond():
    """``email.header.Header`` took about 33 µs of CPU a subject (0.4 ms under the profiler),
    the direct encoder about 2 µs; the bound sits between, with room for a busy machine."""
    subjects = [f"Zoë Ünïcode-Ñame {i}: Fête d'été 🎉" for i in range(2000)]
    started = time.process_time()
    for subject in subjects:
        encode_subject(subject)
    assert time.process_time() - started < 2000 * 12e-6
