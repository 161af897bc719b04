"""The one place that makes engines and sessions. Callers own the transaction."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
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
    if "poolclass" not in kw:
        kw.setdefault("pool_size", 20)  # the settings' db_pool_size and db_max_overflow
        kw.setdefault("max_overflow", 20)
        # The connection used last is handed out next: a few connections stay busy, their
        # prepared statements (psycopg prepares a query on its fifth use per connection)
        # warm, instead of every request landing on the pool's coldest connection.
        kw.setdefault("pool_use_lifo", True)
    engine = create_engine(url, **kw)
    if not kw.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before it is handed out only when it sat idle for more
    than ``IDLE_PING_SECONDS``: one that a request gave back a moment ago is alive, and
    SQLAlchemy's ``pool_pre_ping`` cost every transaction a round trip and a statement.
    A connection that dies in use (the server restarted under load) fails its request,
    and SQLAlchemy then renews every connection the pool had handed out before."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure: the pool takes a new one
            raise DisconnectionError(f"connection lost while idle: {exc}") from exc


_IDLE_SINCE = "provisioner_idle_since"


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
    """One session, one read-only transaction. On SQLite it takes no write lock and is
    rolled back; writing in it is a bug (it fails as "database is locked").

    PostgreSQL: the transaction is declared read-only (``BEGIN READ ONLY``, no extra
    statement: a write in it fails) and ends with a COMMIT, which keeps nothing. A
    ROLLBACK would make psycopg forget every statement it had prepared on the connection
    and deallocate them all in a further round trip: the next transaction on it, an
    activation's say, would plan each of its statements afresh."""
    engine = factory.kw.get("bind")
    if engine is None or engine.dialect.name == "sqlite":  # only SQLite's BEGIN needs telling
        with factory() as session:
            session.connection(execution_options={READ_ONLY: True})
            yield session  # closing the session rolls the transaction back
        return
    # Its connection is taken at its first statement, as any session's: a request that
    # holds it does not yet hold one while it checks its token (``api.deps``).
    with factory(bind=_read_only(engine)) as session:
        yield session
        session.commit()


_read_only_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _read_only(engine: Engine) -> Engine:
    """``engine`` whose connections begin ``READ ONLY`` (its pool, shared)."""
    found = _read_only_engines.get(engine)
    if found is None:
        found = _read_only_engines[engine] = engine.execution_options(postgresql_readonly=True)
    return found


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
