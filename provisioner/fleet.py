"""A fleet-wide sync spread over the machine's cores.

Re-checking a converged router is CPU work in Python (parse its prints, plan), so one
process syncs a fleet no faster than one core allows. On PostgreSQL, ``provisioner sync``
and the scheduler's reconcile hand shares of the fleet to ``processes`` child processes,
each with its own engine and a pool sized for its syncs; each router is still locked
for its sync (across instances), recorded in its sync run, and a failure is that router's
result. Children return lean results and what the metrics count, and the calling process
counts them, so /metrics is the scheduler's whatever process did the work. SQLite (one
writer) stays in process.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass

from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from provisioner import config, instances, metrics, secrets, sync
from provisioner.config import Settings
from provisioner.db import make_engine, make_sessionmaker

log = logging.getLogger(__name__)
# Once here, so the forkserver (which imports this module) hands it to every child done.
configure_mappers()
# (lean result, the menus of its applied changes, its time or None)
Done = tuple[sync.RouterResult, list[str], float | None]


def processes(settings: Settings, dialect: str, cores: int | None = None) -> int:
    """Processes a fleet-wide sync runs in: ``sync_processes`` (unset or 0: one per core),
    never more than ``sync_concurrency`` (each runs at least one sync); 1 on SQLite."""
    if dialect != "postgresql":
        return 1
    n = settings.sync_processes or cores or os.cpu_count() or 1
    return max(1, min(n, settings.sync_concurrency))


def per_process(settings: Settings, procs: int) -> int:
    """Syncs at once in each of ``procs`` processes: ``sync_concurrency`` shared out."""
    return max(1, math.ceil(settings.sync_concurrency / procs))


def connections(settings: Settings, procs: int) -> int:
    """Database connections the fleet's processes open at most: one per sync (its router
    lock's) and one each for the sync's short transactions, taken in turn."""
    return procs * (per_process(settings, procs) + 1) if procs > 1 else 0


def spreads(factory: sessionmaker[Session], settings: Settings, routers: int) -> bool:
    """Whether a fleet of ``routers`` is worth more than one process (two each at least)."""
    procs = processes(settings, factory.kw["bind"].dialect.name)
    return procs > 1 and routers >= 2 * procs


@dataclass
class Usage:
    """What the fleet's processes used, summed over this process's fleet syncs (a bench
    adds it to its own: the processes are not its children once they end)."""

    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0  # the most any one of them held


usage = Usage()
# A child's engine and settings, made once by ``_start``; its CPU time reported so far.
_child: tuple[sessionmaker[Session], Settings, int] | None = None
_reported = 0.0


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _start(settings: Settings, instance: str, per: int) -> None:
    global _child
    config.use(settings)
    secrets.configure(settings.secret_key, settings.key_file)
    instances.use_name(instance)  # its sync runs are the calling instance's
    engine = make_engine(
        settings.database_url, pool_size=per + 1, max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
    )  # fmt: skip
    factory = make_sessionmaker(engine, settings)
    sync.limit_syncs(factory, per)
    _child = (factory, settings, per)
    # A sync process only syncs. What it has imported and set up lives as long as it does:
    # frozen, the collector never walks it again. A sync's own garbage (a router's
    # thousands of rows, props and plans) is freed by reference counting, not the
    # collector, so the young generation is collected less often than every 700 objects.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _share(
    ids: list[int], adopt: bool, bootstrap: bool, trigger: str
) -> tuple[list[Done], float, float]:
    """The share's results, and the CPU seconds used since the last share and the peak
    resident memory of this process."""
    global _reported
    assert _child is not None, "a fleet process runs _start first"
    factory, settings, per = _child

    def one(rid: int) -> Done:
        r, seconds = sync.guarded_sync(
            factory, settings, rid, adopt=adopt, bootstrap=bootstrap, trigger=trigger
        )
        return r.lean(), sync.changed_menus(r), seconds

    with ThreadPoolExecutor(max_workers=max(1, min(per, len(ids)))) as pool:
        results = list(pool.map(one, ids))
    cpu, _reported = time.process_time() - _reported, time.process_time()
    return results, cpu, _peak_rss_mb()


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: children are forked from a clean server process (never from this one,
    # whose threads may hold locks), and after the first fleet start in milliseconds.
    ctx = multiprocessing.get_context("forkserver")
    # The PostgreSQL driver too (create_engine imports it only on first use): else every
    # child of every pass imports it again (~80 modules). A driver not installed is
    # skipped by the forkserver.
    ctx.set_forkserver_preload(["provisioner.fleet", "psycopg"])
    return ctx


def sync_spread(
    factory: sessionmaker[Session],
    settings: Settings,
    ids: list[int],
    *,
    adopt: bool = False,
    bootstrap: bool = False,
    trigger: str = "manual",
    on_done: Callable[[sync.RouterResult], None] | None = None,
) -> list[sync.RouterResult]:
    """Apply the registry to ``ids`` from ``processes`` child processes; lean results in
    input order, each counted in this process's metrics. A child that dies fails the
    routers not synced yet (the pool is broken), never the run: each is a failed result."""
    procs = processes(settings, factory.kw["bind"].dialect.name)
    per = per_process(settings, procs)
    # Shares of a few waves each: the processes take the next as they finish one, so a
    # slow router delays its share, not the fleet.
    size = max(per, math.ceil(len(ids) / (procs * 4)))
    shares = [ids[i : i + size] for i in range(0, len(ids), size)]
    found: dict[int, sync.RouterResult] = {}

    def count(rid: int, r: sync.RouterResult, menus: list[str], seconds: float | None) -> None:
        metrics.record_sync(r.router, r.status, trigger, menus, seconds)
        found[rid] = r
        if on_done:
            on_done(r)

    with ProcessPoolExecutor(
        max_workers=min(procs, len(shares)), mp_context=_context(), initializer=_start,
        initargs=(settings, instances.name(), per),
    ) as pool:  # fmt: skip
        running: dict[Future[tuple[list[Done], float, float]], list[int]] = {
            pool.submit(_share, share, adopt, bootstrap, trigger): share for share in shares
        }
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                share = running.pop(fut)
                try:
                    outcome, cpu, rss = fut.result()
                except Exception as exc:  # noqa: BLE001 - a dead process fails its share only
                    log.error("fleet sync process failed on routers %s: %s", share, exc)
                    for rid in share:
                        count(rid, sync.failed(rid, f"sync process failed: {exc}"), [], None)
                    continue
                usage.cpu_s += cpu
                usage.peak_rss_mb = max(usage.peak_rss_mb, rss)
                for rid, (r, menus, seconds) in zip(share, outcome, strict=True):
                    count(rid, r, menus, seconds)
    return [found[i] for i in ids]


__all__ = ["Usage", "usage", "connections", "per_process", "processes", "spreads", "sync_spread"]
