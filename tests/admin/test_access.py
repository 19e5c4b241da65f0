"""The admin views are for admins only: hosts get 404, anonymous visitors the login page."""

from __future__ import annotations

import pytest

ADMIN_PAGES = ["/admin/", "/admin/batches", "/admin/failures", "/admin/outbox"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_are_404_for_hosts(client, auth, owner, path):
    auth.login()
    assert client.get(path).status_code == 404
    assert client.post("/admin/failures/retry", data={"message_id": "1"}).status_code == 404


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_ask_anonymous_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_open_for_admins(client, auth, make_user, path):
    admin = make_user("admin@example.com", admin=True)
    auth.login(admin)
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for label in ("All batches", "Failed deliveries", "Outbox"):
        assert label in html  # admin_nav_links in the header


def test_hosts_do_not_see_admin_links(client, auth, owner):
    auth.login()
    html = client.get("/").get_data(as_text=True)
    assert "/admin/batches" not in html
