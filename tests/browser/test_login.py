from tests.browser.conftest import login


def test_login_and_logout(page, live_user):
    login(page, live_user)
    assert page.get_by_role("heading", name="Events", exact=True).is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_wrong_password_shows_an_error(page, live_user):
    page.goto("/login")
    page.get_by_label("E-mail").fill(live_user["email"])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_text("Wrong e-mail or password.").is_visible()
