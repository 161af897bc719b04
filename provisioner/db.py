"""The one place that makes engines and sessions. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
READ_ONLY = "provisioner_read_only"  # execution option: begin without the write lock


def make_engine(url: str, **kw: Any) -> Engine:
    """An engine with the pragmas the daemon relies on.

    SQLite: WAL so FreeRADIUS can read while we write, a busy timeout instead of instant
    "database is locked", foreign keys on.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kw.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN be the transaction start, but take the write lock at
            # BEGIN (IMMEDIATE) so read-then-write transactions serialise instead of
            # failing with "database is locked" on upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A read-only transaction is a WAL reader: it runs beside the writer instead of
            # queueing for the write lock (16 routers loading at once would otherwise
            # serialise, and the last ones time out as "database is locked").
            read_only = conn.get_execution_options().get(READ_ONLY)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kw.setdefault("pool_pre_ping", True)
    if "poolclass" not in kw:
        kw.setdefault("pool_size", 20)  # the settings' db_pool_size and db_max_overflow
        kw.setdefault("max_overflow", 20)
        # The connection used last is handed out next: a few connections stay busy, their
        # prepared statements (psycopg prepares a query on its fifth use per connection)
        # warm, instead of every request landing on the pool's coldest connection.
        kw.setdefault("pool_use_lifo", True)
    return create_engine(url, **kw)


def make_sessionmaker(engine: Engine, settings: Any = None) -> sessionmaker[Session]:
    """Sessions that carry the context's settings (``session.info["settings"]``): what a
    change sets off (``effects``) reads them from the session it is given, not a global."""
    return sessionmaker(engine, expire_on_commit=False, info={"settings": settings})


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session, one transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session, one read-only transaction, always rolled back. On SQLite it takes no
    write lock; writing in it is a bug (it would fail as "database is locked" or be lost)."""
    with factory() as session:
        if session.get_bind().dialect.name == "sqlite":  # only SQLite's BEGIN needs telling
            session.connection(execution_options={READ_ONLY: True})
        yield session  # closing the session rolls the transaction back


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database (registry and stock RADIUS tables) to the newest schema."""
    command.upgrade(alembic_config(url), "heads")  # every branch, when features land side by side


def revision(url: str) -> str | None:
    """The schema revision the database is at (None: an empty database)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and not Path(u.database).exists():
        return None  # not made yet (nor its folder): nothing to read, nothing to create
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    return ", ".join(sorted(heads)) or None
