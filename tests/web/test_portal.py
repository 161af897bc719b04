"""The customer portal in a browser: log in with the PPPoE username and password, see the
account, buy with the balance and with a recharge card, watch pending become applied; a
phone-width screenshot."""

from __future__ import annotations

import os
from typing import Any

from provisioner import registry
from provisioner.db import transaction
from tests.web.conftest import WALKIN, Web, login, need_playwright, open_context

expect = need_playwright().expect
SHOTS = os.environ.get("PROVISIONER_SCREENSHOTS", "/tmp")  # for a person to look at


def test_customer_logs_in_with_its_pppoe_login_and_buys_with_its_balance(
    page: Any, web: Web
) -> None:
    login(page, WALKIN, area="/portal")
    expect(page.locator("h1")).to_have_text("Hello, walkin")
    expect(page.locator("#my-balance")).to_have_text("600.00 BDT")
    expect(page.locator("#my-status")).to_have_text("new")
    page.click("text=Buy or renew")
    offered = page.locator(".package header strong").all_inner_texts()
    assert offered == ["Home 10"]  # public packages only
    expect(page.locator(".package")).to_contain_text("500.00 BDT")
    page.click(".package >> text=Buy")
    expect(page.locator("#balance-after")).to_have_text("100.00 BDT")
    page.click("#pay-balance")
    expect(page.locator("#before")).to_have_text("600.00 BDT")
    expect(page.locator("#after")).to_have_text("100.00 BDT")
    status = page.locator("#activation-status mark")
    expect(status).to_have_text("pending")
    web.drain()
    expect(status).to_have_text("applied", timeout=10_000)
    page.click("text=Back to my account")
    expect(page.locator("#my-package")).to_have_text("Home 10")
    expect(page.locator("#my-status")).to_have_text("active")
    expect(page.locator("#recent tbody tr")).to_have_count(1)


def test_customer_pays_with_a_recharge_card(page: Any, web: Web) -> None:
    serial, pin = web.card
    login(page, WALKIN, area="/portal")
    page.goto(f"/portal/packages/{web.ids['package:Home 10']}")
    page.fill("#f-card_serial", serial)
    page.fill("#f-card_pin", "00000000000000")
    page.click("#pay-card")
    expect(page.locator("#e-card")).to_contain_text("unknown card or wrong PIN")
    expect(page.locator("#f-card_serial")).to_have_value(serial)  # kept; the PIN is not
    expect(page.locator("#my-balance, #balance")).to_have_text("600.00 BDT")
    page.fill("#f-card_pin", pin)
    page.click("#pay-card")
    expect(page.locator("#before")).to_have_text("600.00 BDT")
    expect(page.locator("#after")).to_have_text("600.00 BDT")  # +500 card, -500 package
    web.drain()
    expect(page.locator("#activation-status mark")).to_have_text("applied", timeout=10_000)
    # A card is used once: the same serial and PIN again are refused, nothing is charged.
    page.goto(f"/portal/packages/{web.ids['package:Home 10']}")
    page.fill("#f-card_serial", serial)
    page.fill("#f-card_pin", pin)
    page.click("#pay-card")
    expect(page.locator("#e-card")).to_contain_text(f"card {serial} was already redeemed")
    expect(page.locator("#my-balance, #balance")).to_have_text("600.00 BDT")


def test_a_suspended_customer_may_look_but_not_buy(page: Any, web: Web) -> None:
    with transaction(web.ctx.factory) as s:
        registry.update_customer(s, "test", "walkin", {"status": "suspended"})
    login(page, WALKIN, area="/portal")
    expect(page.locator(".flash.bad")).to_contain_text("suspended")
    page.goto("/portal/packages")
    expect(page.locator(".package a[role=button]")).to_have_count(0)
    page.goto(f"/portal/packages/{web.ids['package:Home 10']}")
    page.click("#pay-balance")
    expect(page.locator(".flash.bad")).to_contain_text("this account is suspended")


def test_portal_at_phone_width(browser: Any, web: Web) -> None:
    """Nothing wider than a 390 px phone; screenshots for a person to look at."""
    context = open_context(
        browser, web, viewport={"width": 390, "height": 844}, device_scale_factor=2,
        is_mobile=True, has_touch=True,
    )  # fmt: skip
    page = context.new_page()
    login(page, WALKIN, area="/portal")
    for name, path in (("home", "/portal/"), ("packages", "/portal/packages"),
                       ("buy", f"/portal/packages/{web.ids['package:Home 10']}"),
                       ("password", "/portal/password")):  # fmt: skip
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        page.screenshot(path=f"{SHOTS}/provisioner-portal-{name}-390.png", full_page=True)
    context.close()
