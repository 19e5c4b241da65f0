"""CSV import: parsing edge cases, the preview/confirm pages, and the 20,000-row bulk path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard.audit.services import Actor
from dashboard.errors import ValidationError
from dashboard.events import csv_import
from dashboard.events.models import Guest, RsvpStatus
from dashboard.extensions import db
from tests.events.conftest import hidden_value, upload_csv
from tests.helpers import counted_statements

ACTOR = Actor("tests")


def guests_of(event) -> dict[str, tuple[str, str]]:
    db.session.expire_all()
    rows = db.session.scalars(sa.select(Guest).where(Guest.event_id == event.id))
    return {g.email_key: (g.name, g.rsvp_status.value) for g in rows}


def run(event, text: str, now):
    plan, counts = csv_import.import_csv(db.session, event, text, now, actor=ACTOR)
    db.session.commit()
    return plan, counts


# --- parsing ---------------------------------------------------------------------------


def test_bom_and_semicolons_and_header_case(app, event, now):
    data = "\ufeffName ; E-Mail ;RSVP_STATUS\r\nAda Lovelace;ada@example.org;Attending\r\n Ben ; ben@example.org ; maybe \r\n"
    text = csv_import.decode_upload(data.encode("utf-8"))
    _, counts = run(event, text, now)
    assert counts == {"created": 2, "restored": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    assert guests_of(event) == {
        "ada@example.org": ("Ada Lovelace", "attending"),
        "ben@example.org": ("Ben", "maybe"),
    }


def test_bom_with_commas_and_quoted_fields(app, event, now):
    text = csv_import.decode_upload(b'\xef\xbb\xbfname,email\n"Lovelace, Ada",ada@example.org\n')
    run(event, text, now)
    assert guests_of(event) == {"ada@example.org": ("Lovelace, Ada", "pending")}


def test_status_column_is_optional_and_defaults_to_pending(app, event, now):
    run(event, "email,name,notes\nz@example.org,Zed,ignored column\n", now)
    assert guests_of(event) == {"z@example.org": ("Zed", "pending")}


def test_rejections_carry_line_numbers_and_reasons(app, event, now):
    text = (
        "name,email,rsvp_status\n"
        "Ada,ada@example.org,attending\n"  # line 2: ok
        ",nameless@example.org,pending\n"  # line 3: missing name
        "Bad,not-an-email,pending\n"  # line 4: bad e-mail
        "Odd,odd@example.org,perhaps\n"  # line 5: bad status
        "\n"  # line 6: blank, skipped
        "Ada again,ADA@example.org,declined\n"  # line 7: duplicate in the file
        '"Multi\nline",multi@example.org,maybe\n'  # lines 8-9: ok
        "Short\n"  # line 10: missing e-mail
    )
    plan, counts = run(event, text, now)
    assert counts == {"created": 2, "restored": 0, "updated": 0, "unchanged": 0, "rejected": 5}
    reasons = {r.line: r.reason for r in plan.rejected}
    assert sorted(reasons) == [3, 4, 5, 7, 10]
    assert "Name is required" in reasons[3]
    assert "not a valid e-mail" in reasons[4]
    assert "'perhaps' is not an RSVP status" in reasons[5]
    assert "already on line 2" in reasons[7]
    assert "E-mail is required" in reasons[10]
    assert guests_of(event)["ada@example.org"] == ("Ada", "attending")  # the first one wins


def test_existing_guests_are_updated_case_insensitively(app, event, make_guests, now):
    make_guests(event, 3, "attending")  # guest0..2@example.org
    text = (
        "name,email,rsvp_status\n"
        "Guest Zero Renamed,GUEST0@Example.ORG,declined\n"  # update name and status
        "Guest 1,guest1@example.org,\n"  # same name, no status: unchanged
        "Guest Two Renamed,guest2@example.org,\n"  # new name, no status: status kept
        "New Person,new@example.org,\n"
    )
    plan, counts = run(event, text, now)
    assert counts == {"created": 1, "restored": 0, "updated": 2, "unchanged": 1, "rejected": 0}
    after = guests_of(event)
    assert after["guest0@example.org"] == ("Guest Zero Renamed", "declined")
    # A blank status keeps the guest's answer.
    assert after["guest1@example.org"] == ("Guest 1", "attending")
    assert after["guest2@example.org"] == ("Guest Two Renamed", "attending")
    assert after["new@example.org"] == ("New Person", "pending")
    assert len(after) == 4


def test_update_keeps_token_and_unsubscription(app, event, make_guests, now):
    guest = make_guests(event, 1, unsubscribed=True)[0]
    token = guest.token
    run(event, "name,email,rsvp_status\nNew Name,guest0@example.org,attending\n", now)
    db.session.expire_all()
    assert guest.token == token and guest.unsubscribed and guest.name == "New Name"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\xef\xbb\xbf\r\n\r\n", "The file is empty."),
        (b"name,email\n", "header row but no guests"),
        (b"name,phone\nAda,123\n", "missing email"),
        (b"email\nada@example.org\n", "missing name"),
        (b"full_name;mail\n", "missing name and email"),
        ("name,email\nJos\u00e9,jose@example.org\n".encode("latin-1"), "not UTF-8"),
        (b"name,email\nA\x00da,ada@example.org\n", "contains NUL bytes"),
        (b'"name,email\nAda,ada@example.org\nBen,b@example.org\n', "Line 1: A quoted field"),
    ],
    ids=[
        "empty",
        "blank-lines",
        "header-only",
        "no-email-column",
        "no-name-column",
        "no-columns",
        "latin-1",
        "nul",
        "runaway-header",
    ],
)
def test_files_refused_as_a_whole(app, event, data, message):
    with pytest.raises(ValidationError) as caught:
        csv_import.parse_csv(csv_import.decode_upload(data))
    assert message in caught.value.errors["file"]


@pytest.mark.slow
def test_twenty_thousand_rows_import_in_bulk(app, event, make_guests, now):
    make_guests(event, 500, "pending")  # guest0..499 exist already
    lines = ["name,email,rsvp_status"]
    lines += [f"Guest {i},GUEST{i}@example.org,attending" for i in range(20_000)]
    lines += ["Broken,broken,attending", "Dup,guest7@example.org,maybe"]
    plan, counts = run(event, "\n".join(lines) + "\n", now)
    assert counts == {
        "created": 19_500,
        "restored": 0,
        "updated": 500,
        "unchanged": 0,
        "rejected": 2,
    }
    total, attending, tokens = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(Guest.rsvp_status == RsvpStatus.ATTENDING),
            sa.func.count(sa.distinct(Guest.token)),
        ).where(Guest.event_id == event.id)
    ).one()
    assert (total, attending, tokens) == (20_000, 20_000, 20_000)


def test_plan_reads_the_database_once(app, event, make_guests, now):
    """No per-row queries: the plan is one SELECT whatever the size of the file."""
    make_guests(event, 50)
    with counted_statements() as statements:
        rows = csv_import.parse_csv(
            "name,email\n" + "".join(f"G {i},guest{i}@example.org\n" for i in range(200))
        )
        plan = csv_import.plan_import(db.session, event, rows)
        statements.clear()
        csv_import.apply_import(db.session, event, plan, now, actor=ACTOR)
    db.session.rollback()
    assert len([s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]) == 2


# --- pages -----------------------------------------------------------------------------


def test_preview_then_confirm(client, auth, app, event, make_guests):
    make_guests(event, 1, "pending")
    auth.login()
    text = "name,email,rsvp_status\nGuest 0,guest0@example.org,attending\nNew,new@example.org,\nBad,bad,maybe\n"
    preview = upload_csv(client, event, text)
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert re.search(r'id="count-created">1<', html)
    assert re.search(r'id="count-updated">1<', html)
    assert re.search(r'id="count-rejected">1<', html)
    assert "<td>4</td><td>bad</td>" in html
    assert "Import 2 guests" in html
    assert len(guests_of(event)) == 1  # nothing saved yet

    token = hidden_value(html, "token")
    stored = Path(app.instance_path) / "imports" / f"{event.id}-{token}.csv"
    assert stored.is_file()
    response = client.post(f"/events/{event.id}/guests/import/confirm", data={"token": token})
    assert response.status_code == 302
    assert guests_of(event) == {
        "guest0@example.org": ("Guest 0", "attending"),
        "new@example.org": ("New", "pending"),
    }
    assert not stored.exists()
    flashed = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 created, 1 updated, 0 unchanged, 1 rejected" in flashed
    again = client.post(f"/events/{event.id}/guests/import/confirm", data={"token": token})
    assert again.status_code == 400
    assert "expired or was already imported" in again.get_data(as_text=True)


def test_confirm_never_trusts_rows_or_paths_from_the_client(client, auth, event, make_event):
    auth.login()
    token = hidden_value(
        upload_csv(client, event, "name,email\nA,a@example.org\n").get_data(as_text=True), "token"
    )
    url = f"/events/{event.id}/guests/import/confirm"
    for bad in ("../../etc/passwd", "", "x" * 10):
        assert client.post(url, data={"token": bad}).status_code == 400
    other = make_event("Other")
    assert (
        client.post(f"/events/{other.id}/guests/import/confirm", data={"token": token}).status_code
        == 400
    )
    assert guests_of(event) == {} and guests_of(other) == {}
    assert client.post(url, data={"token": token, "name": "Injected"}).status_code == 302
    assert guests_of(event) == {"a@example.org": ("A", "pending")}


@pytest.mark.slow
def test_twenty_thousand_rows_through_the_pages(client, auth, event):
    auth.login()
    body = "name;email;rsvp_status\n" + "".join(
        f"G {i};g{i}@example.org;maybe\n" for i in range(20_000)
    )
    html = upload_csv(client, event, "\ufeff" + body).get_data(as_text=True)
    assert re.search(r'id="count-created">20000<', html)
    assert "Import 20000 guests" in html
    confirm = client.post(
        f"/events/{event.id}/guests/import/confirm", data={"token": hidden_value(html, "token")}
    )
    assert confirm.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count()).where(Guest.event_id == event.id)) == 20_000


def test_upload_errors_are_form_errors(client, auth, event):
    auth.login()
    url = f"/events/{event.id}/guests/import"
    missing = client.post(url, data={}, content_type="multipart/form-data")
    assert missing.status_code == 400
    assert "Choose a CSV file" in missing.get_data(as_text=True)
    no_email = upload_csv(client, event, "name,phone\nAda,1\n")
    assert no_email.status_code == 400
    assert "missing email" in no_email.get_data(as_text=True)
    empty = upload_csv(client, event, b"")
    assert empty.status_code == 400


def test_upload_larger_than_the_limit_is_refused_clearly(client, auth, event):
    auth.login()
    big = "name,email\n" + "x" * (csv_import.MAX_UPLOAD_BYTES + 100_000)
    response = upload_csv(client, event, big)
    assert response.status_code == 413
    assert "The file is larger than 5 MB." in response.get_data(as_text=True)


def test_a_file_of_only_rejections_offers_no_import(client, auth, event):
    auth.login()
    html = upload_csv(client, event, "name,email\n,a@example.org\n").get_data(as_text=True)
    assert "Nothing to import" in html
    assert "/import/confirm" not in html


def test_preview_escapes_file_content(client, auth, event):
    auth.login()
    html = upload_csv(client, event, "name,email\n<b>x</b>,<script>@x.org\n").get_data(as_text=True)
    assert "<script>@" not in html and "&lt;script&gt;@x.org" in html


def test_preview_shows_before_and_after_and_offers_the_rejected_rows(client, auth, event):
    auth.login()
    client.post(
        f"/events/{event.id}/guests",
        data={"name": "Ann Okafor", "email": "ann@example.org", "rsvp_status": "attending"},
    )
    text = (
        "name,email,rsvp_status\n"
        "Ann Okafor,ann@example.org,declined\n"
        "Bad Address,not-an-address,maybe\n"
        "=HYPERLINK(1),,attending\n"
    )
    html = upload_csv(client, event, text).get_data(as_text=True)
    flat = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Ann Okafor ann@example.org attending → becomes declined" in flat

    token = hidden_value(html, "token")
    link = f"/events/{event.id}/guests/import/rejected.csv?token={token}"
    assert f'href="{link}"' in html
    answer = client.get(link)
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    lines = answer.get_data(as_text=True).splitlines()
    assert lines[0] == "name,email,rsvp_status,line,reason"
    assert lines[1].startswith("Bad Address,not-an-address,maybe,3,")
    assert lines[2].startswith("'=HYPERLINK(1),,attending,4,")  # no formula in a spreadsheet
    assert len(lines) == 3
    assert (
        client.get(f"/events/{event.id}/guests/import/rejected.csv?token=nope").status_code == 404
    )
