"""The admin pages that were missing, in a browser: routers (add, edit, credentials
write-only and encrypted at rest, remove with a reason, audited); web logins (add, role,
new password, disable); a portal password the customer sets apart from its PPPoE password,
reset by its operator."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from provisioner.db import transaction
from provisioner.models import AuditLog, Customer, Router
from tests.web.conftest import ADMIN, DESK_A, WALKIN, Web, login, need_playwright, open_context

expect = need_playwright().expect


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_admin_adds_edits_and_removes_a_router(browser: Any, make_web: Any, backend: str) -> None:
    web: Web = make_web(backend)
    context = open_context(browser, web)
    page = context.new_page()
    login(page, ADMIN)
    page.goto("/ui/routers")
    page.get_by_role("button", name="Add router").click()
    page.get_by_label("Name").fill("edge-2")
    page.get_by_label("Address (IPv4 or IPv6)").fill("not-an-address")
    page.get_by_label("API user").fill("api")
    page.get_by_label("API password").fill("api-pass-1")
    page.get_by_label("RADIUS secret").fill("radius-s3cret")
    page.get_by_role("button", name="Add router").click()
    expect(page.locator("#e-host")).to_contain_text("is not an IP address")
    expect(page.get_by_label("Name")).to_have_value("edge-2")  # kept; the credentials are not
    expect(page.get_by_label("API password")).to_have_value("")
    page.get_by_label("Address (IPv4 or IPv6)").fill("192.0.2.77")
    page.get_by_label("API password").fill("api-pass-1")
    page.get_by_label("RADIUS secret").fill("radius-s3cret")
    page.get_by_role("button", name="Add router").click()
    expect(page.locator("#flash")).to_contain_text("Router 'edge-2' added")
    expect(page.locator("h1")).to_have_text("Router edge-2")
    # Encrypted at rest, never rendered back.
    with transaction(web.ctx.factory) as s:
        r = s.query(Router).filter_by(name="edge-2").one()
        assert (r.password, r.radius_secret) == ("api-pass-1", "radius-s3cret")
        raw = s.execute(text("SELECT password, radius_secret FROM routers WHERE name = 'edge-2'"))
        stored = raw.one()
        assert "api-pass-1" not in stored[0] and "radius-s3cret" not in stored[1]
    page.get_by_role("button", name="Edit").click()
    assert "api-pass-1" not in page.content() and "radius-s3cret" not in page.content()
    expect(page.get_by_label("New API password")).to_have_value("")
    page.get_by_label("CoA/Disconnect port").fill("1700")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("Router 'edge-2' saved.")
    with transaction(web.ctx.factory) as s:
        r = s.query(Router).filter_by(name="edge-2").one()
        assert (r.coa_port, r.password, r.radius_secret) == (1700, "api-pass-1", "radius-s3cret")
    # Removal asks why, and the audit log keeps it.
    page.get_by_text("Remove this router").click()
    page.get_by_label("Why is it removed?").fill("replaced by edge-3")
    page.get_by_role("button", name="Remove router").click()
    expect(page.locator("#flash")).to_contain_text("Router 'edge-2' removed.")
    expect(page.locator("#routers")).not_to_contain_text("edge-2")
    page.goto("/ui/audit?entity=routers")
    removed = page.locator("#audit tbody tr").first
    expect(removed).to_contain_text("delete")
    expect(removed).to_contain_text("router edge-2")
    expect(removed).to_contain_text("reason=replaced by edge-3")
    expect(page.locator("#audit")).not_to_contain_text("api-pass-1")
    # A router that serves customers is refused, the reason beside the form.
    page.goto(f"/ui/routers/{_router_id(web, 'sim-1')}")
    page.get_by_text("Remove this router").click()
    page.get_by_label("Why is it removed?").fill("test")
    page.get_by_role("button", name="Remove router").click()
    expect(page.locator("#remove .flash.bad")).to_contain_text("still serves customers")
    context.close()


def _router_id(web: Web, name: str) -> int:
    with transaction(web.ctx.factory) as s:
        return s.query(Router).filter_by(name=name).one().id


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_admin_manages_web_logins(browser: Any, make_web: Any, backend: str) -> None:
    web: Web = make_web(backend)
    context = open_context(browser, web)
    page = context.new_page()
    login(page, ADMIN)
    page.get_by_role("link", name="Logins").click()
    expect(page.locator("#logins tbody tr")).to_have_count(3)
    page.get_by_role("button", name="Add login").click()
    page.get_by_label("Username").fill("clerk")
    page.get_by_label("Password").fill("short")
    page.get_by_label("Role").select_option("reseller")
    page.get_by_label("Reseller (for a reseller login)").select_option("resA")
    page.get_by_role("button", name="Add login").click()
    expect(page.locator("#e-password")).to_contain_text("at least 8 characters")
    expect(page.get_by_label("Username")).to_have_value("clerk")
    page.get_by_label("Password").fill("clerk-pass-1")
    page.get_by_role("button", name="Add login").click()
    expect(page.locator("#flash")).to_contain_text("Login 'clerk' added.")
    # The new login works on the desk.
    other = open_context(browser, web).new_page()
    login(other, ("clerk", "clerk-pass-1"))
    expect(other).to_have_url(re.compile(r".*/ui/desk$"))
    # A new password ends its session; disabled, it cannot log in.
    page.get_by_label("New password").fill("clerk-pass-2")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator("#flash")).to_contain_text("sessions have ended")
    other.goto("/ui/desk")
    expect(other).to_have_url(re.compile(r".*/ui/login$"))
    page.get_by_role("button", name="Disable login").click()
    expect(page.locator("#login-state")).to_have_text("disabled")
    other.goto("/ui/login")
    other.fill("#f-username", "clerk")
    other.fill("#f-password", "clerk-pass-2")
    other.click("button[type=submit]:has-text('Log in')")
    expect(other.locator("#e-password")).to_contain_text("wrong username or password")
    page.get_by_role("button", name="Enable login").click()
    expect(page.locator("#login-state")).to_have_text("active")
    # Role: an admin now; its own admin role cannot be taken by itself.
    page.get_by_label("Role").select_option("admin")
    page.get_by_role("button", name="Change role").click()
    expect(page.locator("#flash")).to_contain_text("Login 'clerk' is now admin.")
    page.goto("/ui/logins?q=root")
    page.get_by_role("link", name="root").click()
    page.get_by_role("button", name="Disable login").click()
    expect(page.locator(".flash.bad")).to_contain_text("you cannot disable your own login")
    with transaction(web.ctx.factory) as s:
        rows = s.query(AuditLog).filter_by(entity="web_users").all()
        assert all("clerk-pass" not in str(r.after) for r in rows)
    context.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_customer_sets_a_portal_password_and_its_operator_resets_it(
    browser: Any, make_web: Any, backend: str
) -> None:
    web: Web = make_web(backend)
    context = open_context(browser, web)
    page = context.new_page()
    login(page, WALKIN, area="/portal")  # no portal password yet: the PPPoE one works
    page.get_by_role("link", name="Your portal password").click()
    page.get_by_label("Current password").fill("wrong")
    page.get_by_label("New portal password").fill("portal-pass-1")
    page.get_by_label("Type the new password again").fill("portal-pass-1")
    page.get_by_role("button", name="Set portal password").click()
    expect(page.locator("#e-current")).to_have_text("is not your current password")
    page.get_by_label("Current password").fill(WALKIN[1])
    page.get_by_label("New portal password").fill("portal-pass-1")
    page.get_by_label("Type the new password again").fill("portal-pass-2")
    page.get_by_role("button", name="Set portal password").click()
    expect(page.locator("#e-confirm")).to_have_text("does not match the new password")
    page.get_by_label("Current password").fill(WALKIN[1])
    page.get_by_label("New portal password").fill("portal-pass-1")
    page.get_by_label("Type the new password again").fill("portal-pass-1")
    page.get_by_role("button", name="Set portal password").click()
    expect(page.locator("#flash")).to_contain_text("Your portal password is set.")
    expect(page.locator("h1")).to_have_text("Hello, walkin")  # this session carries on
    with transaction(web.ctx.factory) as s:
        c = s.query(Customer).filter_by(username="walkin").one()
        assert c.password == WALKIN[1]  # the PPPoE password is untouched
        assert c.portal_password_hash and "portal-pass-1" not in c.portal_password_hash
    # The PPPoE password no longer opens the portal; the portal password does.
    fresh = open_context(browser, web).new_page()
    fresh.goto("/portal/login")
    fresh.fill("#f-username", WALKIN[0])
    fresh.fill("#f-password", WALKIN[1])
    fresh.click("button[type=submit]:has-text('Log in')")
    expect(fresh.locator("#e-password")).to_contain_text("wrong username or password")
    login(fresh, (WALKIN[0], "portal-pass-1"), area="/portal")
    # Its operator (the admin: walk-in customers have no reseller) resets it.
    admin = open_context(browser, web).new_page()
    login(admin, ADMIN)
    admin.goto(f"/ui/customers/{web.ids['walkin']}")
    expect(admin.locator("#portal-reset")).to_contain_text("set its own portal password")
    admin.get_by_role("button", name="Reset portal password").click()
    expect(admin.locator("#flash")).to_contain_text("logs in with its PPPoE password")
    fresh.goto("/portal/")
    expect(fresh).to_have_url(re.compile(r".*/portal/login$"))  # the session ended
    login(fresh, WALKIN, area="/portal")
    context.close()


def test_a_reseller_resets_only_its_own_customers_portal_password(page: Any, web: Web) -> None:
    login(page, DESK_A)
    page.goto(f"/ui/desk/customers/{web.ids['cust-a']}")
    page.get_by_role("button", name="Reset portal password").click()
    expect(page.locator("#flash")).to_contain_text("Portal password of 'cust-a' reset")
    r = page.request.post(
        f"/ui/desk/customers/{web.ids['cust-b']}/portal-password",
        headers={"X-CSRF-Token": page.evaluate("document.querySelector('[name=csrf]').value")},
    )
    assert r.status == 404


def test_new_package_asks_for_its_master(page: Any, web: Web) -> None:
    login(page, ADMIN)
    page.goto("/ui/packages/new")
    expect(page.get_by_label("Master package")).to_have_value("")
    expect(page.locator("#inherited")).to_have_text("Choose a master package.")
    page.get_by_label("Package name").fill("No Master")
    page.get_by_label("Customer's price (BDT)").fill("100")
    page.get_by_label("Operator's price (BDT)").fill("80")
    page.get_by_role("button", name="Create package").click()
    # The browser asks for the choice first (required); nothing is created without one.
    assert page.get_by_label("Master package").evaluate("e => e.validity.valueMissing")
    expect(page).to_have_url(re.compile(r".*/ui/packages/new$"))


def test_the_masters_table_fits_1280_px_without_wrapping_names_or_buttons(
    browser: Any, web: Web
) -> None:
    from provisioner import registry

    with transaction(web.ctx.factory) as s:
        registry.create_master_package(
            s, "seed",
            {"name": "home-fiber-100M-unlimited", "customer_type": "pppoe", "rate_down": "100M",
             "rate_up": "50M", "burst_down": "120M", "burst_up": "60M",
             "burst_threshold_down": "80M", "burst_threshold_up": "40M", "burst_time": "16",
             "pool_name": "pool-fiber-100",
             "pool_ranges": "10.70.0.2-10.70.3.254,10.71.0.2-10.71.3.254"},
        )  # fmt: skip
    page = open_context(browser, web, viewport={"width": 1280, "height": 900}).new_page()
    login(page, ADMIN)
    page.goto("/ui/masters")
    lines = page.evaluate(
        """() => [...document.querySelectorAll('#masters tbody tr')].map(tr => {
            const lines = el => { const r = document.createRange(); r.selectNodeContents(el);
                return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; };
            const [edit, del] = tr.querySelectorAll('td:last-child a, td:last-child button');
            return [lines(tr.cells[0]), edit.getBoundingClientRect().top ===
                    del.getBoundingClientRect().top];
        })"""
    )
    assert lines == [[1, True]] * 3
    width = page.evaluate(
        "[document.querySelector('#masters').scrollWidth, "
        "document.querySelector('#masters').parentElement.clientWidth]"
    )
    assert width[0] <= width[1]  # no sideways scrolling
