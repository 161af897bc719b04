"""Pipelined writes: a router's writes go in bursts of tagged commands, over TCP to the
RouterOS simulator (whose latency is a round trip, so a burst's commands overlap), on
both databases. Every guarantee of one-at-a-time sending still holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import sync
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import NasObject, SyncRun
from tests.support.factories import Factory

POOL, PROFILE, SECRET = "/ip/pool", "/ppp/profile", "/ppp/secret"


@pytest.fixture
def slow_sim() -> Iterator[SimulatedRouter]:
    with SimulatedRouter(username="admin", password="pw") as router:
        router.latency = 0.02
        router.record_writes = True
        yield router


def run(ctx: Context, *, dry_run: bool = False) -> sync.RouterResult:
    [r] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory), dry_run=dry_run)
    return r


def two_packages(ctx: Context, sim: SimulatedRouter, home: int, biz: int) -> None:
    """Customers h00.. on package "home" and b00.. on "biz" (mallory among biz's)."""
    make = Factory(ctx)
    router = make.router(sim, customer_types="pppoe")
    home_pkg = make.package(make.master(name="home"))
    biz_pkg = make.package(make.master(name="biz"))
    for i in range(home):
        make.customer(home_pkg, router, username=f"h{i:02}")
    for i in range(biz):
        make.customer(biz_pkg, router, username="mallory" if i == biz // 2 else f"b{i:02}")


def test_writes_go_in_bursts_in_dependency_order(
    any_ctx: Context, slow_sim: SimulatedRouter
) -> None:
    two_packages(any_ctx, slow_sim, home=15, biz=15)
    ids = sync.router_ids(any_ctx.factory)
    [r] = sync.sync_many(any_ctx.factory, any_ctx.settings, ids, keep_plans=False)
    assert (r.status, r.applied, slow_sim.stats.traps) == ("ok", 34, 0), r.error
    assert (r.planned, r.plan.writes, r.applied_changes) == (34, (), [])  # kept lean
    menus = [menu for menu, _, _ in slow_sim.stats.write_log]
    # Pools, then profiles, then secrets: a secret sent before its profile would trap.
    assert menus == [POOL] * 2 + [PROFILE] * 2 + [SECRET] * 30
    assert slow_sim.stats.peak_in_flight > 10  # the secrets went in a burst
    assert run(any_ctx, dry_run=True).plan.changes == ()


def test_a_trap_mid_burst_is_its_commands_and_holds_back_only_its_dependents(
    any_ctx: Context, slow_sim: SimulatedRouter
) -> None:
    two_packages(any_ctx, slow_sim, home=3, biz=12)
    slow_sim.trap_names = {"home", "mallory"}
    r = run(any_ctx)
    assert r.status == "failed"
    assert r.error is not None
    assert "2 of 19 changes refused" in r.error
    assert "r1 /ppp/profile home: add: failure: simulated fault" in r.error
    assert "r1 /ppp/secret mallory: add: failure: simulated fault" in r.error
    assert "; 3 skipped: r1 /ppp/secret h00: skipped: its profile 'home' was refused" in r.error
    # home's customers were never sent; every other secret of the burst was applied.
    sent = [name for menu, _, name in slow_sim.stats.write_log if menu == SECRET]
    assert sorted(sent) == sorted(["mallory", *(f"b{i:02}" for i in range(12) if i != 6)])
    assert slow_sim.stats.peak_in_flight > 5
    on_router = sorted(x["name"] for x in slow_sim.items(SECRET))
    assert on_router == [f"b{i:02}" for i in range(12) if i != 6]
    assert r.applied == 19 - 2 - 3
    with transaction(any_ctx.factory) as s:
        last = s.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        assert last is not None and (last.status, last.error) == ("failed", r.error)
    slow_sim.trap_names = set()
    slow_sim.reset_stats()
    again = run(any_ctx)
    assert (again.status, again.applied) == ("ok", 5), again.error
    assert sorted(name for _, _, name in slow_sim.stats.write_log) == [
        "h00", "h01", "h02", "home", "mallory"
    ]  # fmt: skip
    assert run(any_ctx, dry_run=True).plan.changes == ()


def test_a_connection_lost_mid_burst_is_reported_and_the_next_sync_converges(
    any_ctx: Context, slow_sim: SimulatedRouter
) -> None:
    two_packages(any_ctx, slow_sim, home=10, biz=10)
    planned = len(run(any_ctx, dry_run=True).plan.writes)
    assert planned == 24
    # The link dies while the secrets' burst is on the router, run but unanswered: the
    # router did them, the engine never heard.
    slow_sim.latency = 1.0

    def cut() -> None:
        deadline = time.monotonic() + 30
        while slow_sim.stats.writes < planned and time.monotonic() < deadline:
            time.sleep(0.005)
        slow_sim.refuse = True

    cutter = threading.Thread(target=cut)
    cutter.start()
    broken = run(any_ctx)
    cutter.join()
    assert broken.status == "unreachable"
    assert "connection lost" in (broken.error or "")
    assert broken.applied == 4  # pools and profiles; the secrets' replies never came
    assert slow_sim.stats.writes == planned
    slow_sim.refuse = False
    slow_sim.latency = 0.02
    slow_sim.reset_stats()
    fixed = run(any_ctx)
    # The secrets the router did are found by their marker and kept: nothing sent twice.
    assert (fixed.status, fixed.applied, slow_sim.stats.writes) == ("ok", 0, 0), fixed.error
    names = [x["name"] for x in slow_sim.items(SECRET)]
    assert len(names) == len(set(names)) == 20
    assert run(any_ctx, dry_run=True).plan.changes == ()
    with transaction(any_ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(NasObject)) == planned
        runs = [r.status for r in s.scalars(select(SyncRun).order_by(SyncRun.id))]
        assert runs == ["unreachable", "ok"]


def test_a_connection_dropped_mid_burst_after_some_answers_keeps_them(
    any_ctx: Context, slow_sim: SimulatedRouter
) -> None:
    two_packages(any_ctx, slow_sim, home=10, biz=10)
    slow_sim.reset_stats()
    run(any_ctx, dry_run=True)
    reads = slow_sim.stats.commands  # login and prints
    slow_sim.drop_after = reads + 4 + 5  # pools, profiles, five secrets: then it dies
    broken = run(any_ctx)
    assert broken.status == "unreachable" and "connection lost" in (broken.error or "")
    assert broken.applied == 9
    slow_sim.reset_stats()
    fixed = run(any_ctx)
    assert (fixed.status, fixed.applied) == ("ok", 15), fixed.error
    assert len(slow_sim.stats.write_log) == 15  # only what the first run did not do
    names = [x["name"] for x in slow_sim.items(SECRET)]
    assert len(names) == len(set(names)) == 20
    assert run(any_ctx, dry_run=True).plan.changes == ()
