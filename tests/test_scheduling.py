"""Scheduling: debounced on-change syncs, jobs once across instances, one syncer per router."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import outbox, registry, scheduler, sync
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.models import Outbox
from tests.support.factories import Factory


def pending_syncs(ctx: Context) -> int:
    with transaction(ctx.factory) as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.kind == "sync_router", Outbox.status == "pending")
            )
            or 0
        )


def test_ten_edits_make_one_sync_of_exactly_the_affected_routers(ctx_factory: Any) -> None:
    ctx = ctx_factory("sqlite", sync_debounce_seconds=0.0)
    with SimulatedRouter(username="admin", password="pw", host="127.0.0.1") as a, \
         SimulatedRouter(username="admin", password="pw", host="127.0.0.2") as b:  # fmt: skip
        make = Factory(ctx)
        make.router(a, customer_types="pppoe")
        make.router(b, customer_types="hotspot")
        make.master(name="home")
        outbox.drain(ctx.factory, ctx.settings)
        a.reset_stats()
        b.reset_stats()
        for i in range(10):
            with transaction(ctx.factory) as s:
                registry.update_master_package(s, "t", "home", {"rate_down": f"{10 + i}M"})
        assert pending_syncs(ctx) == 1  # router a only: b serves no pppoe
        assert outbox.drain(ctx.factory, ctx.settings) == {"done": 1, "retry": 0, "failed": 0}
        assert a.stats.connections == 1 and a.stats.writes == 1 and b.stats.connections == 0
        assert [p["rate-limit"] for p in a.items("/ppp/profile") if p["name"] == "home"] == [
            "5M/19M"
        ]


def test_periodic_job_runs_once_across_instances(ctx_factory: Any) -> None:
    ctx = ctx_factory("postgresql")
    other = open_context(ctx.settings, upgrade=False)  # a second daemon on the same database
    try:
        ran: list[str] = []
        results = [
            scheduler.run_once(c, "reconcile", 3600, lambda n=name: ran.append(n))
            for c, name in ((ctx, "first"), (other, "second"), (ctx, "first-again"))
        ]
        assert results == [True, False, False] and ran == ["first"]
    finally:
        other.close()


def test_a_router_is_never_synced_by_two_instances_at_once(ctx_factory: Any) -> None:
    ctx = ctx_factory("postgresql")
    other = open_context(ctx.settings, upgrade=False)
    try:
        with SimulatedRouter(username="admin", password="pw") as sim:
            make = Factory(ctx)
            make.router(sim)
            make.master(name="home")
            rid = sync.router_ids(ctx.factory)[0]
            # The first instance holds the router's lock (as during a slow sync)...
            held, local = sync._lock(ctx.factory, rid)
            assert held is not None and local is not None
            try:
                # ...so the second instance, another process in real life, is told "busy".
                sync._local_locks.pop(rid, None)  # what a separate process would see
                result = sync.sync_router(other.factory, other.settings, rid)
                assert result.status == "busy" and sim.stats.writes == 0
            finally:
                held.rollback()
                held.close()
                local.release()
            sync._local_locks.pop(rid, None)
            assert sync.sync_router(other.factory, other.settings, rid).status == "ok"
            assert sim.stats.writes == 2
    finally:
        other.close()


def test_concurrent_syncs_in_one_process_do_not_double_apply(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    make.router(sim)
    pkg = make.package(make.master(name="home"))
    for i in range(20):
        make.customer(pkg, "r1", username=f"u{i}")
    sim.latency = 0.002
    rid = sync.router_ids(ctx.factory)[0]
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(sync.sync_router(ctx.factory, ctx.settings, rid).status)
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("ok") >= 1 and set(results) <= {"ok", "busy"}
    assert len(sim.items("/ppp/secret")) == 20
    assert sync.sync_router(ctx.factory, ctx.settings, rid, dry_run=True).plan.changes == ()


def test_an_idle_scheduler_is_quiet(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    """An idle ``serve`` used to log two APScheduler INFO lines every outbox tick (about
    86,000 a day); its warnings and errors still come through."""
    import logging
    import time

    scheduler.quiet_logs()
    ctx.settings.outbox_interval_seconds = 0.1
    with caplog.at_level(logging.INFO):
        sched = scheduler.start(ctx)
        time.sleep(1.0)
        sched.shutdown(wait=True)
        logging.getLogger("apscheduler.scheduler").warning(
            'Execution of job "drain outbox" skipped: maximum number of running instances reached (1)'
        )
        logging.getLogger("apscheduler.scheduler").warning("something else")
    from_scheduler = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]
    assert from_scheduler == ["something else"]


@pytest.mark.parametrize(("interval", "parts"), [(5, 1), (60, 2), (300, 10), (3600, 12)])
def test_periodic_repair_is_spread_over_its_interval(interval: float, parts: int) -> None:
    """Every router is re-checked once per interval, a share of them per tick."""
    assert scheduler.reconcile_parts(interval) == parts
    ids = list(range(1, 2001))
    for start in (0, 7):
        shares = [scheduler.share(ids, t, parts) for t in range(start, start + parts)]
        assert sorted(i for sh in shares for i in sh) == ids
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
