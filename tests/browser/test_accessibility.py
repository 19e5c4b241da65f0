"""Every page at a desktop (1280 px) and a phone (390 px) width: axe-core finds no serious or
critical violation, and no page is wider than the phone's screen.

axe-core is vendored under tests/browser/vendor/ (the npm ``axe-core`` package, MPL-2.0, its
licence beside it). It is evaluated through the DevTools protocol, which the app's
Content-Security-Policy does not govern, so the app's policy stays as strict as it is. One test
visits every page once per width: axe runs once per page per width, not per test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dashboard.audit.services import Actor
from dashboard.auth.models import User
from dashboard.dispatch.models import Batch, Delivery
from dashboard.events.models import Event, Guest
from dashboard.messages import services as message_services
from dashboard.messages.models import Message, MessageStatus
from tests.browser.conftest import app_session, login, make_user, seed_event, wait_until

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
WIDTHS = (1280, 390)
#: The impacts that fail the test; "moderate" and "minor" ones are reported by axe but allowed.
FAILING = ("serious", "critical")

GUESTS = [
    ("Ann Okafor", "ann@example.org", "attending"),
    ("Ben Ito", "ben@example.org", "declined"),
    ("Chiara Longname-Verylongsurname", "chiara.a.very.long.address@example.org", "maybe"),
    ("Dev Rao", "dev@example.org", "pending"),
]


def axe_violations(page) -> list[str]:
    """The serious and critical violations axe-core finds on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return {
                passed: result.passes.length,
                violations: result.violations.map((v) => ({
                    id: v.id, impact: v.impact,
                    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
                })),
            };
        }"""
    )
    assert found["passed"] > 10, "axe-core checked next to nothing: is it running?"
    return [
        f"{v['id']} ({v['impact']}): {v['nodes']}"
        for v in found["violations"]
        if v["impact"] in FAILING
    ]


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )


def off_screen(page) -> list[str]:
    """Controls and table cells that sit beyond the screen's right edge (in a table that
    scrolls sideways, say): on a phone a host must see them without scrolling sideways."""
    return page.evaluate(
        """() => [...document.querySelectorAll("main a, main button, main td, main select")]
            .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden")
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
            .filter((el) => !el.closest(".visually-hidden"))
            .slice(0, 3)
            .map((el) => `${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 30)}"`)"""
    )


def seed_everything(live_app, owner_id: int) -> dict[str, str]:
    """An event with guests, a message sent with one failure (batch, deliveries, outbox, a
    failure group, a suppression), a draft: every page has something to show. Returns the
    pages' paths by name."""
    event_id = seed_event(live_app, owner_id, GUESTS, name="Summer Gala")
    now = datetime.now(UTC)
    with app_session(live_app) as session:
        actor = Actor.of(session.get(User, owner_id))
        event = session.get(Event, event_id)
        sent = message_services.create_message(
            session,
            event,
            actor,
            audience="everyone",
            subject="Parking for {{event_name}}",
            body="Hi {{guest_name}}, park behind {{venue}}.",
            mode="send_now",
            now=now,
        )
        draft = message_services.create_message(
            session,
            event,
            actor,
            audience="attending",
            subject="Dress code",
            body="Smart casual.",
            now=now,
        )
        session.commit()
        sent_id, draft_id = sent.id, draft.id
        guest_id = session.scalars(db_select(Guest.id, Guest.event_id == event_id)).first()

    def finished() -> bool:
        with app_session(live_app) as session:
            return session.get(Message, sent_id).status is MessageStatus.SENT_WITH_FAILURES

    wait_until(finished, what="the seeded message to be sent")
    with app_session(live_app) as session:
        batch_id = session.scalars(db_select(Batch.id, Batch.message_id == sent_id)).first()
        delivery_id = session.scalars(
            db_select(Delivery.id, Delivery.message_id == sent_id)
        ).first()
        token = session.get(Guest, guest_id).token
    base = f"/events/{event_id}"
    return {
        "events": "/",
        "event-new": "/events/new",
        "event": base,
        "event-edit": f"{base}/edit",
        "guests": f"{base}/guests",
        "guest": f"{base}/guests/{guest_id}",
        "guest-edit": f"{base}/guests/{guest_id}/edit",
        "guest-import": f"{base}/guests/import",
        "collaborators": f"{base}/collaborators",
        "event-cancel": f"{base}/cancel",
        "communications": f"{base}/communications",
        "communications-sent": f"{base}/communications/sent",
        "communications-cancelled": f"{base}/communications/cancelled",
        "message-edit": f"{base}/communications/{draft_id}/edit",
        "message": f"{base}/messages/{sent_id}",
        "batch": f"{base}/batches/{batch_id}",
        "delivery": f"{base}/deliveries/{delivery_id}",
        "tokens": "/account/tokens",
        "admin-batches": "/admin/batches",
        "admin-failures": "/admin/failures",
        "admin-outbox": "/admin/outbox",
        "admin-suppressions": "/admin/suppressions",
        "rsvp": f"/r/{token}",
        "unsubscribe": f"/u/{token}",
        "not-found": "/events/999999",
    }


def db_select(column, *where):  # type: ignore[no-untyped-def]
    from dashboard.extensions import db

    return db.select(column).where(*where).order_by(column)


#: The pages whose phone layout README.md shows (``make screenshots`` refreshes them).
PHONE_SCREENSHOTS = ("communications", "communications-sent", "guests", "batch")


def check(page, name: str, width: int) -> list[str]:
    """What is wrong with the page as shown now at ``width``: axe's serious and critical
    violations, and on a phone anything wider than the screen or off its right edge."""
    problems = [f"{name} @{width}: {v}" for v in axe_violations(page)]
    if width == 390 and (extra := overflow(page)) > 0:
        problems.append(f"{name} @390 is {extra} px wider than the screen")
    if width == 390 and (hidden := off_screen(page)):
        problems.append(f"{name} @390 has {hidden} off the screen")
    return problems


def test_every_page_passes_axe_and_fits_a_phone(page, live_app, smtp_server, screenshot):
    smtp_server.handler.rules = {"dev@": "550 5.1.1 Mailbox does not exist"}
    admin = make_user(live_app, "admin-with-a-long-address@example.com", name="Ada Admin")
    with app_session(live_app) as session:
        session.get(User, admin["id"]).is_admin = True
        session.commit()
    pages = seed_everything(live_app, admin["id"])
    page.problems.allow_status(404)

    problems: list[str] = []
    page.goto("/login")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        problems += check(page, "login", width)
    login(page, admin)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            page.goto(path)
            problems += check(page, name, width)
            if width == 390 and name in PHONE_SCREENSHOTS:
                screenshot(page, f"phone-{name}", full_page=True)

    # The import preview answers a POST: upload a file with an update and a rejected row.
    page.goto(pages["guest-import"])
    page.get_by_label("CSV file").set_input_files(
        files=[
            {
                "name": "guests.csv",
                "mimeType": "text/csv",
                "buffer": b"name,email,rsvp_status\nAnn Okafor,ann@example.org,declined\n"
                b"New Guest,new@example.org,\nNo Address,not-an-address,maybe\n",
            }
        ]
    )
    page.get_by_role("button", name="Preview import").click()
    page.get_by_role("heading", name="Import preview: guests.csv").wait_for()
    page.locator("details").evaluate_all("(all) => all.forEach((d) => { d.open = true; })")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        problems += check(page, "import-preview", width)
    assert problems == [], "\n".join(problems)
