"""Guest addresses are validated (email-validator, syntax only) and stored normalized, by
the form, the CSV import and the API alike; a CLI check lists stored ones that are not
valid. A stray quote in a CSV costs one row, not the rows after it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.audit.services import SCHEDULER
from dashboard.events import csv_import
from dashboard.events.models import Guest
from dashboard.extensions import db

INVALID = {
    "root)@example.net": "invalid characters before the @-sign: ')'",
    "ceo(not-me)@company.example": "invalid characters before the @-sign: '(', ')'",
    "javascript:alert('x')//@example.net": "invalid characters before the @-sign",
    '"quoted"@example.org': "Quoting the part before the @-sign is not allowed",
    "user@[10.0.0.1]": "bracketed IP address",
    "jörg@example.org": "Internationalized characters before the @-sign are not supported",
    "nodot@localhost": "It should have a period",
}
NORMALIZED = {
    " Ada@Example.ORG ": "Ada@example.org",
    "info@Bücher.example": "info@xn--bcher-kva.example",
    "o'brien+events@example.org": "o'brien+events@example.org",
}


def _stored(event) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Guest.email).where(Guest.event_id == event.id)))


@pytest.mark.parametrize(("address", "reason"), INVALID.items(), ids=list(INVALID))
def test_the_guest_form_refuses_an_invalid_address_with_the_reason(
    client, auth, event, owner, address, reason
):
    auth.login(owner)
    response = client.post(
        f"/events/{event.id}/guests", data={"name": "X", "email": address, "rsvp_status": "pending"}
    )
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True).replace("&#39;", "'")
    assert _stored(event) == []


@pytest.mark.parametrize(("given", "stored"), NORMALIZED.items(), ids=list(NORMALIZED))
def test_the_guest_form_stores_the_normalized_address(client, auth, event, owner, given, stored):
    auth.login(owner)
    response = client.post(
        f"/events/{event.id}/guests", data={"name": "X", "email": given, "rsvp_status": "pending"}
    )
    assert response.status_code == 302
    assert _stored(event) == [stored]


def test_the_api_rejects_invalid_rows_with_reasons_and_stores_the_rest_normalized(
    client, event, owner, bearer
):
    rows = [
        {"name": "Ada", "email": "Ada@Example.ORG"},
        {"name": "Root", "email": "root)@example.net"},
    ]
    response = client.post(
        f"/api/events/{event.id}/guests", json={"guests": rows}, headers=bearer(owner)
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [g["email"] for g in body["guests"]] == ["Ada@example.org"]
    [rejected] = body["rejected_rows"]
    assert rejected["index"] == 1
    assert "invalid characters before the @-sign" in rejected["errors"]["email"]
    # Sent again with another spelling, the same guest is updated, not duplicated.
    again = client.post(
        f"/api/events/{event.id}/guests",
        json={"guests": [{"name": "Ada L.", "email": " ADA@example.org"}]},
        headers=bearer(owner),
    )
    assert again.get_json()["updated"] == 1 and _stored(event) == ["ADA@example.org"]


def test_the_csv_import_rejects_invalid_rows_with_reasons(app, event, now):
    text = "name,email\nAda,Ada@Example.ORG\nRoot,root)@example.net\n"
    plan, counts = csv_import.import_csv(db.session, event, text, now, actor=SCHEDULER)
    db.session.commit()
    assert counts["created"] == 1 and counts["rejected"] == 1
    [rejection] = plan.rejected
    assert rejection.line == 3 and "invalid characters before the @-sign" in rejection.reason
    assert _stored(event) == ["Ada@example.org"]


def test_a_stray_quote_costs_its_row_not_the_rows_after_it(app, event, now):
    good = [f"Guest {n},guest{n}@example.org,attending" for n in range(100)]
    text = (
        "name,email,rsvp_status\n" + '"Stray,stray@example.org,pending\n' + "\n".join(good) + "\n"
    )
    plan, counts = csv_import.import_csv(db.session, event, text, now, actor=SCHEDULER)
    db.session.commit()
    assert counts == {"created": 100, "restored": 0, "updated": 0, "unchanged": 0, "rejected": 1}
    [rejection] = plan.rejected
    assert rejection.line == 2
    assert "A quoted field starts on this line and runs across lines 2-102" in rejection.reason
    assert len(_stored(event)) == 100


def test_a_field_too_large_for_csv_costs_its_row_only(app, event, now):
    text = "name,email\nAda," + "x" * 200_000 + "\nBen,ben@example.org\n"
    plan, counts = csv_import.import_csv(db.session, event, text, now, actor=SCHEDULER)
    assert counts["created"] == 1 and [r.line for r in plan.rejected] == [2]
    assert "not valid CSV (field larger than field limit" in plan.rejected[0].reason


def test_a_quoted_line_break_inside_a_name_is_still_read(app, event, now):
    text = 'name,email\n"Ada\nLovelace",ada@example.org\nBen,ben@example.org\n'
    plan, counts = csv_import.import_csv(db.session, event, text, now, actor=SCHEDULER)
    assert counts["created"] == 2 and plan.rejected == []
    assert plan.create[0].name == "Ada Lovelace" and plan.create[1].line == 4


def test_the_preview_page_reports_the_runaway_row(client, auth, event, owner):
    from tests.events.conftest import upload_csv

    auth.login(owner)
    text = 'name,email\n"Stray,stray@example.org\nAda,ada@example.org\nBen,ben@example.org\n'
    page = upload_csv(client, event, text).get_data(as_text=True)
    assert "runs across lines 2-4" in page
    assert "Import 2 guests" in page


def test_the_cli_check_lists_stored_addresses_that_are_not_valid(runner, event, make_guests):
    make_guests(event, 2)
    clean = runner.invoke(args=["check-guest-emails"])
    assert clean.exit_code == 0 and "2 guest address(es) checked, 0 not valid." in clean.output
    legacy = Guest(event_id=event.id, name="Root", email="root)@example.net", email_key="root)@x")
    db.session.add(legacy)
    db.session.commit()
    found = runner.invoke(args=["check-guest-emails", "--event", str(event.id)])
    assert found.exit_code == 1
    assert f"event {event.id} guest {legacy.id}: 'root)@example.net' is not a valid" in found.output
    assert "3 guest address(es) checked, 1 not valid." in found.output
    other = runner.invoke(args=["check-guest-emails", "--event", str(event.id + 1)])
    assert other.exit_code == 0 and "0 guest address(es) checked" in other.output
