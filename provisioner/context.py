"""Settings + engine + session factory, made once per process (CLI command, daemon, test)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from provisioner import config, secrets
from provisioner.config import Settings, get_settings
from provisioner.db import make_engine, make_sessionmaker, migrate


@dataclass
class Context:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]

    def close(self) -> None:
        self.engine.dispose()


def open_context(settings: Settings | None = None, *, upgrade: bool = True) -> Context:
    """Ready-to-use context; migrates the database to the newest schema unless told not to."""
    settings = settings or get_settings()
    config.use(settings)
    secrets.configure(settings.secret_key, settings.key_file)
    if upgrade:
        migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    return Context(settings, engine, make_sessionmaker(engine, settings))
