"""An API process with a small pool under many concurrent clients: requests wait their
turn for a connection in the event loop (``api.deps``), never in a thread while the
connections are held by requests that wait for a thread (that wait ended only when the
pool gave up: 30 s, then a 500)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from provisioner import config
from provisioner.api import create_app
from provisioner.config import Settings
from provisioner.context import open_context, worker_pool
from provisioner.daemon import connection_budget
from tests.conftest import drop_pg_database, pg_database
from tests.test_api import API, seed

CLIENTS = 24
REQUESTS = 6


def test_many_clients_on_a_small_pool_are_answered_without_waiting_for_the_pool(
    tmp_path: Path,
) -> None:
    name, url = pg_database()
    settings = Settings(
        database_url=url, key_file=tmp_path / "key", db_pool_size=1, db_max_overflow=1,
        db_pool_timeout_seconds=5, api_threads=2, token_cache_seconds=0,
    )  # fmt: skip
    ctx = open_context(settings, api_only=True)
    try:
        tokens = seed(ctx)
        statuses: list[int] = []
        with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
            headers = {"Authorization": f"Bearer {tokens['admin']}"}

            def client_loop() -> None:
                for _ in range(REQUESTS):
                    for path in ("/customers", "/packages/public-basic"):
                        r = client.get(API + path, headers=headers)
                        statuses.append(r.status_code)

            threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(CLIENTS)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 120  # a stall fails here rather than hangs
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
        assert len(statuses) == CLIENTS * REQUESTS * 2
        assert set(statuses) == {200}, sorted(set(statuses))
        # Never more connections than the pool holds: nobody waited past it.
        assert ctx.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        ctx.close()
        config.use(None)
        drop_pg_database(name)


def test_an_instances_connections_do_not_grow_with_its_cores() -> None:
    """The default budget of one instance, by its API worker count and its cores: at most
    40 up to 8 workers (two instances fit PostgreSQL's default max_connections of 100 with room),
    the workers sharing db_api_connections; each worker's pool is never below 2."""
    s = Settings()
    # The scheduler's process, and its fleet syncs' processes (one per core, at most
    # sync_concurrency 4, each one connection per sync and one more).
    assert connection_budget(s, 1, cores=1) == 4 + 4 + 2 * 4
    assert connection_budget(s, 1, cores=2) == 4 + 4 + 2 * 4 + 2 * (2 + 1)
    assert connection_budget(s, 1, cores=64) == 4 + 4 + 2 * 4 + 4 * (1 + 1)
    for cores in (1, 2, 4, 8, 64):
        for workers in range(2, 9):
            size, overflow = worker_pool(s, workers)
            assert size >= 2 and overflow == 0  # kept open: no connection made per burst
            assert connection_budget(s, workers, cores) <= 40, (workers, cores)
    assert sum(worker_pool(s, 2)) == 8
    assert worker_pool(s, 64) == (2, 0)
