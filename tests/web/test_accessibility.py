"""Accessibility: every page of the admin's panel, the reseller's desk and the customer's
portal, checked in the browser by axe-core (vendored in ``provisioner/web/static/axe``,
see its VERSION file), with no serious or critical violation allowed.

axe runs all of its default rules (WCAG 2.0-2.2 A and AA and best practices) on each page
as the browser rendered it, colour contrast included. New pages belong in the lists below.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import provisioner.web
from provisioner import activation, registry, sync, webhooks
from provisioner.activation import ActivationRequest
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.models import (
    Invoice,
    MasterPackage,
    Reseller,
    Router,
    WebhookEndpoint,
    WebUser,
    utcnow,
)
from tests.web.conftest import ADMIN, DESK_A, WALKIN, Web, login, need_playwright, open_context

need_playwright()
AXE = Path(provisioner.web.__file__).parent / "static" / "axe" / "axe.min.js"
BAD = ("serious", "critical")
if os.environ.get("AXE_ALL"):  # AXE_ALL=1: see the minor and moderate ones too (none today)
    BAD = ("minor", "moderate", "serious", "critical")


def violations(page: Any) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"rule": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found
        if v["impact"] in BAD
    ]  # fmt: skip


def check(page: Any, paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    bad: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status < 500, (path, response)
        found = violations(page)
        if found:
            bad[path] = found
    return bad


def admin_pages(ids: Callable[[str], int]) -> list[str]:
    return [
        "/ui/packages", "/ui/packages?q=zzz", "/ui/packages/new",
        f"/ui/packages/{ids('package:Home 10')}/edit",
        "/ui/masters", "/ui/masters/new", f"/ui/masters/{ids('master:m-home')}/edit",
        "/ui/resellers", "/ui/resellers/new", f"/ui/resellers/{ids('reseller:resA')}",
        "/ui/customers", "/ui/customers/new", f"/ui/customers/{ids('cust-a')}",
        "/ui/routers", "/ui/routers/new", f"/ui/routers/{ids('router:sim-1')}",
        f"/ui/routers/{ids('router:sim-1')}/edit", f"/ui/routers/{ids('router:sim-1')}/plan",
        "/ui/activations", "/ui/cards", "/ui/audit", "/ui/audit?since=nonsense",
        "/ui/logins", "/ui/logins/new", f"/ui/logins/{ids('login:desk-a')}",
        "/ui/dashboard", "/ui/sessions", "/ui/invoices", f"/ui/invoices/{ids('invoice:1')}",
        "/ui/webhooks", f"/ui/webhooks/{ids('webhook:1')}", "/ui/events",
        "/ui/customers/999999", "/ui/no-such-page",
    ]  # fmt: skip


def desk_pages(ids: Callable[[str], int], act: int) -> list[str]:
    return [
        "/ui/desk", "/ui/desk?q=zzz", "/ui/desk/customers/new",
        f"/ui/desk/customers/{ids('cust-a')}", f"/ui/desk/customers/{ids('cust-a')}/activate",
        "/ui/desk/ledger", f"/ui/desk/activations/{act}",
        "/ui/desk/dashboard", "/ui/desk/sessions", "/ui/desk/invoices",
        f"/ui/desk/customers/{ids('cust-b')}",  # another reseller's: the friendly 404
    ]  # fmt: skip


def portal_pages(ids: Callable[[str], int], act: int) -> list[str]:
    return [
        "/portal/", "/portal/packages", f"/portal/packages/{ids('package:Home 10')}",
        "/portal/password", f"/portal/activations/{act}", "/portal/invoices",
    ]  # fmt: skip


def _ids(web: Web) -> Callable[[str], int]:
    with transaction(web.ctx.factory) as s:
        extra = {f"router:{r.name}": r.id for r in s.query(Router)}
        extra |= {f"reseller:{r.name}": r.id for r in s.query(Reseller)}
        extra |= {f"login:{u.username}": u.id for u in s.query(WebUser)}
        extra |= {f"master:{m.name}": m.id for m in s.query(MasterPackage)}
        extra |= {f"invoice:{i.id}": i.id for i in s.query(Invoice)}
        extra |= {f"webhook:{e.id}": e.id for e in s.query(WebhookEndpoint)}
    found = {**web.ids, **extra}
    return found.__getitem__


def _activate(web: Web, who: Principal, customer: str, package: str, key: str) -> int:
    req = ActivationRequest(customer=customer, package=package, idempotency_key=key)
    act_id, _ = activation.run_activation(web.ctx.factory, who, req)
    return act_id


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_page_has_no_serious_or_critical_violation(
    browser: Any, make_web: Any, backend: str
) -> None:
    web: Web = make_web(backend)
    ids = _ids(web)
    # A synced router that has drifted: its dry run shows "~" lines (yellow), not only "+".
    sync.sync_many(web.ctx.factory, web.ctx.settings, sync.router_ids(web.ctx.factory, ["sim-1"]))
    with transaction(web.ctx.factory) as s:
        registry.update_master_package(s, "seed", "m-home", {"rate_down": "12M"})
    with transaction(web.ctx.factory) as s:
        res_a = s.query(Reseller).filter_by(name="resA").one().id
    desk_act = _activate(web, Principal("reseller", reseller_id=res_a), "cust-a", "pkg-a", "a11y-1")
    walkin = Principal("customer", customer_id=ids("walkin"))
    portal_act = _activate(web, walkin, "walkin", "Home 10", "a11y-2")
    with transaction(web.ctx.factory) as s:
        webhooks.create(s, Principal("admin", name="seed"), "http://127.0.0.1:9/hook", ["*"])
        s.add(Invoice(customer_id=ids("walkin"), package_id=ids("package:Home 10"),
                      amount=Decimal("500"), period_start=utcnow(), period_end=utcnow(),
                      due_at=utcnow(), status="open", created_at=utcnow()))  # fmt: skip
    ids = _ids(web)  # and the invoice's and the endpoint's
    bad: dict[str, Any] = {}
    for who, area, paths in (
        (ADMIN, "/ui", admin_pages(ids)),
        (DESK_A, "/ui", desk_pages(ids, desk_act)),
        (WALKIN, "/portal", portal_pages(ids, portal_act)),
    ):
        context = open_context(browser, web, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        bad |= check(page, [f"{area}/login"])
        login(page, who, area=area)
        bad |= check(page, paths)
        context.close()
    assert bad == {}, bad


def test_the_check_finds_a_violation(page: Any) -> None:
    """The check can fail: an image without a text alternative is critical to axe."""
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main><img src="data:,"></main></body></html>'
    )
    assert [v["rule"] for v in violations(page)] == ["image-alt"]
