"""The reseller's desk in a browser: its own customers only (another reseller's customer
URL answers 404), adding one, and an activation at its own price with its balance before
and after, followed from pending to applied."""

from __future__ import annotations

import os
from typing import Any

from tests.web.conftest import DESK_A, Web, login, need_playwright

expect = need_playwright().expect
SHOTS = os.environ.get("PROVISIONER_SCREENSHOTS", "/tmp")  # for a person to look at


def test_desk_activation_shows_the_balance_before_and_after(page: Any, web: Web) -> None:
    login(page, DESK_A)
    expect(page).to_have_url(f"{web.base}/ui/desk")
    expect(page.locator("#desk-balance")).to_have_text("1,000.00 BDT")
    expect(page.locator("#customers tbody tr")).to_have_count(1)  # its own only
    expect(page.locator("#customers")).to_contain_text("cust-a")
    expect(page.locator("#desk-packages")).to_contain_text("350.00")
    page.click("text=cust-a")
    page.click("#activate-link")
    expect(page.locator("#quote-price")).to_have_text("350.00 BDT")
    expect(page.locator("#quote-before")).to_have_text("1,000.00 BDT")
    expect(page.locator("#quote-after")).to_have_text("650.00 BDT")
    page.click("#activate")
    expect(page.locator("#before")).to_have_text("1,000.00 BDT")
    expect(page.locator("#after")).to_have_text("650.00 BDT")
    status = page.locator("#activation-status mark")
    expect(status).to_have_text("pending")  # the router has not been told yet
    web.drain()
    expect(status).to_have_text("applied", timeout=10_000)  # htmx polls the status
    page.click("text=Ledger")
    expect(page.locator("#ledger-balance")).to_have_text("650.00 BDT")
    expect(page.locator("#ledger tbody tr").first).to_contain_text("-350.00")
    page.goto("/ui/desk")
    page.screenshot(path=f"{SHOTS}/provisioner-desk.png", full_page=True)


def test_another_resellers_customer_answers_404(page: Any, web: Web) -> None:
    login(page, DESK_A)
    other = web.ids["cust-b"]
    for path in (f"/ui/desk/customers/{other}", f"/ui/desk/customers/{other}/activate"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        # A friendly page that keeps the desk's menu and never shows reference syntax.
        expect(page.locator(".flash.bad")).to_contain_text("There is no such customer here")
        expect(page.locator("h1")).to_have_text("Not found")
        expect(page.get_by_role("link", name="Ledger")).to_be_visible()
        assert "id:" not in page.inner_text("main")
    assert page.goto(f"/ui/desk/customers/{web.ids['cust-a']}").status == 200
    # And the admin's pages are not a reseller's.
    assert page.goto("/ui/packages").status == 403


def test_desk_adds_a_customer_and_keeps_the_input_on_a_refusal(page: Any, web: Web) -> None:
    login(page, DESK_A)
    page.goto("/ui/desk/customers/new")
    page.fill("#f-username", "new-one")
    page.fill("#f-password", "pw-123")
    page.select_option("#f-router", "sim-1")
    page.fill("#f-package", "pkg-a")
    page.fill("#f-mac_address", "not-a-mac")
    page.click("button:has-text('Add customer')")
    expect(page.locator("#e-mac_address")).to_be_visible()
    expect(page.locator("#f-username")).to_have_value("new-one")
    expect(page.locator("#f-package")).to_have_value("pkg-a")
    page.fill("#f-mac_address", "")
    page.fill("#f-password", "pw-123")
    page.click("button:has-text('Add customer')")
    expect(page.locator("#flash")).to_contain_text("Customer 'new-one' added.")
    page.goto("/ui/desk")
    page.fill("input[name=q]", "new")
    expect(page.locator("#customers tbody tr")).to_have_count(1)
