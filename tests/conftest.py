"""Shared fixtures: a fresh registry database (SQLite, or PostgreSQL on 127.0.0.1:5432),
the RouterOS API simulator over real TCP, and factories for registry rows."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import config, registry
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import migrate, transaction
from tests.support.require import require

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
_template: str | None = None


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(**PG, dbname="postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        return None


def _pg_template() -> str:
    """A migrated template database, made once per test run; copies are cheap."""
    global _template
    if _template is None:
        admin = _pg_admin()
        require(admin is not None, "PostgreSQL is not reachable on 127.0.0.1:5432")
        name = f"prov_tpl_{os.getpid()}"
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        migrate(PG_URL.format(db=name))
        _template = name
    return _template


def pg_database() -> tuple[str, str]:
    """A fresh migrated PostgreSQL database: (name, url)."""
    tpl = _pg_template()
    admin = _pg_admin()
    require(admin is not None, "PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"prov_t_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
    admin.close()
    return name, PG_URL.format(db=name)


def drop_pg_database(name: str) -> None:
    admin = _pg_admin()
    if admin is not None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _template is not None:
        drop_pg_database(_template)


def make_settings(tmp_path: Path, url: str, **kw: Any) -> Settings:
    defaults: dict[str, Any] = {
        "database_url": url,
        "key_file": tmp_path / "secret.key",
        "sync_debounce_seconds": 0.0,
        "router_timeout_seconds": 3.0,
    }
    return Settings(**{**defaults, **kw})


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ctx_factory(tmp_path: Path) -> Iterator[Any]:
    """Make contexts on a backend; everything made is closed and dropped afterwards."""
    made: list[tuple[Context, str | None]] = []

    def make(backend: str = "sqlite", **kw: Any) -> Context:
        if backend == "postgresql":
            name, url = pg_database()
            c = open_context(make_settings(tmp_path, url, **kw), upgrade=False)
            made.append((c, name))
        else:
            url = f"sqlite:///{tmp_path}/registry-{len(made)}.sqlite3"
            c = open_context(make_settings(tmp_path, url, **kw))
            made.append((c, None))
        return c

    yield make
    for c, name in made:
        c.close()
        if name:
            drop_pg_database(name)
    config.use(None)


@pytest.fixture
def ctx(ctx_factory: Any) -> Context:
    """A fresh SQLite registry."""
    return ctx_factory("sqlite")


@pytest.fixture
def any_ctx(ctx_factory: Any, backend: str) -> Context:
    """A fresh registry on each backend (the test runs twice)."""
    return ctx_factory(backend)


@pytest.fixture
def sim() -> Iterator[SimulatedRouter]:
    with SimulatedRouter(username="admin", password="pw") as router:
        yield router


# ---- factories -------------------------------------------------------------------------


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


@pytest.fixture
def make(ctx: Context) -> Factory:
    return Factory(ctx)
