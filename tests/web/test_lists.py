"""Lists that scale, in a browser: the audit log paged by id and filtered by what, who
and the days, its values in people's units and its actors spelled one way; Your Packages
paged, searched and filtered; CSV exports of what a list shows (the same filters)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from provisioner import registry
from provisioner.db import transaction
from provisioner.models import AuditLog, Reseller
from tests.web.conftest import ADMIN, Web, login, need_playwright, open_context

expect = need_playwright().expect


def _csv(page: Any, url: str) -> list[list[str]]:
    r = page.request.get(url)
    assert r.status == 200, r.text()
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(r.text())))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_audit_is_paged_filtered_and_in_peoples_units(
    browser: Any, make_web: Any, backend: str
) -> None:
    web: Web = make_web(backend)
    with transaction(web.ctx.factory) as s:
        registry.update_master_package(s, "cli", "m-home", {"rate_down": "12M"})  # an old row
        registry.update_master_package(s, "admin:cli", "m-home", {"volume_cap": "5G"})
        res_a = s.query(Reseller).filter_by(name="resA").one().id
        registry.update_reseller(s, f"reseller:{res_a}", "resA", {"contact": "0170"})
        for i in range(60):  # more than a page
            mac = f"aa:bb:cc:00:00:{i:02x}"
            registry.update_customer(s, "admin:root", "walkin", {"mac_address": mac})
        registry.update_customer(s, "admin:root", "cust-a", {"package": "pkg-b"})
    context = open_context(browser, web)
    page = context.new_page()
    login(page, ADMIN)
    page.goto("/ui/audit")
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(50)
    # Names instead of ids, and the actor as people name it.
    first = rows.first
    expect(first).to_contain_text("root (admin)")
    expect(first).to_contain_text("customer cust-a")
    expect(first).to_contain_text("package: pkg-a → pkg-b")
    newer = [int(i.split("-")[1]) for i in rows.evaluate_all("rs => rs.map(r => r.id)")]
    page.get_by_role("link", name="older →").click()
    expect(page.get_by_role("link", name="← newest")).to_be_visible()
    older = [int(i.split("-")[1]) for i in rows.evaluate_all("rs => rs.map(r => r.id)")]
    assert older and max(older) < min(newer)  # the next rows by id, none shown twice
    # Filter by what and who: both spellings of the CLI are one actor, in people's units.
    page.goto("/ui/audit")
    page.get_by_label("What").select_option("master_packages")
    page.get_by_label("Who").fill("cli")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("admin (cli)")
    expect(rows.nth(0)).to_contain_text("volume cap: — → 5 GiB")
    expect(rows.nth(1)).to_contain_text("admin (cli)")
    expect(rows.nth(1)).to_contain_text("rate down: 10M → 12M")
    expect(page.locator("#audit")).not_to_contain_text("12000000")
    # A reseller by its name; a date range that holds nothing.
    page.goto("/ui/audit?actor=resA")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("resA (reseller)")
    expect(rows.first).to_contain_text("contact: — → 0170")
    today = datetime.now(UTC).date().isoformat()
    page.goto(f"/ui/audit?actor=resA&since={today}&until={today}")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("resA (reseller)")
    page.goto("/ui/audit?since=2001-01-01&until=2001-01-31")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Nothing recorded that matches.")
    page.goto("/ui/audit?since=yesterday")
    expect(page.locator("#e-since")).to_have_text("must be a date (YYYY-MM-DD)")
    # The CSV holds every matching row, not just the page.
    page.goto("/ui/audit?actor=root")
    href = page.get_by_role("button", name="Export CSV").get_attribute("href")
    table = _csv(page, href)
    assert table[0] == ["when (UTC)", "who", "action", "what", "changes"]
    with transaction(web.ctx.factory) as s:
        stored = s.query(AuditLog).filter(AuditLog.actor == "admin:root").count()
    assert len(table) - 1 == stored == 61
    assert {r[1] for r in table[1:]} == {"root (admin)"}
    context.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_your_packages_are_paged_searched_filtered_and_exported(
    browser: Any, make_web: Any, backend: str
) -> None:
    web: Web = make_web(backend)
    with transaction(web.ctx.factory) as s:
        for i in range(60):  # 64 packages in all: three pages of 25
            registry.create_package(
                s, "seed",
                {"name": f"night-{i:02d}", "master_package": "hs-day" if i % 2 else "m-home",
                 "customer_price": "100", "operator_price": "80",
                 "visibility": "public" if i % 3 == 0 else "private"},
            )  # fmt: skip
    context = open_context(browser, web)
    page = context.new_page()
    login(page, ADMIN)
    page.get_by_role("link", name="Packages", exact=True).click()  # an admin lands elsewhere
    rows = page.locator("#packages tbody tr")
    expect(rows).to_have_count(25)
    expect(page.locator(".pager .count")).to_have_text("64 packages · page 1 of 3")
    page.get_by_role("link", name="next →").click()
    expect(page.locator(".pager .count")).to_have_text("64 packages · page 2 of 3")
    expect(rows.first.locator("td").first).to_have_text("night-23")  # by name: Biz, Home 10 first
    # Search and filters together, kept across pages and in the export.
    page.get_by_label("Search by name").fill("night")
    page.get_by_label("Billing").select_option("daily")
    page.get_by_label("Visibility").select_option("public")
    page.get_by_role("button", name="Search").click()
    expected = [f"night-{i:02d}" for i in range(60) if i % 2 and i % 3 == 0]
    expect(rows).to_have_count(len(expected))
    assert rows.locator("td:first-child").all_inner_texts() == expected
    expect(page.locator("#packages")).not_to_contain_text("pppoe")
    table = _csv(page, page.get_by_role("link", name="Export CSV").get_attribute("href"))
    assert table[0][:4] == [
        "Package Name",
        "Master Package",
        "Customer's Price",
        "Operator's Price",
    ]
    assert [r[0] for r in table[1:]] == expected
    assert {r[1] for r in table[1:]} == {"hs-day"}
    # The master package filter suggests the names (a datalist), and narrows by it.
    page.goto("/ui/packages?master=m-home&q=night")
    expect(rows).to_have_count(25)
    expect(page.locator(".pager .count")).to_have_text("30 packages · page 1 of 2")
    assert page.locator("#master-names option").count() == 2
    # A filter that is not one of its choices is said, not a 500.
    response = page.goto("/ui/packages?billing=weekly")
    assert response is not None and response.status == 422
    expect(page.locator(".flash.bad")).to_contain_text("billing")
    context.close()


def test_lists_of_masters_resellers_routers_activations_and_customers_page_and_export(
    page: Any, web: Web
) -> None:
    login(page, ADMIN)
    for path, search, row, noun in (
        ("/ui/masters", "hs", "hs-day", "master package"),
        ("/ui/resellers", "resB", "resB", "reseller"),
        ("/ui/routers", "sim", "sim-1", "router"),
    ):
        page.goto(path)
        page.get_by_label("Search by name").fill(search)
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table tbody tr")).to_have_count(1)
        expect(page.locator("table tbody tr")).to_contain_text(row)
        expect(page.locator(".pager .count")).to_have_text(f"1 {noun} · page 1 of 1")
        table = _csv(page, page.get_by_role("link", name="Export CSV").get_attribute("href"))
        assert [r[0] for r in table[1:]] == [row], path
    page.goto("/ui/customers?status=active")
    table = _csv(page, page.get_by_role("link", name="Export CSV").get_attribute("href"))
    assert table[0] == ["username", "type", "package", "reseller", "status", "expires (UTC)",
                        "router"]  # fmt: skip
    assert sorted(r[0] for r in table[1:]) == ["cust-a", "cust-b"]
    page.goto("/ui/activations")
    expect(page.locator(".pager .count")).to_have_text("0 activations · page 1 of 1")
    # The customer filters suggest packages and resellers as one types; one that is not a
    # package is said above the (empty) list, not a 500.
    page.goto("/ui/customers")
    page.get_by_role("combobox", name="Package").fill("pkg-")
    page.get_by_role("combobox", name="Package").press("Enter")
    expect(page.locator("#customer-rows .flash.bad")).to_contain_text("no package named 'pkg-'")
    expect(page.locator("#customers tbody tr")).to_have_count(1)  # "No customers match."
    page.get_by_role("combobox", name="Package").fill("pkg-a")
    page.get_by_role("combobox", name="Package").press("Enter")
    expect(page.locator("#customers tbody tr")).to_have_text(re.compile("cust-a"))


def test_a_reseller_exports_only_its_own_customers(page: Any, web: Web) -> None:
    from tests.web.conftest import DESK_A

    login(page, DESK_A)
    page.goto("/ui/desk")
    table = _csv(page, page.get_by_role("link", name="Export CSV").get_attribute("href"))
    assert "reseller" not in table[0]
    assert [r[0] for r in table[1:]] == ["cust-a"]


def test_the_assign_menu_is_searchable(page: Any, web: Web) -> None:
    with transaction(web.ctx.factory) as s:
        for i in range(200):
            registry.create_package(
                s, "seed",
                {"name": f"bulk-{i:03d}", "master_package": "m-home", "customer_price": "10",
                 "operator_price": "5"},
            )  # fmt: skip
        res_b = s.query(Reseller).filter_by(name="resB").one().id
    login(page, ADMIN)
    page.goto(f"/ui/resellers/{res_b}")
    field = page.get_by_role("combobox", name="Package")
    assert field.evaluate("e => e.tagName") == "INPUT"  # typed, not scrolled through
    assert page.locator("#choices-package option").count() == 203  # all but its own
    expect(page.locator("#assignments")).not_to_contain_text("bulk-123")
    field.fill("bulk-123")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("'bulk-123' assigned.")
    expect(page.locator("#assignments")).to_contain_text("bulk-123")
    field.fill("no-such-package")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#e-package, .flash.bad").first).to_contain_text("no-such-package")


def test_the_desk_ledger_is_paged_and_exported(page: Any, web: Web) -> None:
    from provisioner import ledger
    from tests.web.conftest import DESK_A

    with transaction(web.ctx.factory) as s:
        for _ in range(30):
            ledger.topup(s, "seed", "reseller:resA", "1")
    login(page, DESK_A)
    page.goto("/ui/desk/ledger")
    expect(page.locator("#ledger tbody tr")).to_have_count(25)
    expect(page.locator(".pager .count")).to_have_text("31 entries · page 1 of 2")
    page.get_by_role("link", name="next →").click()
    expect(page.locator("#ledger tbody tr")).to_have_count(6)
    table = _csv(page, page.get_by_role("link", name="Export CSV").get_attribute("href"))
    assert len(table) == 32 and table[0] == ["when (UTC)", "amount", "kind", "reference"]
