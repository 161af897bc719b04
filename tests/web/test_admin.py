"""The admin's panel in a browser: Your Packages (columns, New Package, delete refused with
its reason), master packages with a speed change's preview, customers (search as you
type), routers (dry run in colour, sync), cards; every page readable without JavaScript."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from sqlalchemy import insert

from provisioner.db import transaction
from provisioner.models import utcnow
from provisioner.radius_tables import radacct
from tests.web.conftest import ADMIN, Web, login, need_playwright, open_context

expect = need_playwright().expect
SHOTS = os.environ.get("PROVISIONER_SCREENSHOTS", "/tmp")  # for a person to look at

COLUMNS = [
    "Package Name", "Master Package", "Customer's Price", "Operator's Price", "Type",
    "Billing", "Visibility", "Actions",
]  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_admin_logs_in_and_sees_your_packages(browser: Any, make_web: Any, backend: str) -> None:
    web: Web = make_web(backend)
    context = open_context(browser, web)
    page = context.new_page()
    login(page, ADMIN)
    expect(page).to_have_url(f"{web.base}/ui/dashboard")  # where an admin lands
    page.get_by_role("link", name="Packages", exact=True).click()
    expect(page.locator("h1")).to_have_text("Your Packages")
    assert page.locator("#packages thead th").all_inner_texts() == COLUMNS
    row = page.locator("#packages tbody tr", has_text="Home 10")
    assert row.locator("td").all_inner_texts()[:7] == [
        "Home 10", "m-home", "500.00 BDT", "400.00 BDT", "pppoe", "monthly", "public",
    ]  # fmt: skip
    expect(row.locator("td").nth(7)).to_contain_text("Edit")
    expect(row.locator("td").nth(7)).to_contain_text("Delete")
    # The admin flow on this backend: a new package, then it is listed.
    page.click("text=New Package")
    page.select_option("#f-master_package", "m-home")
    page.fill("#f-name", "Night 5")
    page.fill("#f-customer_price", "300")
    page.fill("#f-operator_price", "250")
    page.click("button:has-text('Create package')")
    expect(page.locator("#flash")).to_contain_text("Package 'Night 5' created.")
    expect(page.locator("#packages tbody tr", has_text="Night 5")).to_have_count(1)
    assert web.external == []
    context.close()


def test_new_package_shows_the_error_beside_its_field_and_keeps_the_input(
    page: Any, web: Web
) -> None:
    login(page, ADMIN)
    page.goto("/ui/packages/new")
    page.select_option("#f-master_package", "m-home")
    expect(page.locator("#inherited-type")).to_have_text("pppoe")
    # The inherited spec follows the choice (htmx), read-only: type, billing, speed, cap, pool.
    page.select_option("#f-master_package", "hs-day")
    expect(page.locator("#inherited-type")).to_have_text("hotspot")
    expect(page.locator("#inherited-billing")).to_have_text("daily (1 day)")
    expect(page.locator("#inherited")).to_contain_text("5G")
    expect(page.locator("#inherited")).to_contain_text("pool-hs")
    page.fill("#f-name", "Day Pass")
    page.fill("#f-customer_price", "twenty")
    page.fill("#f-operator_price", "15")
    page.select_option("#f-visibility", "private")
    page.click("button:has-text('Create package')")
    error = page.locator("#e-customer_price")
    expect(error).to_contain_text("is not an amount")
    expect(page.locator("#f-customer_price")).to_have_attribute("aria-invalid", "true")
    # What was typed is kept, the choice of master package too.
    expect(page.locator("#f-name")).to_have_value("Day Pass")
    expect(page.locator("#f-customer_price")).to_have_value("twenty")
    expect(page.locator("#f-operator_price")).to_have_value("15")
    expect(page.locator("#f-master_package")).to_have_value("hs-day")
    expect(page.locator("#f-visibility")).to_have_value("private")
    # A clash is shown beside the name.
    page.fill("#f-customer_price", "20")
    page.fill("#f-name", "Home 10")
    page.click("button:has-text('Create package')")
    expect(page.locator("#e-name")).to_contain_text("a package named 'Home 10' exists")
    page.fill("#f-name", "Day Pass")
    page.click("button:has-text('Create package')")
    row = page.locator("#packages tbody tr", has_text="Day Pass")
    expect(row).to_contain_text("hotspot")
    expect(row).to_contain_text("daily (1 day)")


def test_deleting_a_package_customers_use_is_refused_with_the_reason(page: Any, web: Web) -> None:
    login(page, ADMIN)
    page.goto("/ui/packages")
    used = page.locator("#packages tbody tr", has_text="pkg-a")
    used.locator("button:has-text('Delete')").click()
    expect(page.locator("#flash")).to_contain_text(
        "package 'pkg-a' is still used by customers cust-a"
    )
    expect(page.locator("#packages tbody tr", has_text="pkg-a")).to_have_count(1)
    unused = page.locator("#packages tbody tr", has_text="Biz")
    unused.locator("button:has-text('Delete')").click()
    expect(page.locator("#flash")).to_contain_text("Package 'Biz' deleted.")
    expect(page.locator("#packages tbody tr", has_text="Biz")).to_have_count(0)


def test_a_speed_change_shows_the_routers_and_online_customers_it_reaches(
    page: Any, web: Web
) -> None:
    with transaction(web.ctx.factory) as s:  # cust-a is online (RADIUS accounting)
        s.execute(
            insert(radacct).values(
                acctsessionid="s1", acctuniqueid="u1", username="cust-a",
                nasipaddress="127.0.0.1", acctstarttime=utcnow(), framedipaddress="10.50.0.9",
            )
        )  # fmt: skip
    login(page, ADMIN)
    page.goto("/ui/masters")
    page.locator("#masters tr", has_text="m-home").locator("text=Edit").click()
    page.fill("#f-rate_down", "20M")
    page.click("button:has-text('Preview')")
    expect(page.locator("#preview")).to_contain_text("5M/10M → 5M/20M")
    expect(page.locator("#preview-routers")).to_contain_text("sim-1")
    expect(page.locator("#preview-coa")).to_contain_text("(1): cust-a")
    # Nothing was saved by the preview.
    page.goto("/ui/masters")
    expect(page.locator("#masters tr", has_text="m-home")).to_contain_text("10M / 5M")


def test_customers_search_as_you_type_filter_and_suspend(page: Any, web: Web) -> None:
    login(page, ADMIN)
    page.goto("/ui/customers")
    expect(page.locator("#customers tbody tr")).to_have_count(3)
    page.fill("input[name=q]", "cust")
    expect(page.locator("#customers tbody tr")).to_have_count(2)
    expect(page).to_have_url(re.compile(r".*/ui/customers\?q=cust&.*"))  # htmx pushed it
    page.get_by_role("combobox", name="Reseller").fill("resB")  # typed, with suggestions
    page.get_by_role("combobox", name="Reseller").press("Enter")
    expect(page.locator("#customers tbody tr")).to_have_count(1)
    expect(page.locator("#customers")).to_contain_text("cust-b")
    page.locator("#customers tr", has_text="cust-b").locator("button:has-text('Suspend')").click()
    expect(page.locator("#customer-status")).to_have_text("suspended")


def test_router_dry_run_shows_the_plan_in_colour_and_sync_applies_it(page: Any, web: Web) -> None:
    login(page, ADMIN)
    page.goto("/ui/routers")
    row = page.locator("#routers tr", has_text="sim-1")
    expect(row).to_contain_text("never synced")
    row.locator("text=Open").click()
    page.click("#dry-run")
    plan = page.locator("#plan pre.plan")
    expect(plan).to_contain_text("router sim-1:")
    expect(plan).to_contain_text("/ip/pool")
    expect(page.locator("#plan-summary")).to_contain_text("to add")
    green = plan.locator("span[style*='color']").first
    expect(green).to_contain_text("+ pool-home")
    page.click("#sync")
    expect(page.locator("#flash")).to_contain_text("Sync of sim-1: ok")
    expect(page.locator("#runs tbody tr").first).to_contain_text("web")
    page.click("#dry-run")
    expect(page.locator("#plan pre.plan")).to_contain_text("router sim-1: no changes")
    page.click("#bootstrap")
    expect(page.locator("#plan h2")).to_contain_text("Bootstrap plan")
    expect(page.locator("#plan pre.plan")).to_contain_text("/radius")


def test_recharge_cards_are_generated_onto_a_print_sheet(page: Any, web: Web) -> None:
    login(page, ADMIN)
    page.goto("/ui/cards")
    page.fill("#f-count", "4")
    page.fill("#f-value", "250")
    page.fill("#f-batch", "shop-a")
    page.click("button:has-text('Generate')")
    expect(page.locator("#card-sheet .card")).to_have_count(4)
    pins = page.locator("#card-sheet .pin").all_inner_texts()
    assert all(len(p) == 14 and p.isdigit() for p in pins)
    page.goto("/ui/cards")
    expect(page.locator("#batches tr", has_text="shop-a")).to_contain_text("250.00 BDT")
    assert not any(p in page.content() for p in pins)  # shown once, on the sheet only


def test_pages_read_without_javascript(browser: Any, web: Web) -> None:
    context = open_context(browser, web, java_script_enabled=False)
    page = context.new_page()
    login(page, ADMIN)
    for path, heading in (
        ("/ui/packages", "Your Packages"), ("/ui/masters", "Master packages"),
        ("/ui/resellers", "Resellers"), ("/ui/customers", "Customers"),
        ("/ui/routers", "Routers"), ("/ui/activations", "Activations"),
        ("/ui/cards", "Recharge cards"), ("/ui/audit", "Audit log"),
    ):  # fmt: skip
        page.goto(path)
        expect(page.locator("h1")).to_have_text(heading)
    page.goto("/ui/customers")
    page.fill("input[name=q]", "walk")
    page.click("button:has-text('Search')")
    expect(page.locator("#customers tbody tr")).to_have_count(1)
    page.goto("/ui/routers")
    page.locator("#routers tr", has_text="sim-1").locator("text=Dry run").click()
    expect(page.locator("#plan pre.plan")).to_contain_text("router sim-1:")
    context.close()


def test_screenshot_of_your_packages(page: Any, web: Web) -> None:
    """For a person to look at: /tmp/provisioner-admin-packages.png (the README's, by
    scripts/screenshots)."""
    page.set_viewport_size({"width": 1366, "height": 800})
    login(page, ADMIN)
    page.get_by_role("link", name="Packages", exact=True).click()  # an admin lands elsewhere
    expect(page.locator("h1")).to_have_text("Your Packages")
    page.screenshot(path=f"{SHOTS}/provisioner-admin-packages.png", full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366
