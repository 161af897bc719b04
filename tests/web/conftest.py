"""The web panels in a real browser: Debian's chromium, headless, driven by Playwright,
against the real app (``create_app``) served by uvicorn on a free loopback port, on a
registry seeded through the service layer, with the RouterOS API simulator as its router.

Every page context refuses requests that leave loopback and records them, so a test can
assert that a page loaded nothing from the internet.

Chromium comes from ``scripts/install-chromium.sh`` (Debian's package); Playwright's own
browser download is not used. Without chromium or Playwright these tests skip, and with
``PROVISIONER_REQUIRE_REAL=1`` they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import cards, ledger, outbox, registry, users
from provisioner.api import create_app
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import Customer, Package, utcnow
from tests.support.require import real_required, require

CHROMIUM = os.environ.get("PROVISIONER_CHROMIUM", "/usr/bin/chromium")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

ADMIN = ("root", "root-pass-123")
DESK_A = ("desk-a", "desk-a-pass-1")
DESK_B = ("desk-b", "desk-b-pass-1")
WALKIN = ("walkin", "walkin-pw")  # a customer's PPPoE login


def need_playwright() -> Any:
    """``playwright.sync_api``; without it the calling test module skips (and under
    ``PROVISIONER_REQUIRE_REAL=1`` the import error fails the run)."""
    try:
        import playwright.sync_api as api
    except ImportError:
        if real_required():
            raise
        pytest.skip(
            "playwright is not installed (pip install -e '.[test]')", allow_module_level=True
        )
    return api


def chromium() -> str:
    """The browser binary: fail (under PROVISIONER_REQUIRE_REAL=1) or skip without it."""
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    require(path is not None, f"{CHROMIUM} is missing (scripts/install-chromium.sh installs it)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium()
    with need_playwright().sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True)
        yield b
        b.close()


class Server:
    """uvicorn serving the app on a free loopback port, in a thread."""

    def __init__(self, ctx: Context) -> None:
        config = uvicorn.Config(
            create_app(ctx), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        sock = config.bind_socket()
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Web:
    ctx: Context
    base: str
    sim: SimulatedRouter
    ids: dict[str, int]
    card: tuple[str, str]
    external: list[str] = field(default_factory=list)

    def drain(self) -> None:
        """Run the outbox worker once (the daemon's scheduler is not running here)."""
        outbox.drain(self.ctx.factory, self.ctx.settings)


def seed(ctx: Context, sim: SimulatedRouter) -> tuple[dict[str, int], tuple[str, str]]:
    """A local-mode router (the simulator); two master packages; a public, a private and
    two reseller packages; resellers resA (balance 1000, pkg-a at 350) and resB with a
    customer each; a walk-in customer with balance 600; web logins; one 500 card."""
    expires = utcnow() + timedelta(days=30)
    with transaction(ctx.factory) as s:
        registry.create_router(
            s, "seed",
            {"name": "sim-1", "host": sim.host, "api_port": sim.port, "username": "admin",
             "password": "pw", "radius_secret": "s3cret", "mode": "local",
             "customer_types": "pppoe,hotspot"},
        )  # fmt: skip
        registry.create_master_package(
            s, "seed",
            {"name": "m-home", "customer_type": "pppoe", "rate_down": "10M", "rate_up": "5M",
             "pool_name": "pool-home", "pool_ranges": "10.50.0.2-10.50.0.254"},
        )  # fmt: skip
        registry.create_master_package(
            s, "seed",
            {"name": "hs-day", "customer_type": "hotspot", "billing": "daily",
             "duration_days": 1, "rate_down": "5M", "rate_up": "2M", "volume_cap": "5G",
             "pool_name": "pool-hs", "pool_ranges": "10.60.0.0/24"},
        )  # fmt: skip
        for name, vis, cp, op in (
            ("Home 10", "public", "500", "400"),
            ("Biz", "private", "900", "700"),
            ("pkg-a", "private", "600", "450"),
            ("pkg-b", "private", "650", "500"),
        ):
            registry.create_package(
                s, "seed",
                {"name": name, "master_package": "m-home", "customer_price": cp,
                 "operator_price": op, "visibility": vis},
            )  # fmt: skip
        for reseller, package, price in (("resA", "pkg-a", "350"), ("resB", "pkg-b", None)):
            registry.create_reseller(s, "seed", {"name": reseller})
            registry.assign_package(s, "seed", reseller, package, price)
        for username, reseller, package in (
            ("cust-a", "resA", "pkg-a"),
            ("cust-b", "resB", "pkg-b"),
            ("walkin", None, None),
        ):
            registry.create_customer(
                s, "seed",
                {"username": username, "password": f"{username}-pw", "customer_type": "pppoe",
                 "router": "sim-1", "package": package, "reseller": reseller,
                 "status": "active" if package else "new",
                 "expires_at": expires if package else None},
            )  # fmt: skip
        ledger.topup(s, "seed", "reseller:resA", "1000")
        ledger.topup(s, "seed", "customer:walkin", "600")
        users.create_user(s, "seed", ADMIN[0], role="admin", password=ADMIN[1])
        users.create_user(
            s, "seed", DESK_A[0], role="reseller", password=DESK_A[1], reseller="resA"
        )
        users.create_user(
            s, "seed", DESK_B[0], role="reseller", password=DESK_B[1], reseller="resB"
        )
        ((serial, pin),) = cards.generate(s, 1, "500", 30, "test")
        ids = {c.username: c.id for c in s.query(Customer)}
        ids.update({f"package:{p.name}": p.id for p in s.query(Package)})
    return ids, (serial, pin)


@pytest.fixture
def make_web(ctx_factory: Callable[..., Context]) -> Iterator[Callable[[str], Web]]:
    """Start the seeded app on a backend ("sqlite" or "postgresql"); stopped afterwards."""
    made: list[tuple[Server, SimulatedRouter]] = []

    def make(backend: str = "sqlite") -> Web:
        ctx = ctx_factory(backend)
        sim = SimulatedRouter(username="admin", password="pw").start()
        ids, card = seed(ctx, sim)
        server = Server(ctx)
        made.append((server, sim))
        return Web(ctx, server.base, sim, ids, card)

    yield make
    for server, sim in made:
        server.stop()
        sim.stop()


@pytest.fixture
def web(make_web: Callable[[str], Web]) -> Web:
    return make_web("sqlite")


def open_context(browser: Any, web: Web, **kw: Any) -> Any:
    """A browser context on the app that lets nothing leave loopback (and records it)."""
    context = browser.new_context(base_url=web.base, **kw)
    context.set_default_timeout(15_000)

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            web.external.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    context.on("dialog", lambda d: d.accept())  # hx-confirm
    return context


@pytest.fixture
def page(browser: Any, web: Web) -> Iterator[Any]:
    context = open_context(browser, web)
    p = context.new_page()
    p.on("dialog", lambda d: d.accept())
    yield p
    context.close()


def login(page: Any, who: tuple[str, str], area: str = "/ui") -> None:
    page.goto(f"{area}/login")
    page.fill("#f-username", who[0])
    page.fill("#f-password", who[1])
    page.click("button[type=submit]:has-text('Log in')")
    page.wait_for_url(re.compile(rf".*{area}/.+" if area == "/ui" else rf".*{area}/$"))
