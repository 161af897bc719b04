"""The README's pictures of the dashboard and the portal, taken by the browser tests on
a seeded ISP of a few resellers and some dozens of customers (active, expiring,
suspended), thirty days of sales, a day of sessions online and a customer's cycle of
usage with its invoice: ``scripts/screenshots`` copies them to ``docs/``, so they stay
true to the panels. Written to ``$PROVISIONER_SCREENSHOTS`` (default ``/tmp``)."""

from __future__ import annotations

import os
import random
from base64 import b64encode
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from provisioner import ledger, registry, sync
from provisioner.db import transaction
from provisioner.models import Activation, Customer, Invoice, Package, utcnow
from provisioner.radius_tables import radacct
from tests.web.conftest import ADMIN, Web, login, need_playwright, open_context

expect = need_playwright().expect
SHOTS = os.environ.get("PROVISIONER_SCREENSHOTS", "/tmp")
GIB = 2**30
PORTAL_USER = ("rahim", "rahim-pw")
NAMES = [
    "rahim", "karim", "nasrin", "farhana", "tanvir", "sumon", "mitu", "arif", "shila",
    "jamal", "ruma", "sabbir", "lima", "habib", "sadia", "rubel", "mim", "imran", "tania",
    "shakil", "moni", "rasel", "keya", "fahim", "nadia", "sohel", "joya", "masud",
]  # fmt: skip
RESELLERS = ["Dhaka Net", "Mirpur Link", "Uttara Fiber"]


def seed_demo(web: Web) -> None:
    """A small ISP in full swing in Dhaka, made the same way every run (a fixed random
    seed); its router synced."""
    web.ctx.settings.timezone = "Asia/Dhaka"
    rnd = random.Random(25)
    now = utcnow()
    with transaction(web.ctx.factory) as s:
        registry.create_master_package(
            s, "seed",
            {"name": "home-20M", "customer_type": "pppoe", "rate_down": "20M",
             "rate_up": "10M", "pool_name": "pool-home", "pool_ranges": "10.50.0.2-10.50.0.254",
             "fup_threshold": "100G", "fup_down": "5M", "fup_up": "2M"},
        )  # fmt: skip
        registry.create_package(
            s, "seed",
            {"name": "Home 20 Mbps", "master_package": "home-20M", "customer_price": "800",
             "operator_price": "650", "visibility": "public"},
        )  # fmt: skip
        for name in RESELLERS:
            registry.create_reseller(s, "seed", {"name": name})
            registry.assign_package(s, "seed", name, "Home 20 Mbps", None)
            registry.assign_package(s, "seed", name, "Home 10", None)
        for i, username in enumerate(NAMES):
            registry.create_customer(
                s, "seed",
                {"username": username, "password": f"{username}-pw", "customer_type": "pppoe",
                 "router": "sim-1", "package": "Home 10" if i % 3 == 1 else "Home 20 Mbps",
                 "reseller": RESELLERS[i % 4] if i % 4 < 3 else None, "status": "active",
                 "expires_at": now + timedelta(days=2 + rnd.randrange(28) if i % 5 else 1 + i % 6)},
            )  # fmt: skip
        for username, reason in (("rubel", "unpaid"), ("keya", "unpaid"), ("masud", None)):
            s.execute(
                update(Customer).where(Customer.username == username)
                .values(status="suspended", suspended_reason=reason)
            )  # fmt: skip
        customers = {c.username: c for c in s.scalars(select(Customer))}
        prices = {p.id: p.customer_price for p in s.scalars(select(Package))}
        # Thirty days of sales, a few a day (more on some).
        for day in range(30):
            for n in range(rnd.randint(1, 4) + (3 if day in (0, 1, 28, 29) else 0)):
                c = customers[rnd.choice(NAMES[1:])]  # rahim's cycle is set below
                at = now - timedelta(days=day, hours=rnd.randrange(12), minutes=rnd.randrange(60))
                payer = f"reseller:{c.reseller_id}" if c.reseller_id else f"customer:{c.id}"
                s.execute(
                    insert(Activation).values(
                        idempotency_key=f"demo-{day}-{n}", customer_id=c.id,
                        package_id=c.package_id, payer=payer, price=prices[c.package_id],
                        requested_by="seed", starts_at=at, expires_at=at + timedelta(days=30),
                        status="applied", created_at=at,
                    )
                )  # fmt: skip
        # A day of sessions: most customers dial in by evening, a few since yesterday.
        for i, username in enumerate(NAMES):
            if username in ("rubel", "keya", "masud"):
                continue
            start = now - timedelta(hours=rnd.uniform(1, 30))
            stop = None if i % 4 else start + timedelta(hours=rnd.uniform(1, 6))
            s.execute(
                insert(radacct).values(
                    acctsessionid=f"demo-{i}", acctuniqueid=f"u-demo-{i}", username=username,
                    nasipaddress=web.sim.host, framedipaddress=f"10.50.0.{10 + i}",
                    acctstarttime=start, acctupdatetime=stop or now, acctstoptime=stop,
                    acctinputoctets=rnd.randrange(50, 400) * 2**20,
                    acctoutputoctets=rnd.randrange(1, 6) * GIB,
                )
            )  # fmt: skip
        # The portal's customer: 18 days into its cycle, a few GiB a day; next month's
        # invoice issued.
        rahim = customers[PORTAL_USER[0]]
        start, end = now - timedelta(days=18), now + timedelta(days=12)
        s.execute(update(Customer).where(Customer.id == rahim.id).values(expires_at=end))
        (act,) = s.execute(
            insert(Activation).values(
                idempotency_key="demo-rahim", customer_id=rahim.id, package_id=rahim.package_id,
                payer=f"customer:{rahim.id}", price=prices[rahim.package_id],
                requested_by="seed", starts_at=start, expires_at=end, status="applied",
                created_at=start,
            ).returning(Activation.id)
        )  # fmt: skip
        for day in range(18):
            began = start + timedelta(days=day, hours=18)
            s.execute(
                insert(radacct).values(
                    acctsessionid=f"rahim-{day}", acctuniqueid=f"u-rahim-{day}",
                    username=rahim.username, nasipaddress=web.sim.host,
                    framedipaddress="10.50.0.9", acctstarttime=began,
                    acctupdatetime=began + timedelta(hours=5),
                    acctstoptime=began + timedelta(hours=5),
                    acctinputoctets=rnd.randrange(100, 500) * 2**20,
                    acctoutputoctets=rnd.randrange(1, 7) * GIB,
                )
            )  # fmt: skip
        ledger.topup(s, "seed", f"customer:{rahim.username}", "1250")
        for period, status in ((start, "paid"), (end, "open")):
            s.execute(
                insert(Invoice).values(
                    customer_id=rahim.id, package_id=rahim.package_id,
                    activation_id=act.id if status == "paid" else None,
                    amount=prices[rahim.package_id], period_start=period,
                    period_end=period + timedelta(days=30), due_at=period, status=status,
                    paid_at=period if status == "paid" else None, created_at=period,
                )
            )  # fmt: skip
    (router_id,) = sync.router_ids(web.ctx.factory, ["sim-1"])
    assert sync.sync_router(web.ctx.factory, web.ctx.settings, router_id).status == "ok"


def test_screenshots_of_the_dashboard_and_the_portal(browser: Any, web: Web) -> None:
    """docs/dashboard.png (1280 px) and docs/portal.png (the portal's home with its usage
    and the open invoice, on a 390 px phone)."""
    seed_demo(web)
    context = open_context(browser, web, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, ADMIN)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("#dash-suspended")).to_contain_text("3")
    page.screenshot(path=f"{SHOTS}/provisioner-dashboard.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    context.close()

    phone = open_context(
        browser, web, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = phone.new_page()
    page.goto("/portal/login")
    page.get_by_label("Username").fill(PORTAL_USER[0])
    page.get_by_label("Password").fill(PORTAL_USER[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("meter")).to_be_visible()
    expect(page.locator("#usage-threshold")).to_have_text("100.00 GiB")
    expect(page.get_by_role("img", name="Usage per day this cycle")).to_be_visible()
    home = page.screenshot(full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="Invoices").click()
    row = page.locator("tr", has_text="open")
    expect(row).to_contain_text("800.00 BDT")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("button", name="Pay 800.00 BDT")).to_be_visible()
    invoice = page.screenshot(full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert web.external == []
    phone.close()
    # The two phone screens side by side, composed by the browser itself.
    side = browser.new_page(viewport={"width": 2 * 390 + 3 * 16, "height": 400})
    side.set_content(
        '<body style="margin:0;padding:16px;display:flex;gap:16px;align-items:flex-start;'
        'background:#e5e7eb">'
        + "".join(
            f'<img style="box-shadow:0 1px 6px #0004" src="data:image/png;base64,{b64encode(shot).decode()}">'
            for shot in (home, invoice)
        )
        + "</body>"
    )
    side.screenshot(path=f"{SHOTS}/provisioner-portal.png", full_page=True)
    side.close()
