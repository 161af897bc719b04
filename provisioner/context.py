"""Settings + engine + session factory, made once per process (CLI command, daemon, test)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from provisioner import config, secrets
from provisioner.config import Settings, get_settings
from provisioner.db import make_engine, make_sessionmaker, migrate, reading, transaction


@dataclass
class Context:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    # Connections of this process's pool that the API's requests may use at once (the
    # rest, a scheduler's, are for its syncs): ``api.deps.connection_slots``.
    api_connections: int = 1

    def close(self) -> None:
        self.engine.dispose()


def worker_pool(settings: Settings, workers: int) -> tuple[int, int]:
    """(pool size, overflow) of each of ``workers`` API worker processes: an equal part
    of ``db_api_connections``, at least 2 each, so an instance's connections do not grow
    with its core count. All of it kept open: its requests take connection slots as many
    as that (``api.deps``), so an overflow was opened and closed again at every burst (257
    new PostgreSQL sessions in 4,000 GETs of ``bench.activations``' baseline), each a
    backend to start and every statement to prepare again."""
    return max(2, settings.db_api_connections // max(1, workers)), 0


def open_context(
    settings: Settings | None = None,
    *,
    upgrade: bool = True,
    api_only: bool = False,
    workers: int = 1,
) -> Context:
    """Ready-to-use context; migrates the database to the newest schema unless told not to.
    ``api_only``: one of ``workers`` ``serve`` worker processes, which run no scheduler:
    its part of the API's connections (``worker_pool``). Any other process: ``db_pool_size``
    + ``db_max_overflow``, and 2 x ``sync_concurrency`` more for syncs (a sync holds two)."""
    settings = settings or get_settings()
    config.use(settings)
    secrets.configure(settings.secret_key, settings.key_file)
    if upgrade:
        migrate(settings.database_url)
    if api_only:
        # One process's API: all of its pool kept open too (``worker_pool``).
        size, overflow = (
            worker_pool(settings, workers)
            if workers > 1
            else (settings.db_pool_size + settings.db_max_overflow, 0)
        )
        extra = 0
    else:
        size, overflow = settings.db_pool_size, settings.db_max_overflow
        extra = 2 * settings.sync_concurrency
    engine = make_engine(
        settings.database_url, pool_size=size + extra, max_overflow=overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )  # fmt: skip
    ctx = Context(settings, engine, make_sessionmaker(engine, settings), size + overflow)
    _expired_group(ctx)
    return ctx


def _expired_group(ctx: Context) -> None:
    """The group cut-off users are sent to must exist before the first of them: a fresh
    database should not start with a pending ``radius diff``. Writes only when missing."""
    from provisioner import radius_store
    from provisioner.state import options

    opts = options(ctx.settings)
    with reading(ctx.factory) as s:
        missing = radius_store.plan(s, opts, groups=[opts.expired_group], scope_all=False)
    if missing.has_changes:
        with transaction(ctx.factory) as s:
            radius_store.sync_groups(s, opts, [opts.expired_group])
