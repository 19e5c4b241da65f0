"""Section 1: the whole dispatcher against the transport ceiling, on one SMTP sink.

Every figure comes from the same sink process and the same recipients, in interleaved
rounds (ceilings, EmailMessage, Flask-Mail, dispatcher at each concurrency both ways;
again), so a slow minute on the machine hits all of them alike.

The e-mail is what the application sends: text and HTML alternatives with the event's
calendar invitation attached. The same dispatcher composing the plain-text e-mail of
before (``bench.plain``) is measured alongside, against its own ceiling, to show what
the HTML and the invitation cost.

- transport ceiling: ``smtplib.SMTP.sendmail`` of pre-rendered bytes, one connection
  (the HTML e-mail, and the plain-text one);
- EmailMessage: the same parts per recipient, built as an ``email.message.EmailMessage``
  and sent with ``send_message``, one connection;
- naive Flask-Mail: the same parts as a ``flask_mail.Message``, ``Mail.send`` (a
  connection each);
- dispatcher: ``flask --app wsgi dispatch run-due`` in a child process on a fresh copy
  of the database; its time is the batch's ``started_at`` (the claim) to ``finished_at``,
  read from the rows it wrote.
"""

from __future__ import annotations

import logging
import smtplib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import (
    app_context,
    app_env,
    checkpoint,
    copy_database,
    median,
    migrate,
    remove_database,
    run_dispatcher,
)
from bench.sink import Sink

log = logging.getLogger(__name__)

SENDER = "Event Team <events@example.org>"
SENDER_ADDRESS = "events@example.org"


@dataclass
class Broadcast:
    """A database with one event, ``n`` guests and one due message to everyone."""

    template: Path
    n: int
    event_id: int
    message_id: int
    guests: list[SimpleNamespace]  # name, email, token (for the baselines)
    renderer: Any  # the dispatcher's MessageRenderer for this message
    builder: Any  # a plain-text MessageBuilder (the reference e-mail)
    composer: Any  # the dispatcher's EmailComposer for this message


def build_broadcast(path: Path, n: int, load_guests: bool = True) -> Broadcast:
    import sqlalchemy as sa

    from bench import data
    from dashboard.dispatch.channels import EmailComposer
    from dashboard.dispatch.mime import MessageBuilder
    from dashboard.dispatch.settings import DispatchSettings
    from dashboard.events.models import Event, Guest
    from dashboard.extensions import db
    from dashboard.messages.rendering import MessageRenderer

    remove_database(path)
    migrate(path)
    now = datetime.now(UTC)
    with app_context(app_env(path)) as app:
        admin = data.admin_user(db.session)
        event = data.new_event(db.session, admin, now)
        data.add_guests(db.session, event.id, n, now)
        message = data.due_message(db.session, event, admin, now)
        db.session.commit()
        event = db.session.get(Event, event.id)
        assert event is not None
        guests = (
            [
                SimpleNamespace(name=name, email=email, token=token)
                for name, email, token in db.session.execute(
                    sa.select(Guest.name, Guest.email, Guest.token)
                    .where(Guest.event_id == event.id)
                    .order_by(Guest.id)
                )
            ]
            if load_guests
            else []
        )
        settings = DispatchSettings.from_config(app.config)
        renderer = MessageRenderer(
            event,
            message.subject,
            message.body,
            settings.base_url,
            attach_calendar=message.attach_calendar,
        )
        builder = MessageBuilder(settings.sender, settings.message_id_domain)
        composer = EmailComposer.build(settings, message.id, renderer)
        broadcast = Broadcast(path, n, event.id, message.id, guests, renderer, builder, composer)
    checkpoint(path)
    return broadcast


# --- the ceilings and the naive senders ----------------------------------------------------


def prerender(broadcast: Broadcast, count: int) -> list[tuple[str, bytes]]:
    """The exact bytes the dispatcher sends, made before the clock starts."""
    out = []
    for i, guest in enumerate(broadcast.guests[:count], start=1):
        payload = broadcast.composer.compose(i, broadcast.renderer.render(guest))
        out.append((payload.recipient, payload.data))
    return out


def prerender_plain(broadcast: Broadcast, count: int) -> list[tuple[str, bytes]]:
    """The plain-text e-mail of the reference dispatcher, made before the clock starts."""
    out = []
    for i, guest in enumerate(broadcast.guests[:count], start=1):
        rendered = broadcast.renderer.render(guest)
        data = broadcast.builder.build(
            to_name=rendered.to_name,
            to_email=rendered.to_email,
            subject=rendered.subject,
            body=rendered.body,
            message_id=broadcast.builder.message_id(broadcast.message_id, i),
            unsubscribe_url=rendered.unsubscribe_url,
        )
        out.append((rendered.to_email, data))
    return out


def _parts(broadcast: Broadcast, guest: Any) -> tuple[Any, str, str, bytes]:
    """One guest's rendering, text, HTML and invitation, as the dispatcher makes them."""
    rendered = broadcast.renderer.render(guest)
    text, html = broadcast.composer.layout.render(rendered.values)
    return rendered, text, html, broadcast.composer.invite.render(rendered.values["rsvp_link"])


def transport_ceiling(sink: Sink, prepared: list[tuple[str, bytes]]) -> float:
    """Seconds for ``sendmail`` of pre-rendered bytes over one persistent connection."""
    conn = smtplib.SMTP(sink.host, sink.smtp_port)
    try:
        started = time.perf_counter()
        for recipient, payload in prepared:
            conn.sendmail(SENDER_ADDRESS, [recipient], payload)
        return time.perf_counter() - started
    finally:
        conn.quit()


def email_message_loop(sink: Sink, broadcast: Broadcast, count: int) -> float:
    """Seconds to render, build an EmailMessage (text, HTML, .ics) and ``send_message`` it."""
    conn = smtplib.SMTP(sink.host, sink.smtp_port)
    try:
        started = time.perf_counter()
        for i, guest in enumerate(broadcast.guests[:count], start=1):
            rendered, text, html, invite = _parts(broadcast, guest)
            msg = EmailMessage()
            msg["From"] = SENDER
            msg["To"] = formataddr((rendered.to_name, rendered.to_email))
            msg["Subject"] = rendered.subject
            msg["Date"] = formatdate()
            msg["Message-ID"] = broadcast.builder.message_id(broadcast.message_id, i)
            msg["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            msg.set_content(text)
            msg.add_alternative(html, subtype="html")
            msg.add_attachment(invite, maintype="text", subtype="calendar", filename="invite.ics")
            conn.send_message(msg)
        return time.perf_counter() - started
    finally:
        conn.quit()


def flask_mail_loop(sink: Sink, broadcast: Broadcast, count: int, workdir: Path) -> float:
    """Seconds for the naive loop: ``Mail.send`` per message, which opens a connection each."""
    import flask_mail

    from dashboard.extensions import mail

    database = workdir / "flask-mail.sqlite3"
    copy_database(broadcast.template, database)
    try:
        with app_context(app_env(database, **sink.mail_env())):
            started = time.perf_counter()
            for i, guest in enumerate(broadcast.guests[:count], start=1):
                rendered, text, html, invite = _parts(broadcast, guest)
                message = flask_mail.Message(
                    subject=rendered.subject,
                    recipients=[(rendered.to_name, rendered.to_email)],
                    body=text,
                    html=html,
                    sender=SENDER,
                    extra_headers={
                        "Message-ID": broadcast.builder.message_id(broadcast.message_id, i),
                        "List-Unsubscribe": f"<{rendered.unsubscribe_url}>",
                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                    },
                )
                message.attach("invite.ics", "text/calendar", invite)
                mail.send(message)
            return time.perf_counter() - started
    finally:
        remove_database(database)


# --- the dispatcher ----------------------------------------------------------------------


def _parse(value: str) -> datetime:
    """A timestamp as the app stores it (naive UTC text)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def read_outcome(database: Path, message_id: int) -> dict[str, Any]:
    """What the dispatcher wrote: statuses, the batch, its entries (plain sqlite3, read only)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        deliveries = dict(
            conn.execute(
                "SELECT status, count(*) FROM deliveries WHERE message_id = ? GROUP BY status",
                (message_id,),
            ).fetchall()
        )
        batches = conn.execute(
            "SELECT id, status, total, sent, failed, skipped, started_at, finished_at"
            " FROM batches WHERE message_id = ? ORDER BY id",
            (message_id,),
        ).fetchall()
        entries = conn.execute(
            "SELECT count(*), count(DISTINCT e.delivery_id) FROM batch_entries e"
            " JOIN deliveries d ON d.id = e.delivery_id WHERE d.message_id = ?",
            (message_id,),
        ).fetchone()
        outcomes = dict(
            conn.execute(
                "SELECT e.outcome, count(*) FROM batch_entries e"
                " JOIN deliveries d ON d.id = e.delivery_id WHERE d.message_id = ?"
                " GROUP BY e.outcome",
                (message_id,),
            ).fetchall()
        )
        status = conn.execute("SELECT status FROM messages WHERE id = ?", (message_id,)).fetchone()
    finally:
        conn.close()
    return {
        "deliveries": deliveries,
        "batches": batches,
        "entries": entries[0],
        "distinct_entries": entries[1],
        "outcomes": outcomes,
        "message_status": status[0] if status else None,
    }


def check_exactly_once(n: int, outcome: dict[str, Any], received: dict[str, int]) -> list[str]:
    """Every guest: one delivery, sent, one batch entry, one message at the sink."""
    problems = []
    if outcome["deliveries"] != {"sent": n}:
        problems.append(f"deliveries by status {outcome['deliveries']}, expected {{'sent': {n}}}")
    if outcome["entries"] != n or outcome["distinct_entries"] != n:
        problems.append(
            f"{outcome['entries']} batch entries for {outcome['distinct_entries']} deliveries, expected {n}"
        )
    if outcome["message_status"] != "sent":
        problems.append(f"message status {outcome['message_status']}")
    if len(outcome["batches"]) != 1 or outcome["batches"][0][1] != "completed":
        problems.append(f"batches {[(b[0], b[1]) for b in outcome['batches']]}")
    if received["messages"] != n or received["recipients"] != n or received["duplicates"]:
        problems.append(f"sink received {received}, expected {n} distinct")
    return problems


def dispatch_on(
    database: Path,
    broadcast: Broadcast,
    sink: Sink,
    workdir: Path,
    concurrency: int,
    while_running: Callable[[], None] | None = None,
    **extra_env: str,
) -> dict[str, Any]:
    """One real dispatcher process sending the broadcast from ``database``; checked after."""
    sink.reset()
    env = app_env(database, **sink.mail_env(), DISPATCH_CONCURRENCY=str(concurrency), **extra_env)
    child = run_dispatcher(env, workdir, while_running=while_running)
    received = sink.count()
    if child.returncode != 0:
        raise RuntimeError(f"dispatcher exited {child.returncode}: {child.stderr[-2000:]}")
    outcome = read_outcome(database, broadcast.message_id)
    problems = check_exactly_once(broadcast.n, outcome, received)
    batch = outcome["batches"][0] if outcome["batches"] else None
    window = (
        (_parse(batch[6]).timestamp(), _parse(batch[7]).timestamp())
        if batch and batch[7]
        else (float("nan"), float("nan"))
    )
    seconds = window[1] - window[0]
    return {
        "seconds": seconds,
        "window": window,
        "msg_per_s": broadcast.n / seconds,
        "wall_seconds": child.wall_seconds,
        "max_rss_mb": child.max_rss_kb / 1024,
        "deliveries": outcome["deliveries"],
        "entries": outcome["entries"],
        "received": received,
        "problems": problems,
        "locked_errors": child.stderr.count("database is locked"),
    }


def dispatch_once(
    broadcast: Broadcast, sink: Sink, workdir: Path, concurrency: int, **extra_env: str
) -> dict[str, Any]:
    """``dispatch_on`` a fresh copy of the broadcast's database, removed afterwards."""
    database = copy_database(broadcast.template, workdir / "dispatch.sqlite3")
    try:
        return dispatch_on(database, broadcast, sink, workdir, concurrency, **extra_env)
    finally:
        remove_database(database)


# --- the section -------------------------------------------------------------------------


def run(
    workdir: Path,
    n: int = 10_000,
    baseline_n: int | None = None,
    slow_baseline_n: int | None = None,
    concurrencies: tuple[int, ...] = (1, 4, 8),
    runs: int = 3,
) -> dict[str, Any]:
    """Section 1. Returns figures (medians over ``runs``) and the per-run details."""
    workdir.mkdir(parents=True, exist_ok=True)
    baseline_n = min(n, baseline_n or n)
    slow_baseline_n = min(n, slow_baseline_n or baseline_n)
    log.info("throughput: building %s guests", n)
    broadcast = build_broadcast(workdir / "broadcast.sqlite3", n)
    # Composing is timed on its own too: the CPU one e-mail costs, whatever the sink does.
    started = time.perf_counter()
    prepared = prerender(broadcast, baseline_n)
    compose_html = (time.perf_counter() - started) / baseline_n
    started = time.perf_counter()
    prepared_plain = prerender_plain(broadcast, baseline_n)
    compose_plain = (time.perf_counter() - started) / baseline_n
    sizes = {
        "html": sum(len(data) for _, data in prepared) / len(prepared),
        "plain": sum(len(data) for _, data in prepared_plain) / len(prepared_plain),
        "html_lines": sum(data.count(b"\n") for _, data in prepared) / len(prepared),
        "plain_lines": sum(data.count(b"\n") for _, data in prepared_plain) / len(prepared_plain),
    }
    samples: dict[str, list[float]] = {}
    sink_cpu: dict[str, list[float]] = {}
    details: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []

    def note(name: str, count: int, seconds: float, received: dict[str, int] | None = None) -> None:
        samples.setdefault(name, []).append(count / seconds)
        if received is not None and (received["messages"] != count or received["duplicates"]):
            problems.append(f"{name}: sink received {received}, sent {count}")

    # The sink reads content in one piece, as a relay in C does; the same ceilings against
    # aiosmtpd's own line-by-line loop show what the HTML e-mail's lines cost a Python relay.
    with Sink() as sink, Sink(line_reader=True) as python_relay:
        for round_no in range(1, runs + 1):
            sink.reset()
            # The sink's own CPU per e-mail too: on loopback it is what sets the pace.
            for server, prefix in ((sink, ""), (python_relay, "line_")):
                for name, mails in (("ceiling", prepared), ("plain_ceiling", prepared_plain)):
                    cpu = server.cpu_seconds()
                    note(
                        prefix + name, baseline_n, transport_ceiling(server, mails), server.reset()
                    )
                    seconds = server.cpu_seconds() - cpu
                    sink_cpu.setdefault(prefix + name, []).append(seconds / baseline_n)
            note(
                "email_message",
                slow_baseline_n,
                email_message_loop(sink, broadcast, slow_baseline_n),
                sink.reset(),
            )
            note(
                "flask_mail",
                slow_baseline_n,
                flask_mail_loop(sink, broadcast, slow_baseline_n, workdir),
                sink.reset(),
            )
            for concurrency in concurrencies:
                for name, env in (
                    (f"dispatcher_c{concurrency}", {}),
                    (f"plain_c{concurrency}", {"BENCH_MAIL": "plain"}),
                ):
                    result = dispatch_once(broadcast, sink, workdir, concurrency, **env)
                    samples.setdefault(name, []).append(result["msg_per_s"])
                    details.setdefault(name, []).append(result)
                    problems.extend(f"{name} round {round_no}: {p}" for p in result["problems"])
            log.info(
                "throughput round %s: %s",
                round_no,
                {k: round(v[-1]) for k, v in samples.items()},
            )
    remove_database(broadcast.template)

    ceilings = {"html": median(samples["ceiling"]), "plain": median(samples["plain_ceiling"])}
    figures = {
        name: {
            "msg_per_s": median(values),
            "ratio": median(values) / ceilings["plain" if name.startswith("plain") else "html"],
            "runs": [round(v, 1) for v in values],
        }
        for name, values in samples.items()
    }
    for name, runs_of in details.items():
        figures[name]["max_rss_mb"] = median([r["max_rss_mb"] for r in runs_of])
        figures[name]["wall_seconds"] = median([r["wall_seconds"] for r in runs_of])
        figures[name]["locked_errors"] = sum(r["locked_errors"] for r in runs_of)
    last = {name: runs_of[-1] for name, runs_of in details.items()}
    return {
        "n": n,
        "baseline_n": baseline_n,
        "slow_baseline_n": slow_baseline_n,
        "runs": runs,
        "concurrencies": list(concurrencies),
        "figures": figures,
        "sizes": sizes,
        "compose_us": {"html": compose_html * 1e6, "plain": compose_plain * 1e6},
        "sink_cpu_us": {
            "html": median(sink_cpu["ceiling"]) * 1e6,
            "plain": median(sink_cpu["plain_ceiling"]) * 1e6,
            "line_html": median(sink_cpu["line_ceiling"]) * 1e6,
            "line_plain": median(sink_cpu["line_plain_ceiling"]) * 1e6,
        },
        "verification": {
            name: {
                "deliveries": r["deliveries"],
                "entries": r["entries"],
                "sink": r["received"],
            }
            for name, r in last.items()
        },
        "problems": problems,
        "exactly_once": not problems,
    }
