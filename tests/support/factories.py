"""Registry rows for tests, made through the service layer with sensible defaults, so a
test states only what matters to it."""

from __future__ import annotations

from typing import Any

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import registry
from provisioner.context import Context
from provisioner.db import transaction


class Factory:
    """Registry rows through the service layer, with sensible defaults."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.n = 0

    def _s(self) -> Any:
        return transaction(self.ctx.factory)

    def router(self, sim: SimulatedRouter | None = None, **kw: Any) -> str:
        self.n += 1
        data = {
            "name": f"r{self.n}",
            "host": sim.host if sim else f"127.0.0.{self.n + 100}",
            "api_port": sim.port if sim else 1,
            "username": "admin",
            "password": "pw",
            "radius_secret": "s3cret",
            "mode": "local",
            **kw,
        }
        with self._s() as s:
            return registry.create_router(s, "test", data).name

    def master(self, **kw: Any) -> str:
        self.n += 1
        data = {
            "name": f"m{self.n}",
            "customer_type": "pppoe",
            "billing": "monthly",
            "rate_down": "10M",
            "rate_up": "5M",
            "pool_name": f"pool{self.n}",
            "pool_ranges": f"10.{self.n}.0.2-10.{self.n}.0.254",
            **kw,
        }
        with self._s() as s:
            return registry.create_master_package(s, "test", data).name

    def package(self, master: str, **kw: Any) -> str:
        self.n += 1
        data = {
            "name": f"p{self.n}",
            "master_package": master,
            "customer_price": "500",
            "operator_price": "400",
            "visibility": "public",
            **kw,
        }
        with self._s() as s:
            return registry.create_package(s, "test", data)[0].name

    def customer(self, package: str | None, router: str | None, **kw: Any) -> str:
        self.n += 1
        data = {
            "username": f"u{self.n}",
            "password": f"pw{self.n}",
            "customer_type": "pppoe",
            "router": router,
            "package": package,
            "status": "active",
            **kw,
        }
        with self._s() as s:
            return registry.create_customer(s, "test", data).username

    def reseller(self, **kw: Any) -> str:
        self.n += 1
        with self._s() as s:
            return registry.create_reseller(s, "test", {"name": f"res{self.n}", **kw}).name
