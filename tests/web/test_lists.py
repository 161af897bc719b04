"""Lists that scale, in a browser: the audit log paged by id and filtered by what, who
and the days, its values in people's units and its actors spelled one way; Your Packages
paged, searched and filtered; CSV exports of what a list shows (the same filters)."""

from __future__ import annotations

import csv
import io
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
