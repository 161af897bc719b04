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
from provisioner import config
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import migrate
from tests.support.factories import Factory
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
        # Tests move tokens' clocks and owners in the database directly; the cache is
        # tested on its own (tests/test_tokens.py).
        "token_cache_seconds": 0.0,
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


@pytest.fixture
def make(ctx: Context) -> Factory:
    return Factory(ctx)
