"""The one place that makes sessions: SQLite readers do not queue behind the writer."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.models import Reseller
from tests.support.factories import Factory


def test_a_sqlite_reader_runs_while_a_writer_holds_the_lock(ctx: Context, make: Factory) -> None:
    make.reseller(name="before")
    writing = threading.Event()
    done_reading = threading.Event()
    seen: list[int] = []

    def writer() -> None:
        with transaction(ctx.factory) as s:
            s.add(Reseller(name="uncommitted"))
            s.flush()
            writing.set()
            # Hold the write lock until the reader is through (bounded: never hangs).
            done_reading.wait(timeout=20)

    t = threading.Thread(target=writer)
    t.start()
    assert writing.wait(timeout=20)
    with reading(ctx.factory) as s:
        seen.append(int(s.scalar(select(func.count()).select_from(Reseller)) or 0))
    done_reading.set()
    t.join(timeout=20)
    assert seen == [1]  # it read the committed state, not the writer's row, and did not wait


def test_a_read_only_transaction_is_always_rolled_back(ctx: Context) -> None:
    with reading(ctx.factory) as s:
        s.add(Reseller(name="lost"))
        s.flush()
    with reading(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Reseller)) == 0
