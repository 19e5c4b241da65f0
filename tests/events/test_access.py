"""Every protected URL of the events pages: anonymous, another host, and each role."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import Forbidden, NotFound

from dashboard.auth.models import User
from dashboard.events.access import event_access
from dashboard.events.models import Collaborator, Guest, Role
from dashboard.extensions import db
from tests.helpers import counted_statements

# (method, url template, the weakest role that may use it)
PROTECTED = [
    ("GET", "/events/{event}", Role.VIEWER),
    ("GET", "/events/{event}/edit", Role.EDITOR),
    ("POST", "/events/{event}/edit", Role.EDITOR),
    ("GET", "/events/{event}/collaborators", Role.VIEWER),
    ("POST", "/events/{event}/collaborators", Role.OWNER),
    ("POST", "/events/{event}/collaborators/{collaborator}/role", Role.OWNER),
    ("POST", "/events/{event}/collaborators/{collaborator}/remove", Role.OWNER),
    ("GET", "/events/{event}/guests", Role.VIEWER),
    ("POST", "/events/{event}/guests", Role.EDITOR),
    ("GET", "/events/{event}/guests/{guest}/edit", Role.EDITOR),
    ("POST", "/events/{event}/guests/{guest}/edit", Role.EDITOR),
    ("POST", "/events/{event}/guests/{guest}/remove", Role.EDITOR),
    ("GET", "/events/{event}/guests/import", Role.EDITOR),
    ("POST", "/events/{event}/guests/import", Role.EDITOR),
    ("POST", "/events/{event}/guests/import/confirm", Role.EDITOR),
]
LOGIN_ONLY = [("GET", "/"), ("GET", "/events/new"), ("POST", "/events/new")]
IDS = [f"{method} {url}" for method, url, _ in PROTECTED]


@pytest.fixture
def urls(event, make_guests):
    guest = make_guests(event, 1)[0]
    collaborator = db.session.query(Collaborator).filter_by(event_id=event.id).one()
    return {"event": event.id, "guest": guest.id, "collaborator": collaborator.id}


def call(client, method: str, url: str):
    return client.open(url, method=method, data={})


@pytest.mark.parametrize(("method", "url"), [(m, u) for m, u, _ in PROTECTED] + LOGIN_ONLY)
def test_anonymous_is_sent_to_login(client, urls, method, url):
    response = call(client, method, url.format(**urls))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(("method", "url", "_role"), PROTECTED, ids=IDS)
def test_another_hosts_event_is_not_found(client, auth, urls, stranger, method, url, _role):
    auth.login(stranger)
    response = call(client, method, url.format(**urls))
    assert response.status_code == 404
    assert b"Not found" in response.data


@pytest.mark.parametrize("who", ["viewer", "editor"])
@pytest.mark.parametrize(("method", "url", "role"), PROTECTED, ids=IDS)
def test_weak_roles_are_refused_and_change_nothing(
    client, auth, urls, request, who, method, url, role
):
    user = request.getfixturevalue(who)
    auth.login(user)
    before = (db.session.query(Guest).count(), db.session.query(Collaborator).count())
    response = call(client, method, url.format(**urls))
    if Role(who).at_least(role):
        assert response.status_code in (200, 302, 400)
    else:
        assert response.status_code == 403
        db.session.expire_all()
        assert (db.session.query(Guest).count(), db.session.query(Collaborator).count()) == before


@pytest.mark.parametrize(
    "url",
    [
        "/events/{event}",
        "/events/{event}/guests",
        "/events/{event}/collaborators",
        "/events/{event}/edit",
    ],
)
def test_admin_sees_every_event(client, auth, urls, make_user, url):
    admin = make_user("root@example.com", admin=True)
    auth.login(admin)
    assert client.get(url.format(**urls)).status_code == 200


def test_a_guest_of_another_event_is_not_found(client, auth, event, make_event, make_guests):
    other_event = make_event("Other party")
    foreign = make_guests(other_event, 1, prefix="foreign")[0]
    auth.login()
    assert client.get(f"/events/{event.id}/guests/{foreign.id}/edit").status_code == 404
    assert client.post(f"/events/{event.id}/guests/{foreign.id}/remove").status_code == 404
    assert db.session.get(Guest, foreign.id) is not None


def test_a_collaborator_of_another_event_is_not_found(client, auth, event, make_event):
    other_event = make_event("Other party")
    foreign = db.session.query(Collaborator).filter_by(event_id=other_event.id).one()
    auth.login()
    url = f"/events/{event.id}/collaborators/{foreign.id}"
    assert client.post(f"{url}/remove").status_code == 404
    assert client.post(f"{url}/role", data={"role": "viewer"}).status_code == 404


def test_viewer_sees_no_change_controls(client, auth, event, make_guests, viewer):
    make_guests(event, 3)
    auth.login(viewer)
    guests = client.get(f"/events/{event.id}/guests").get_data(as_text=True)
    assert "Guest 0" in guests
    for control in ("Add a guest", "/remove", "/edit", "Import guests"):
        assert control not in guests
    overview = client.get(f"/events/{event.id}").get_data(as_text=True)
    assert "Edit event" not in overview
    collaborators = client.get(f"/events/{event.id}/collaborators").get_data(as_text=True)
    assert "Add a collaborator" not in collaborators and "/remove" not in collaborators


def test_events_list_shows_only_my_events(client, auth, make_event, stranger):
    make_event("Mine")
    make_event("Theirs", user=stranger)
    auth.login()
    page = client.get("/").get_data(as_text=True)
    assert "Mine" in page and "Theirs" not in page


@pytest.mark.parametrize(
    ("who", "can_edit", "can_manage"),
    [("viewer", False, False), ("editor", True, False), ("owner", True, True)],
)
def test_the_event_and_the_role_come_in_one_query(request, event, who, can_edit, can_manage):
    user_id, event_id = request.getfixturevalue(who).id, event.id
    db.session.expunge_all()  # nothing cached: the lookup has to ask the database
    user = db.session.get(User, user_id)
    with counted_statements() as statements:
        access = event_access(db.session, user, event_id)
    assert len(statements) == 1, statements
    assert access.event.id == event_id and access.role is Role(who)
    assert (access.can_edit, access.can_manage) == (can_edit, can_manage)
    event_of, role = access  # also a plain (event, role) pair
    assert (event_of, role) == (access.event, access.role)


def test_event_access_refuses_like_the_pages(event, viewer, stranger):
    with pytest.raises(NotFound):
        event_access(db.session, stranger, event.id)
    with pytest.raises(NotFound):
        event_access(db.session, viewer, event.id + 1000)
    with pytest.raises(Forbidden):
        event_access(db.session, viewer, event.id, Role.EDITOR)
