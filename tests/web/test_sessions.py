"""Logins, sessions and CSRF: a POST without the session's token is 403; logging out ends
the session; the cookie is HttpOnly and SameSite=Lax; failed logins are throttled;
a changed password or a removed login ends open sessions."""

from __future__ import annotations

import re
from typing import Any

import httpx

from provisioner import users
from provisioner.db import transaction
from provisioner.web.auth import USER_LIMIT
from tests.web.conftest import ADMIN, DESK_A, WALKIN, Web, login, need_playwright

expect = need_playwright().expect
# As long as the browser tests wait (open_context): a loaded CI machine can stall a
# request for seconds, past httpx's default of 5 s.
TIMEOUT = 15


def test_a_post_without_the_csrf_token_is_refused(page: Any, web: Web) -> None:
    login(page, ADMIN)
    page.goto("/ui/packages/new")
    page.evaluate("document.querySelector('#package-form input[name=csrf]').remove()")
    page.select_option("#f-master_package", "m-home")
    page.fill("#f-name", "Sneaky")
    page.fill("#f-customer_price", "1")
    page.fill("#f-operator_price", "1")
    with page.expect_response(re.compile(r".*/ui/packages/new$")) as answer:
        page.click("button:has-text('Create package')")
    assert answer.value.status == 403
    expect(page.locator(".flash.bad")).to_contain_text("security token")
    # A wrong token is refused as well, from another origin's form or a script.
    r = page.request.post(f"{web.base}/ui/packages/new", form={"csrf": "guess", "name": "X"})
    assert r.status == 403
    page.goto("/ui/packages")
    expect(page.locator("#packages")).not_to_contain_text("Sneaky")


def test_logout_ends_the_session(page: Any, web: Web) -> None:
    login(page, ADMIN)
    cookie = next(c for c in page.context.cookies() if c["name"] == "provisioner_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    page.click("button:has-text('Log out')")
    expect(page).to_have_url(f"{web.base}/ui/login")
    page.goto("/ui/packages")
    expect(page).to_have_url(f"{web.base}/ui/login")
    login(page, WALKIN, area="/portal")
    page.click("button:has-text('Log out')")
    expect(page).to_have_url(f"{web.base}/portal/login")


def test_a_wrong_password_is_refused_and_keeps_the_username(page: Any, web: Web) -> None:
    page.goto("/ui/login")
    page.fill("#f-username", "root")
    page.fill("#f-password", "not-it")
    page.click("button:has-text('Log in')")
    expect(page.locator("#e-password")).to_have_text("wrong username or password")
    expect(page.locator("#f-username")).to_have_value("root")
    expect(page.locator("#f-password")).to_have_value("")


def _csrf(client: httpx.Client, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)  # type: ignore[union-attr]


def test_repeated_failed_logins_are_refused_for_a_while(web: Web) -> None:
    with httpx.Client(base_url=web.base, timeout=TIMEOUT) as c:
        token = _csrf(c, "/ui/login")
        for _ in range(USER_LIMIT):
            r = c.post("/ui/login", data={"csrf": token, "username": "root", "password": "x"})
            assert r.status_code == 401
        r = c.post("/ui/login", data={"csrf": token, "username": ADMIN[0], "password": ADMIN[1]})
        assert r.status_code == 429
        assert "too many failed logins" in r.text
        # Another login is not held back by root's failures.
        r = c.post("/ui/login", data={"csrf": token, "username": DESK_A[0], "password": DESK_A[1]})
        assert r.status_code == 303 and r.headers["location"] == "/ui/"


def test_a_new_password_or_a_removed_login_ends_open_sessions(web: Web) -> None:
    with (
        httpx.Client(base_url=web.base, timeout=TIMEOUT) as admin,
        httpx.Client(base_url=web.base, timeout=TIMEOUT) as desk,
    ):
        for client, (name, password) in ((admin, ADMIN), (desk, DESK_A)):
            token = _csrf(client, "/ui/login")
            r = client.post(
                "/ui/login", data={"csrf": token, "username": name, "password": password}
            )
            assert r.status_code == 303
        assert admin.get("/ui/packages").status_code == 200
        assert desk.get("/ui/desk").status_code == 200
        with transaction(web.ctx.factory) as s:
            users.set_password(s, "test", ADMIN[0], "another-pass-1")
            users.remove_user(s, "test", DESK_A[0])
        r = admin.get("/ui/packages")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"
        r = desk.get("/ui/desk")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"


def test_the_cookie_is_secure_over_https(web: Web) -> None:
    """Behind a TLS proxy (or uvicorn with --ssl) the request's scheme is https."""
    from fastapi.testclient import TestClient

    from provisioner.api import create_app

    with TestClient(create_app(web.ctx), base_url="https://panel.example") as c:
        r = c.get("/portal/login")
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        # The API sets no cookie at all.
        assert "set-cookie" not in c.get("/api/v1/health").headers
