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

    def close(self) -> None:
        self.engine.dispose()


def open_context(
    settings: Settings | None = None, *, upgrade: bool = True, api_only: bool = False
) -> Context:
    """Ready-to-use context; migrates the database to the newest schema unless told not to.
    ``api_only``: a ``serve`` worker process, which runs no scheduler: a smaller pool."""
    settings = settings or get_settings()
    config.use(settings)
    secrets.configure(settings.secret_key, settings.key_file)
    if upgrade:
        migrate(settings.database_url)
    extra = 0 if api_only else 2 * settings.sync_concurrency  # a sync holds two (``sync``)
    engine = make_engine(
        settings.database_url, pool_size=settings.db_pool_size + extra,
        max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout_seconds,
    )  # fmt: skip
    ctx = Context(settings, engine, make_sessionmaker(engine, settings))
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
