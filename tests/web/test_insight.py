"""What an ISP's desk asks of the panels (issue 25, part A), in a real browser by role and
label, on SQLite and PostgreSQL: the dashboards' figures equal the API's; who is online,
per reseller, with Disconnect; invoices in the three faces, a suspended customer paying
its own and coming back; times in the configured zone; money and payers one way."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from provisioner import activation, invoices, ledger
from provisioner.activation import ActivationRequest
from provisioner.auth import Principal, create_token
from provisioner.db import reading, transaction
from provisioner.models import AuditLog, Customer, Invoice, Outbox, Reseller, utcnow
from provisioner.radius_tables import radacct
from tests.web.conftest import ADMIN, DESK_A, DESK_B, Web, login, need_playwright, open_context

expect = need_playwright().expect


def online(web: Web, username: str, sid: str, *, ip: str = "10.50.0.9", hours: int = 1) -> None:
    """An open RADIUS session (as FreeRADIUS writes it: started ``hours`` ago)."""
    with transaction(web.ctx.factory) as s:
        s.execute(
            insert(radacct).values(
                acctsessionid=sid, acctuniqueid=f"u-{sid}", username=username,
                nasipaddress=web.sim.host, framedipaddress=ip,
                acctstarttime=utcnow() - timedelta(hours=hours),
                acctinputoctets=3 * 2**20, acctoutputoctets=40 * 2**20,
            )
        )  # fmt: skip


def reseller_id(web: Web, name: str) -> int:
    with reading(web.ctx.factory) as s:
        return int(s.scalar(select(Reseller.id).where(Reseller.name == name)) or 0)


def api_total(web: Web, token: str, **query: Any) -> int:
    r = httpx.get(
        f"{web.base}/api/v1/customers", params={**query, "limit": 1},
        headers={"Authorization": f"Bearer {token}"}, timeout=15,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_dashboards_figures_equal_the_apis(browser: Any, make_web: Any, backend: str) -> None:
    web: Web = make_web(backend)
    with transaction(web.ctx.factory) as s:
        # cust-b suspended by its operator; walkin expiring in 3 days; a sale by resA.
        s.execute(update(Customer).where(Customer.username == "cust-b").values(status="suspended"))
        admin_token = create_token(s, role="admin")
        desk_token = create_token(s, role="reseller", reseller="resA")
    activation.run_activation(
        web.ctx.factory, Principal("reseller", reseller_id=reseller_id(web, "resA")),
        ActivationRequest("cust-a", "pkg-a", "k-dash"),
    )  # fmt: skip
    with transaction(web.ctx.factory) as s:
        s.execute(
            update(Customer).where(Customer.username == "walkin")
            .values(status="active", expires_at=utcnow() + timedelta(days=3))
        )  # fmt: skip
    online(web, "cust-a", "s-a")
    online(web, "cust-b", "s-b", hours=30)  # online since before the chart's 24 hours
    context = open_context(browser, web)
    page = context.new_page()
    login(page, ADMIN)
    expect(page).to_have_url(f"{web.base}/ui/dashboard")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    figures = {
        "#dash-active": api_total(web, admin_token, status="active"),
        "#dash-expiring": api_total(web, admin_token, expiring_within_days=7),
        "#dash-suspended": api_total(web, admin_token, status="suspended"),
    }
    assert figures == {"#dash-active": 2, "#dash-expiring": 1, "#dash-suspended": 1}
    for selector, n in figures.items():
        expect(page.locator(selector)).to_have_text(str(n))
    expect(page.locator("#dash-online")).to_have_text("2")
    expect(page.locator("#dash-suspended-reasons")).to_contain_text("by an operator: 1")
    expect(page.locator("#dash-sales-today")).to_have_text("350.00 BDT")
    expect(page.locator("#sales-by-reseller tbody tr", has_text="resA")).to_contain_text(
        "350.00 BDT"
    )
    expect(page.locator("#dash-routers tbody tr", has_text="sim-1")).to_be_visible()
    # The charts: images with a name, and their figures as a table (no script needed).
    chart = page.get_by_role("img", name="Activations per day, last 30 days")
    expect(chart).to_be_visible()
    page.get_by_text("Activations per day, last 30 days as a table").click()
    today = datetime.now(UTC).strftime("%m-%d")
    last_day = page.locator("details[open] tbody tr").last
    expect(last_day.locator("td")).to_have_text([today, "1"])
    expect(page.get_by_role("img", name="Sessions online, last 24 hours")).to_be_visible()
    hours = page.locator("figure", has=page.get_by_role("img", name=re.compile("Sessions online")))
    hours.get_by_text("as a table").click()
    counts = hours.locator("tbody td:last-child")
    expect(counts.first).to_have_text("1")  # 24 hours ago: cust-b only
    expect(counts.last).to_have_text("2")  # now: both
    # The reseller's: its subtree only, with its balance and margin (600 - 350).
    context.clear_cookies()
    login(page, DESK_A)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#dash-active")).to_have_text(
        str(api_total(web, desk_token, status="active"))
    )
    expect(page.locator("#dash-active")).to_have_text("1")
    expect(page.locator("#dash-online")).to_have_text("1")
    expect(page.locator("#dash-suspended")).to_have_text("0")
    expect(page.locator("#dash-balance")).to_have_text("650.00 BDT")
    expect(page.locator("#dash-margin")).to_have_text("250.00 BDT")
    expect(page.locator("#dash-routers")).to_have_count(0)
    assert web.external == []
    context.close()


def test_online_sessions_per_reseller_and_disconnect_is_queued_and_audited(
    page: Any, web: Web
) -> None:
    online(web, "cust-a", "s-a", ip="10.50.0.9")
    online(web, "cust-b", "s-b", ip="10.50.0.10")
    login(page, DESK_B)
    page.get_by_role("link", name="Online").click()
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("cust-b")
    expect(page.locator("#sessions")).not_to_contain_text("cust-a")
    # Another reseller's session cannot be cut by its id.
    with reading(web.ctx.factory) as s:
        theirs = s.scalar(select(radacct.c.radacctid).where(radacct.c.username == "cust-a"))
    r = page.request.post(
        f"{web.base}/ui/desk/sessions/{theirs}/disconnect",
        headers={"X-CSRF-Token": page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")},
    )  # fmt: skip
    assert r.status == 404
    page.context.clear_cookies()
    login(page, ADMIN)
    page.get_by_role("link", name="Online").click()
    expect(page.locator("#sessions tbody tr")).to_have_count(2)
    page.get_by_role("searchbox", name="Customer").fill("cust-a")
    page.get_by_role("button", name="Search").click()
    row = page.locator("#sessions tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("pkg-a")
    expect(row).to_contain_text("sim-1")
    expect(row).to_contain_text("10.50.0.9")
    expect(row).to_contain_text("40.0 MiB")
    expect(row).to_contain_text("1h 00m")
    page.get_by_role("button", name="Disconnect cust-a").click()
    expect(page.locator("#flash")).to_contain_text("Disconnect sent to cust-a's session.")
    with reading(web.ctx.factory) as s:
        work = s.scalars(select(Outbox).where(Outbox.kind == "disconnect")).all()
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "disconnect")).all()
    assert [w.payload["Acct-Session-Id"] for w in work] == ["s-a"]
    assert [(a.actor, a.entity) for a in audit] == [("admin:root", "customers")]


def _invoiced(web: Web, *usernames: str, suspend: bool = False) -> dict[str, int]:
    """Open invoices for the next period of these customers (the invoice job, run five
    days early); with ``suspend``, past their grace too (suspended as unpaid)."""
    with transaction(web.ctx.factory) as s:
        end = s.scalar(select(Customer.expires_at).where(Customer.username == usernames[0]))
        s.execute(
            update(Customer).where(Customer.username.not_in(usernames)).values(expires_at=None)
        )
    assert end is not None
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    invoices.run(web.ctx.factory, end - timedelta(days=2))
    if suspend:
        invoices.run(web.ctx.factory, end + timedelta(days=4))
    with reading(web.ctx.factory) as s:
        return {
            name: iid
            for name, iid in s.execute(
                select(Customer.username, Invoice.id).join(
                    Invoice, Invoice.customer_id == Customer.id
                )
            )
        }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_customer_suspended_as_unpaid_pays_its_invoice_in_the_portal_and_is_back(
    browser: Any, make_web: Any, backend: str
) -> None:
    web: Web = make_web(backend)
    ids = _invoiced(web, "cust-a", suspend=True)
    web.drain()
    [secret] = [x for x in web.sim.items("/ppp/secret") if x["name"] == "cust-a"]
    assert secret.get("disabled") in ("true", "yes", True), secret  # cut off on the router
    with transaction(web.ctx.factory) as s:
        ledger.topup(s, "test", "customer:cust-a", "600")
    context = open_context(browser, web)
    page = context.new_page()
    page.goto("/portal/login")
    page.get_by_label("Username").fill("cust-a")
    page.get_by_label("Password").fill("cust-a-pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#my-status")).to_have_text("suspended")
    page.get_by_role("link", name="Invoices").click()
    row = page.locator(f"#invoice-{ids['cust-a']}")
    expect(row).to_contain_text("600.00 BDT")
    expect(row).to_contain_text("open")
    row.get_by_role("link").click()
    page.get_by_role("button", name="Pay 600.00 BDT").click()
    expect(page.locator("#flash")).to_contain_text("is paid. Your service is back on.")
    expect(page.locator("#invoice-status")).to_have_text("paid")
    expect(page.locator("#payments")).to_contain_text("cust-a")  # by name, not customer:N
    page.get_by_role("link", name="Account").click()
    expect(page.locator("#my-status")).to_have_text("active")
    web.drain()
    [secret] = [x for x in web.sim.items("/ppp/secret") if x["name"] == "cust-a"]
    assert secret.get("disabled") in ("false", "no", False, None), secret  # online again
    # The print: a page of its own, in people's format.
    page.goto(f"/portal/invoices/{ids['cust-a']}/print")
    expect(page.get_by_role("heading", name=f"Invoice {ids['cust-a']}")).to_be_visible()
    expect(page.locator("body")).to_contain_text("600.00 BDT")
    assert web.external == []
    context.close()


def test_a_customer_pays_its_invoice_with_a_recharge_card(page: Any, web: Web) -> None:
    ids = _invoiced(web, "cust-a", suspend=True)
    with transaction(web.ctx.factory) as s:
        ledger.topup(s, "test", "customer:cust-a", "100")  # + the 500 card = 600
    page.goto("/portal/login")
    page.get_by_label("Username").fill("cust-a")
    page.get_by_label("Password").fill("cust-a-pw")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/portal/invoices/{ids['cust-a']}")
    serial, pin = web.card
    page.get_by_label("Card serial").fill(serial)
    page.get_by_label("Card PIN").fill("000000")
    page.get_by_role("button", name="Pay with the card").click()
    expect(page.locator("#e-card, #e-card_pin, #e-card_serial").first).to_be_visible()
    expect(page.get_by_label("Card serial")).to_have_value(serial)  # kept; the PIN is not
    expect(page.locator("#invoice-status")).to_have_text("open")
    page.get_by_label("Card PIN").fill(pin)
    page.get_by_role("button", name="Pay with the card").click()
    expect(page.locator("#invoice-status")).to_have_text("paid")
    page.get_by_role("link", name="Account").click()
    expect(page.locator("#my-status")).to_have_text("active")
    expect(page.locator("#my-balance")).to_have_text("0.00 BDT")


def test_operators_filter_record_and_void_invoices(page: Any, web: Web) -> None:
    ids = _invoiced(web, "cust-a", "cust-b")
    assert set(ids) == {"cust-a", "cust-b"}
    # resB records cash it collected for its customer (its own price from its balance).
    with transaction(web.ctx.factory) as s:
        ledger.topup(s, "test", "reseller:resB", "1000")
    login(page, DESK_B)
    page.get_by_role("link", name="Invoices").click()
    expect(page.locator("#invoices tbody tr")).to_have_count(1)  # its own customer's only
    page.locator(f"#invoice-{ids['cust-b']}").get_by_role("link").click()
    page.get_by_label("Reference (a receipt number)").fill("R-77")
    page.get_by_role("button", name=re.compile("Record payment")).click()
    expect(page.locator("#invoice-status")).to_have_text("paid")
    expect(page.locator("#payments")).to_contain_text("resB (reseller)")
    expect(page.locator("#payments")).to_contain_text("R-77")
    # Another reseller's invoice is not there.
    assert page.request.get(f"{web.base}/ui/desk/invoices/{ids['cust-a']}").status == 404
    page.context.clear_cookies()
    login(page, ADMIN)
    page.get_by_role("link", name="Invoices").click()
    page.get_by_label("Status").select_option("open")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#invoices tbody tr")).to_have_count(1)
    expect(page.locator("#invoice-count")).to_have_text(re.compile("^1 invoice "))
    page.locator(f"#invoice-{ids['cust-a']}").get_by_role("link").click()
    page.get_by_label("Reason").fill("billed twice")
    page.get_by_role("button", name="Void invoice").click()
    expect(page.locator("#invoice-status")).to_have_text("void")
    expect(page.get_by_role("button", name="Void invoice")).to_have_count(0)
    # A filter that is not a date is refused beside its field, nothing else lost.
    page.goto("/ui/invoices?due_from=someday&status=paid")
    expect(page.locator("#e-due_from")).to_contain_text("date")
    expect(page.get_by_label("Status")).to_have_value("paid")


def test_times_show_and_are_entered_in_the_configured_zone(page: Any, web: Web) -> None:
    web.ctx.settings.timezone = "Asia/Dhaka"  # UTC+6, no daylight saving
    at = datetime(2027, 1, 6, 10, 23, tzinfo=UTC)
    with transaction(web.ctx.factory) as s:
        s.execute(update(Customer).where(Customer.username == "cust-a").values(expires_at=at))
    page.goto("/portal/login")
    page.get_by_label("Username").fill("cust-a")
    page.get_by_label("Password").fill("cust-a-pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#my-expiry")).to_have_text("2027-01-06 16:23")
    expect(page.get_by_text("Asia/Dhaka time")).to_be_visible()
    page.context.clear_cookies()
    login(page, ADMIN)
    page.goto(f"/ui/customers/{web.ids['cust-a']}")
    field = page.get_by_label("Expires (Asia/Dhaka time)")
    expect(field).to_have_attribute("type", "datetime-local")
    expect(field).to_have_value("2027-01-06T16:23")
    page.get_by_role("button", name="Save").click()  # unchanged: the expiry stays as it was
    expect(page.locator("#flash")).to_contain_text("Nothing was changed.")
    field.fill("2027-02-01T05:00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#flash")).to_contain_text("saved")
    with reading(web.ctx.factory) as s:
        stored = s.scalar(select(Customer.expires_at).where(Customer.username == "cust-a"))
    assert stored is not None
    assert stored.replace(tzinfo=UTC) == datetime(2027, 1, 31, 23, 0, tzinfo=UTC)  # stored UTC


def test_money_and_payers_read_one_way(page: Any, web: Web) -> None:
    activation.run_activation(
        web.ctx.factory, Principal("reseller", reseller_id=reseller_id(web, "resA")),
        ActivationRequest("cust-a", "pkg-a", "k-money"),
    )  # fmt: skip
    with transaction(web.ctx.factory) as s:
        ledger.topup(s, "test", "reseller:resA", "1234567.5")
    login(page, ADMIN)
    page.goto("/ui/activations")
    row = page.locator("tr", has_text="cust-a")
    expect(row).to_contain_text("resA (reseller)")
    expect(row).not_to_contain_text("reseller:")
    expect(row).to_contain_text("350.00 BDT")
    page.goto("/ui/resellers")
    expect(page.locator("tr", has_text="resA")).to_contain_text("1,235,217.50 BDT")
    page.context.clear_cookies()
    login(page, DESK_A)
    page.goto(f"/ui/desk/customers/{web.ids['cust-a']}")  # its page: usage this cycle too
    expect(page.get_by_role("heading", name="Usage this cycle")).to_be_visible()
    expect(page.locator("#usage")).to_contain_text("no fair-usage threshold")
    page.goto(f"/ui/desk/customers/{web.ids['cust-a']}/activate")
    expect(page.get_by_label("Package (the price you pay)")).to_contain_text("pkg-a — 350.00 BDT")
