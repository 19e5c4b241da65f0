"""The subject header: RFC 2047 encoded words written directly, cheaply."""

from __future__ import annotations

import base64
import time
from email import message_from_bytes, policy
from email.header import Header

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


def test_encoding_costs_a_fraction_of_the_standard_librarys():
    """``email.header.Header`` took about 33 µs of CPU a subject (0.4 ms under the
    profiler), the direct encoder about 2 µs: measured in the same run, a ratio rather
    than a time, so a busy machine slows both alike."""
    subjects = [f"Zoë Ünïcode-Ñame {i}: Fête d'été 🎉" for i in range(2000)]

    def cpu_of(encode) -> float:
        started = time.process_time()
        for subject in subjects:
            encode(subject)
        return time.process_time() - started

    ours = min(cpu_of(encode_subject) for _ in range(3))
    standard = min(cpu_of(lambda s: Header(s, "utf-8").encode()) for _ in range(3))
    assert ours < standard / 4, (ours, standard)
