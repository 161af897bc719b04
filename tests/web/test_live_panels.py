"""The panels on a live session, end to end: the RouterOS simulator's NAS dials in through
the real FreeRADIUS (``tests/test_routeros_sim_nas.py``'s ``isp``), on SQLite and
PostgreSQL. Its usage, posted as interim accounting, shows in the portal's bar and on the
admin's customer page; the session is listed online with its package and address, and
the admin's Disconnect button cuts it (the simulator receives the Disconnect-Request)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from provisioner import outbox, users
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.db import transaction
from tests.test_freeradius_registry import radius  # noqa: F401 (fixture)
from tests.test_routeros_sim_nas import POOL, Isp, isp  # noqa: F401 (fixture)
from tests.web.conftest import ADMIN, Server, Web, login, need_playwright, open_context

expect = need_playwright().expect
MIB = 2**20


@pytest.fixture
def served(isp: Isp) -> Iterator[Web]:  # noqa: F811
    m = isp.make.master(name="home", rate_down="10M", rate_up="2M", pool_name=POOL[0],
                        pool_ranges=POOL[1], fup_threshold="1G", fup_down="2M",
                        fup_up="1M")  # fmt: skip
    pkg = isp.make.package(m, name="Home 10")
    isp.make.customer(None, "r1", username="alice", password="pw", status="new")
    run_activation(isp.ctx.factory, Principal("admin"), ActivationRequest("alice", pkg, "k-1"))
    with transaction(isp.ctx.factory) as s:
        users.create_user(s, "test", ADMIN[0], role="admin", password=ADMIN[1])
    server = Server(isp.ctx)
    yield Web(isp.ctx, server.base, isp.sim, {}, ("", ""))
    server.stop()


def test_a_live_session_shows_its_usage_and_is_cut_by_the_button(
    browser: Any,
    isp: Isp,  # noqa: F811
    served: Web,
) -> None:
    session = isp.dial()
    session.add_traffic(30 * MIB, 300 * MIB)  # 330 MiB of the 1 GiB at full speed
    assert isp.nas.tick(isp.ctx.settings.acct_interim_interval_seconds) >= 1  # interim update
    isp.nas.settle()
    context = open_context(browser, served)
    page = context.new_page()
    # The customer sees it in the portal's bar.
    page.goto("/portal/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#usage-used")).to_have_text("330.0 MiB")
    expect(page.locator("#usage-threshold")).to_have_text("1.00 GiB")
    bar = page.get_by_role("meter")
    expect(bar).to_have_attribute("value", str(330 * MIB))
    expect(page.get_by_role("img", name="Usage per day this cycle")).to_be_visible()
    # The admin: the same bar on the customer's page, the session online, Disconnect.
    context.clear_cookies()
    login(page, ADMIN)
    page.get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="alice").first.click()
    expect(page.locator("#usage-used")).to_have_text("330.0 MiB")
    page.get_by_role("link", name="Online").click()
    row = page.locator("#sessions tbody tr", has_text="alice")
    expect(row.get_by_role("cell").nth(1)).to_have_text("Home 10")
    expect(row).to_contain_text(re.compile(r"10\.50\.0\.\d+"))
    expect(row).to_contain_text("300.0 MiB")
    row.get_by_role("button", name="Disconnect alice").click()
    expect(page.locator("#flash")).to_contain_text("Disconnect sent to alice's session.")
    outbox.drain(isp.ctx.factory, isp.ctx.settings)
    [seen] = isp.nas.received
    assert (seen.code, seen.answer) == ("Disconnect-Request", "Disconnect-ACK")
    assert session.ended == "Admin-Reset" and isp.nas.sessions == []
    isp.nas.settle()
    page.reload()
    expect(page.locator("#sessions tbody tr", has_text="alice")).to_have_count(0)
    assert served.external == []
    context.close()
