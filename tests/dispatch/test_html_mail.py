"""Every e-mail a real SMTP server received, read back with the ``email`` package: its
parts and charsets, line lengths, escaping, links, and its calendar invitation read back
with icalendar, across daylight-saving changes and after the event moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from urllib.parse import quote
from zoneinfo import ZoneInfo

import icalendar
import pytest

from dashboard.audit.services import SCHEDULER
from dashboard.events.public import calendar_url, rsvp_url, unsubscribe_url
from dashboard.events.services import update_event
from dashboard.extensions import db
from dashboard.messages.models import MessageStatus
from tests.smtp_server import SMTPServer

BERLIN = ZoneInfo("Europe/Berlin")
BASE = "http://dashboard.test"
LONG_WORD = "x" * 5000
BODY = f"""Hi {{{{guest_name}}}},

**Welcome** to {{{{event_name}}}}. <script>alert("boo")</script>

[Answer here]({{{{rsvp_link}}}}) or [search](https://example.org/find?q={{{{guest_name}}}}) or [odd]({{{{guest_name}}}}).

Plain link: {{{{rsvp_link}}}}

{LONG_WORD}
"""


@pytest.fixture(scope="module")
def _one_server():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(_one_server):
    """One real SMTP server for the whole module, emptied for each test."""
    _one_server.handler.received.clear()
    _one_server.handler.rules = {}
    return _one_server


class Page(HTMLParser):
    """The elements, links and text of an HTML part."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.text: list[str] = []
        self._link: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self._link = [dict(attrs).get("href") or ""]

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], "".join(self._link[1:])))
            self._link = None

    def handle_data(self, data):
        self.text.append(data)
        if self._link is not None:
            self._link.append(data)

    @property
    def hrefs(self) -> list[str]:
        return [href for href, _ in self.links]


def parts(mail: EmailMessage) -> tuple[EmailMessage, EmailMessage, EmailMessage | None]:
    """(text, html, calendar or None), checking the structure on the way."""
    calendar = None
    if mail.get_content_type() == "multipart/mixed":
        alternative, calendar = mail.get_payload()
    else:
        alternative = mail
    assert alternative.get_content_type() == "multipart/alternative"
    text, html = alternative.get_payload()
    assert (text.get_content_type(), text.get_content_charset()) == ("text/plain", "utf-8")
    assert (html.get_content_type(), html.get_content_charset()) == ("text/html", "utf-8")
    return text, html, calendar


def invitation(part: EmailMessage) -> icalendar.Event:
    assert part.get_content_type() == "text/calendar"
    assert part.get_content_charset() == "utf-8"
    assert part.get_param("method") == "PUBLISH"
    assert part.get_filename() == "invite.ics"
    assert part.get_content_disposition() == "attachment"
    calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
    assert calendar["METHOD"] == "PUBLISH"
    [entry] = calendar.walk("VEVENT")
    return entry


def test_every_mail_is_text_and_html_with_escaped_values_and_working_links(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event(name="Fête & <Friends>", venue="Grand Hall")
    event.sender_name, event.reply_to = "Anna's Wedding", "anna@example.org"
    ann, zoe = make_guests(event, 2)
    ann.name, zoe.name = "<b>Ann</b>", 'Zoë "javascript:alert(1)"'
    db.session.commit()
    make_message(event, subject="For {{guest_name}}", body=BODY)

    dispatcher.poll()

    assert len(smtp_server.received) == 2
    for received in smtp_server.received:
        assert max(len(line) for line in received.data.split(b"\r\n")) <= 998
        mail = received.message
        guest = ann if received.rcpt_tos == [ann.email] else zoe
        text, html, calendar = parts(mail)
        assert calendar is None  # custom messages attach no invitation unless asked
        assert mail["From"].addresses[0].display_name == "Anna's Wedding"
        assert mail["From"].addresses[0].addr_spec == "noreply@localhost"  # SPF/DKIM domain
        assert str(mail["Reply-To"]) == "anna@example.org"
        assert mail["Subject"] == f"For {guest.name}"
        assert mail["List-Unsubscribe"] == f"<{unsubscribe_url(BASE, guest.token)}>"

        page = Page(html.get_content())
        shown = "".join(page.text)
        assert f"Hi {guest.name}," in shown  # the value is text, whatever it looks like
        assert "b" not in page.tags and "script" not in page.tags
        assert '<script>alert("boo")</script>' in shown  # raw HTML in the source is text
        assert "Fête & <Friends>" in shown and "Grand Hall" in shown
        assert LONG_WORD in shown
        rsvp = rsvp_url(BASE, guest.token)
        assert (rsvp, "Answer here") in page.links
        assert (rsvp, rsvp) in page.links  # a bare link placeholder becomes a link
        assert f"https://example.org/find?q={quote(guest.name, safe='')}" in page.hrefs
        assert quote(guest.name, safe="") in page.hrefs  # a name is never a URL of its own
        assert (f"{rsvp}?answer=attending", "I'll be there") in page.links
        assert (f"{rsvp}?answer=declined", "Can't come") in page.links
        assert (unsubscribe_url(BASE, guest.token), "Unsubscribe") in page.links
        assert not any(href.lower().startswith(("javascript", "data")) for href in page.hrefs)
        assert calendar_url(BASE, guest.token) not in page.hrefs

        plain = text.get_content()
        assert plain.startswith(f"Hi {guest.name},")
        assert f"Answer here ({rsvp})" in plain  # links written out
        assert (
            f"Your answer: {rsvp}" in plain
            and f"Unsubscribe: {unsubscribe_url(BASE, guest.token)}" in plain
        )
        assert LONG_WORD in plain.splitlines()
    transfer = {
        item.message.get_body(("html",))["Content-Transfer-Encoding"]
        for item in smtp_server.received
    }
    assert transfer == {"quoted-printable"}  # a 5,000-character word cannot travel as 7bit


def test_short_html_travels_in_long_7bit_lines(
    dispatcher, make_event, make_guests, make_message, smtp_server
):
    event = make_event(name="Café Crème")
    [guest] = make_guests(event, 1)
    guest.name = "Zoë Ünïcode"
    db.session.commit()
    make_message(event, body="Hi {{guest_name}}, see you at **{{event_name}}**.")

    dispatcher.poll()

    [received] = smtp_server.received
    _, html, _ = parts(received.message)
    assert html["Content-Transfer-Encoding"] == "7bit"
    assert html.get_payload(decode=True).isascii()  # every other character is a reference
    assert "Hi Zoë Ünïcode, see you at Café Crème." in "".join(Page(html.get_content()).text)
    assert len(received.data.split(b"\r\n")) < 60  # the HTML is a handful of lines


def test_the_invitation_has_the_events_instant_across_daylight_saving_and_its_moves(
    app, dispatcher, make_event, make_guests, make_message, smtp_server, now
):
    # 01:30 on the night the clocks go forward: CET when it starts, CEST two hours later.
    event = make_event(starts_at="2030-03-31T01:30", timezone="Europe/Berlin", venue="Hall 9")
    [guest] = make_guests(event, 1)
    first = make_message(event, subject="Save the date", body="See you.")
    first.attach_calendar = True
    db.session.commit()
    dispatcher.poll()

    [received] = smtp_server.received
    _, html, calendar = parts(received.message)
    entry = invitation(calendar)
    start, end = entry.decoded("DTSTART"), entry.decoded("DTEND")
    assert start == datetime(2030, 3, 31, 0, 30, tzinfo=UTC) == event.starts_at
    assert end - start == timedelta(hours=2)  # two hours of real time, not of wall clock
    assert (start.astimezone(BERLIN).hour, end.astimezone(BERLIN).hour) == (1, 4)
    assert str(entry["UID"]) == f"event-{event.id}@dashboard.test"
    assert int(entry["SEQUENCE"]) == 0
    assert str(entry["LOCATION"]) == "Hall 9"
    assert str(entry["URL"]) == rsvp_url(BASE, guest.token)
    assert str(entry["SUMMARY"]) == event.name
    hrefs = Page(html.get_content()).hrefs
    assert calendar_url(BASE, guest.token) in hrefs
    google = next(h for h in hrefs if h.startswith("https://calendar.google.com/"))
    assert "dates=20300331T003000Z%2F20300331T023000Z" in google
    assert any(h.startswith("https://outlook.live.com/") for h in hrefs)

    # Moved into the night the clocks go back; it keeps its length and its UID.
    update_event(db.session, event, now=now, actor=SCHEDULER, starts_at="2030-10-27T01:30")
    db.session.commit()
    second = make_message(event, subject="New date", body="Moved.")
    second.attach_calendar = True
    db.session.commit()
    smtp_server.handler.received.clear()
    dispatcher.poll()

    db.session.refresh(second)
    assert second.status is MessageStatus.SENT
    [received] = smtp_server.received
    moved = invitation(parts(received.message)[2])
    assert str(moved["UID"]) == str(entry["UID"])
    assert int(moved["SEQUENCE"]) == 1
    assert moved.decoded("DTSTART") == datetime(2030, 10, 26, 23, 30, tzinfo=UTC)
    assert moved.decoded("DTEND") - moved.decoded("DTSTART") == timedelta(hours=2)
