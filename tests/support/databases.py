"""A new, empty database for a test that upgrades an old schema: SQLite in the test's
directory, or PostgreSQL (required: a failure, not a skip, under PROVISIONER_REQUIRE_REAL)
made for the test and dropped after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import PG_URL, _pg_admin, drop_pg_database
from tests.support.require import require


@contextmanager
def empty_database(backend: str, tmp_path: Path, tag: str) -> Iterator[str]:
    """Its URL; ``tag`` names the PostgreSQL database (``prov_<tag>_…``)."""
    if backend != "postgresql":
        yield f"sqlite:///{tmp_path}/old.sqlite3"
        return
    admin = _pg_admin()
    require(admin is not None, "PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"prov_{tag}_{tmp_path.name[-12:]}".replace("-", "_")
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    try:
        yield PG_URL.format(db=name)
    finally:
        drop_pg_database(name)
