"""Webhooks in the admin's panel, in a browser: a refused URL shown beside its field, a
new endpoint's secret shown once, a test delivered to a real receiver (signature verified)
with its tries listed, a redelivery; a reseller is kept out."""

from __future__ import annotations

import os
from typing import Any

from provisioner import webhooks
from tests.support.receiver import Receiver
from tests.web.conftest import ADMIN, DESK_A, Web, login, need_playwright

expect = need_playwright().expect
SHOTS = os.environ.get("PROVISIONER_SCREENSHOTS", "/tmp")  # for a person to look at


def test_admin_manages_a_webhook_and_sees_its_deliveries(page: Any, web: Web) -> None:
    rx = Receiver(fail_first=1)
    try:
        login(page, ADMIN)
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        page.get_by_label("URL").fill("ftp://nowhere")
        page.get_by_label("Events").fill("*")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#e-url")).to_contain_text("http")
        expect(page.get_by_label("Events")).to_have_value("*")  # what was typed is kept
        page.get_by_label("URL").fill(rx.url)
        page.get_by_label("Events").fill("webhook.test activation.applied")
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#secret code").inner_text().strip()
        assert secret.startswith("whsec_")
        rx.secret = secret
        page.get_by_role("link", name=rx.url).click()
        assert secret not in page.content(), "shown once"
        page.get_by_role("button", name="Send a test").click()
        expect(page.locator("#flash")).to_contain_text("webhook.test")
        webhooks.drain(web.ctx.factory, web.ctx.settings)  # the daemon's work, here
        page.reload()
        row = page.locator("#deliveries tbody tr").first
        expect(row).to_contain_text("pending")
        expect(row).to_contain_text("500 in")
        row.get_by_role("button", name="Redeliver").click()
        webhooks.drain(web.ctx.factory, web.ctx.settings)
        page.reload()
        expect(page.locator("#deliveries tbody tr").first).to_contain_text("delivered")
        page.screenshot(path=f"{SHOTS}/provisioner-admin-webhook.png", full_page=True)
        assert [r.answered for r in rx.got] == [500, 204] and rx.got[1].verified
        page.get_by_role("button", name="Disable").click()
        expect(page.locator("#endpoint-status")).to_have_text("disabled")
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_role("link", name="Latest events and reminders").click()
        expect(page.locator("#events")).to_contain_text("webhook.test")
        assert web.external == []
    finally:
        rx.close()


def test_a_reseller_is_kept_out_of_the_admins_webhooks(page: Any, web: Web) -> None:
    login(page, DESK_A)
    r = page.goto("/ui/webhooks")
    assert r is not None and (r.status == 403 or "/ui/webhooks" not in page.url)
