"""The server stops answering in the middle of a live update, then comes back: the page says
so in a banner, marks what may be out of date, retries with backoff and recovers by itself."""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import UTC, datetime

from playwright.sync_api import expect
from werkzeug.serving import make_server

from dashboard.audit.services import Actor
from dashboard.auth.models import User
from dashboard.events.models import Event
from dashboard.messages.services import create_message
from tests.browser.conftest import app_session, login, recipient_count, seed_event

GUESTS = [(f"Guest {i}", f"guest{i}@example.org", "attending") for i in range(6)] + [
    ("Dee Clined", "dee@example.org", "declined"),
    ("Pat Pending", "pat@example.org", "pending"),
]
#: What Chromium reports while the server is down: the test provokes it on purpose. A new
#: connection is refused; one the kernel had already accepted for the closing listener (a
#: socket Chromium opened ahead of need) is reset when the listener closes.
OUTAGE = ("ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET")


def send_now(live_app, user_id: int, event_id: int) -> None:
    with app_session(live_app) as session:
        create_message(
            session,
            session.get(Event, event_id),
            Actor.of(session.get(User, user_id)),
            audience="everyone",
            subject="Doors open at 18:00",
            body="See you, {{guest_name}}.",
            mode="send_now",
            now=datetime.now(UTC),
        )
        session.commit()


class Outage:
    """Stops the live server for real (the port refuses connections and the open keep-alive
    connections are cut) and starts it again on the same port."""

    def __init__(self, live_server):
        self.live = live_server
        self.connections: list[socket.socket] = []
        self._track(live_server.server)

    def _track(self, server) -> None:
        accept = server.get_request

        def get_request():  # type: ignore[no-untyped-def]
            connection, address = accept()
            self.connections.append(connection)
            return connection, address

        server.get_request = get_request

    def stop(self) -> None:
        self.live.server.shutdown()
        self.live.server.server_close()
        for connection in self.connections:
            with contextlib.suppress(OSError):  # already closed by the browser
                connection.shutdown(socket.SHUT_RDWR)
        self.connections.clear()

    def start(self) -> None:
        server = make_server("127.0.0.1", self.live.port, self.live.app, threaded=True)
        self._track(server)
        self.live.server = server
        self.live.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.live.thread.start()


def test_connection_lost_banner_stale_count_and_recovery(page, live_app, live_server, live_user):
    outage = Outage(live_server)
    for symptom in OUTAGE:
        page.problems.allow_console(symptom)
    page.problems.allow_console("htmx:sendError")
    page.problems.allow_console("htmx:afterRequest")
    live_app.config["DISPATCH_RATE_PER_SECOND"] = 1.0  # a send that lasts through the outage
    event_id = seed_event(live_app, live_user["id"], GUESTS)
    send_now(live_app, live_user["id"], event_id)
    login(page, live_user)
    page.goto(f"/events/{event_id}/communications/sent")
    progress = page.locator(".message-progress")
    expect(progress.get_by_role("progressbar")).to_be_visible()
    count = recipient_count(page)
    expect(count).to_contain_text("8 guests will receive this.")
    banner = page.locator("#connection-banner")
    expect(banner).to_be_hidden()

    # The server goes away while the host changes the audience: the count cannot follow.
    outage.stop()
    page.get_by_label("Audience").select_option("attending")
    expect(banner).to_be_visible()
    expect(banner).to_have_text(page_text := "Connection lost. Retrying in 1 s…")
    assert page.get_by_role("alert").filter(has_text="Connection lost").count() == 1, page_text
    expect(count).to_contain_text("Out of date: the server is not answering.")
    expect(count).to_contain_text("8 guests will receive this.")  # the old figure, marked stale
    expect(page.locator("#message-preview")).to_contain_text("Out of date")
    expect(progress).to_contain_text("Out of date")
    # Retries back off instead of hammering the server: the next wait is longer.
    expect(banner).to_have_text("Connection lost. Retrying in 2 s…")

    # It comes back: the count is fetched again for the chosen audience, the banner says so
    # and then goes away.
    outage.start()
    expect(count).to_contain_text("6 guests will receive this.", timeout=15_000)
    expect(count).not_to_contain_text("Out of date")
    expect(page.locator("#message-preview")).not_to_contain_text("Out of date")
    expect(banner).to_have_text("Connection restored.")
    expect(banner).to_be_hidden()
    # The send went on meanwhile; its progress catches up and its end is announced once.
    expect(progress).not_to_contain_text("Out of date")
    expect(page.locator("#announcer")).to_contain_text("Sending finished", timeout=20_000)
    expect(progress).to_contain_text("8 sent")
    # Polls and retries never took the focus (nor scrolled the page to the progress).
    assert page.evaluate("document.activeElement.closest('#message-list') === null")
    # The requests the outage cut off are the only failures: none after the server is back.
    page.problems.errors[:] = [
        e for e in page.problems.errors if not any(symptom in e for symptom in OUTAGE)
    ]
