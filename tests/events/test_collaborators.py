"""Owners add collaborators by e-mail, change their role and remove them; never the last owner."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.events.models import Collaborator, Role
from dashboard.extensions import db


def roles(event) -> dict[str, str]:
    db.session.expire_all()
    rows = db.session.scalars(sa.select(Collaborator).where(Collaborator.event_id == event.id))
    return {row.user.email: row.role.value for row in rows}


def collaborator_id(event, email: str) -> int:
    return next(
        c.id
        for c in db.session.scalars(
            sa.select(Collaborator).where(Collaborator.event_id == event.id)
        )
        if c.user.email == email
    )


def test_owner_sees_the_list_and_the_add_form(client, auth, event, viewer):
    auth.login()
    page = client.get(f"/events/{event.id}/collaborators").get_data(as_text=True)
    assert "owner@example.com" in page and "viewer@example.com" in page
    assert "Add a collaborator" in page
    assert 'hx-boost="true" hx-confirm="Remove viewer@example.com from this event?"' in page


def test_owner_adds_a_user_by_email_with_a_role(client, auth, event, make_user):
    make_user("Helper@Example.com")
    auth.login()
    response = client.post(
        f"/events/{event.id}/collaborators",
        data={"email": " helper@EXAMPLE.com ", "role": "editor"},
    )
    assert response.status_code == 302
    assert roles(event)["helper@example.com"] == "editor"
    assert "is now editor" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_adding_an_unknown_email_is_a_form_error(client, auth, event):
    auth.login()
    response = client.post(
        f"/events/{event.id}/collaborators", data={"email": "nobody@example.com", "role": "viewer"}
    )
    assert response.status_code == 400
    assert "No user with e-mail nobody@example.com" in response.get_data(as_text=True)


def test_adding_with_a_bad_role_is_a_form_error(client, auth, event, make_user):
    make_user("helper@example.com")
    auth.login()
    response = client.post(
        f"/events/{event.id}/collaborators", data={"email": "helper@example.com", "role": "god"}
    )
    assert response.status_code == 400
    assert "helper@example.com" not in roles(event)


def test_owner_changes_a_role(client, auth, event, viewer):
    auth.login()
    url = f"/events/{event.id}/collaborators/{collaborator_id(event, viewer.email)}/role"
    assert client.post(url, data={"role": "editor"}).status_code == 302
    assert roles(event)["viewer@example.com"] == "editor"


def test_owner_removes_a_collaborator(client, auth, event, viewer):
    auth.login()
    url = f"/events/{event.id}/collaborators/{collaborator_id(event, viewer.email)}/remove"
    assert client.post(url).status_code == 302
    assert "viewer@example.com" not in roles(event)
    auth.logout()
    auth.login(viewer)
    assert client.get(f"/events/{event.id}").status_code == 404


def test_the_last_owner_cannot_be_removed_or_demoted(client, auth, event):
    auth.login()
    cid = collaborator_id(event, "owner@example.com")
    for url, data in (
        (f"/events/{event.id}/collaborators/{cid}/remove", {}),
        (f"/events/{event.id}/collaborators/{cid}/role", {"role": "viewer"}),
    ):
        response = client.post(url, data=data)
        assert response.status_code == 400
        assert "An event needs at least one owner" in response.get_data(as_text=True)
    assert roles(event) == {"owner@example.com": "owner"}


def test_an_owner_may_leave_when_another_owner_remains(
    client, auth, event, make_user, add_collaborator
):
    co_owner = make_user("co@example.com")
    add_collaborator(event, co_owner, Role.OWNER)
    auth.login()
    response = client.post(
        f"/events/{event.id}/collaborators/{collaborator_id(event, 'owner@example.com')}/remove"
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert roles(event) == {"co@example.com": "owner"}


def test_an_owner_who_steps_down_lands_on_the_overview(
    client, auth, event, make_user, add_collaborator
):
    add_collaborator(event, make_user("co@example.com"), Role.OWNER)
    auth.login()
    response = client.post(
        f"/events/{event.id}/collaborators/{collaborator_id(event, 'owner@example.com')}/role",
        data={"role": "editor"},
    )
    assert response.headers["Location"] == f"/events/{event.id}"
    assert roles(event)["owner@example.com"] == "editor"
