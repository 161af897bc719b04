"""A fleet sync spread over processes (PostgreSQL): the same outcome as in one process.

Routers are RouterOS API simulators in this process; the fleet's processes reach them
over TCP with librouteros, each with its own engine, as ``provisioner sync`` does."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import fleet, instances, metrics, sync
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.models import NasObject, Router, SyncRun
from tests.support.factories import Factory

cli_app = importlib.import_module("provisioner.cli.common")
cli_root = importlib.import_module("provisioner.cli").app
MENUS = ["/ip/pool", "/ppp/profile", "/ppp/secret"]
ROUTERS = 5


@pytest.fixture
def sims() -> Iterator[list[SimulatedRouter]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                SimulatedRouter(username="admin", password="pw", host=f"127.0.0.{i + 1}")
            )
            for i in range(ROUTERS)
        ]


def seed(ctx: Context, sims: list[SimulatedRouter]) -> None:
    """The same registry whatever the context: ``ROUTERS`` routers, two plans, customers
    on each router (r1 .. r5 in order)."""
    make = Factory(ctx)
    home = make.package(make.master(name="home", rate_down="10M", rate_up="5M"))
    biz = make.package(make.master(name="biz", rate_down="40M", rate_up="20M"))
    for i, s in enumerate(sims):
        router = make.router(s, name=f"r{i + 1}")
        for k in range(6):
            make.customer(home if k % 2 else biz, router, username=f"c{i}x{k}")


def outcome(ctx: Context) -> dict[str, Any]:
    """What a sync leaves in the registry, by router name: its runs and ownership records."""
    with reading(ctx.factory) as s:
        names = {i: n for i, n in s.execute(select(Router.id, Router.name))}
        runs = sorted(
            (names[r.router_id], r.trigger, r.status, r.changes_planned, r.changes_applied,
             r.holder, r.finished_at is not None)
            for r in s.scalars(select(SyncRun))
        )  # fmt: skip
        owned = sorted(
            (names[rid], menu, key)
            for rid, menu, key in s.execute(select(NasObject.router_id, NasObject.menu,
                                                   NasObject.key))
        )  # fmt: skip
    return {"runs": runs, "owned": owned}


def on_router(sims: list[SimulatedRouter]) -> list[dict[str, list[tuple[str, ...]]]]:
    return [
        {m: sorted(tuple(sorted(row.items() - {("id", row.get(".id", ""))})) for row in
                   s.items(m)) for m in MENUS}
        for s in sims
    ]  # fmt: skip


def brief(results: list[sync.RouterResult]) -> list[tuple[str, str, int, int]]:
    return [(r.router, r.status, r.planned, r.applied) for r in results]


def counted(router: str, status: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "provisioner_sync_runs_total", {"router": router, "status": status}
        )
        or 0.0
    )


def test_a_fleet_across_processes_ends_as_in_one_process(ctx_factory: Any) -> None:
    """The same registry synced in this process and in two processes: the same results,
    sync runs (this instance's), ownership records and router contents; then a converged
    re-sync writes nothing. Counted in this process's metrics either way."""
    found = {}
    for mode in ("in-process", "spread"):
        ctx = ctx_factory("postgresql", sync_processes=1 if mode == "in-process" else 2)
        with ExitStack() as stack:
            sims = [
                stack.enter_context(
                    SimulatedRouter(username="admin", password="pw", host=f"127.0.0.{i + 1}")
                )
                for i in range(ROUTERS)
            ]
            seed(ctx, sims)
            ids = sync.router_ids(ctx.factory)
            assert fleet.spreads(ctx.factory, ctx.settings, len(ids)) is (mode == "spread")
            before = counted("r1", "ok")
            first = sync.sync_many(ctx.factory, ctx.settings, ids, trigger="cli", spread=True)
            assert counted("r1", "ok") == before + 1
            again = sync.sync_many(ctx.factory, ctx.settings, ids, trigger="cli", spread=True)
            assert sum(s.stats.writes for s in sims) == first_writes(first)
            found[mode] = (brief(first), brief(again), outcome(ctx), on_router(sims))
            if mode == "spread":
                # Lean results: the plan's writes stayed in the processes (and in the runs).
                assert all(r.plan.writes == () and r.planned > 0 for r in first)
    assert found["spread"] == found["in-process"]
    first, again, registry_side, _ = found["spread"]
    assert all(status == "ok" and planned == applied > 0 for _, status, planned, applied in first)
    assert all(status == "ok" and applied == 0 for _, status, _, applied in again)
    assert {run[5] for run in registry_side["runs"]} == {instances.name()}
    assert len(registry_side["runs"]) == 2 * ROUTERS


def first_writes(results: list[sync.RouterResult]) -> int:
    return sum(r.applied for r in results)


def test_a_router_that_fails_in_one_process_does_not_stop_the_others(
    ctx_factory: Any, sims: list[SimulatedRouter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A router that is down is reported (its run recorded, exit 1); the others are
    synced; a name conflict on another router is exit 2 once the dead one is back."""
    ctx = ctx_factory("postgresql", sync_processes=2, router_timeout_seconds=1.0)
    seed(ctx, sims)
    monkeypatch.setattr(cli_app, "_ctx", ctx)
    sims[2].stop()
    result = CliRunner().invoke(cli_root, ["sync", "--json"])
    assert result.exit_code == 1, result.output
    with reading(ctx.factory) as s:
        runs = {
            name: status
            for name, status in s.execute(
                select(Router.name, SyncRun.status).join(Router, Router.id == SyncRun.router_id)
            )
        }
    assert runs == {"r1": "ok", "r2": "ok", "r3": "unreachable", "r4": "ok", "r5": "ok"}
    assert '"unreachable"' in result.output and '"r3"' in result.output
    for s in sims[:2] + sims[3:]:
        assert len(s.items("/ppp/secret")) == 6

    # r3 back (empty) with a profile of ours by name that we did not make: a conflict.
    with SimulatedRouter(username="admin", password="pw", host="127.0.0.3") as back:
        back.add_item("/ppp/profile", name="home", rate_limit="1M/1M")
        with reading(ctx.factory) as s:
            r3 = s.scalars(select(Router).where(Router.name == "r3")).one()
            r3_id = r3.id
        with transaction(ctx.factory) as s:
            row = s.get(Router, r3_id)
            assert row is not None
            row.api_port = back.port
        result = CliRunner().invoke(cli_root, ["sync"])
        assert result.exit_code == 2, result.output
        assert "conflict" in result.output
        assert [p["rate-limit"] for p in back.items("/ppp/profile") if p["name"] == "home"] == [
            "1M/1M"
        ]
        # The biz customers are made; home's wait for their profile (not ours yet).
        assert sorted(x["name"] for x in back.items("/ppp/secret")) == ["c2x0", "c2x2", "c2x4"]
        result = CliRunner().invoke(cli_root, ["sync", "--adopt"])
        assert result.exit_code == 0, result.output
        assert len(back.items("/ppp/secret")) == 6


def test_sqlite_syncs_a_fleet_in_process(ctx_factory: Any, sims: list[SimulatedRouter]) -> None:
    """SQLite has one writer: the fleet stays in this process whatever sync_processes says
    (full results, plans kept), and converges the same."""
    ctx = ctx_factory("sqlite", sync_processes=2)
    seed(ctx, sims)
    ids = sync.router_ids(ctx.factory)
    assert fleet.processes(ctx.settings, "sqlite") == 1
    assert not fleet.spreads(ctx.factory, ctx.settings, len(ids))
    first = sync.sync_many(ctx.factory, ctx.settings, ids, spread=True)
    assert all(r.status == "ok" and len(r.plan.writes) == r.applied > 0 for r in first)
    again = sync.sync_many(ctx.factory, ctx.settings, ids, spread=True)
    assert all(r.status == "ok" and r.applied == 0 for r in again)


def test_fleet_processes_and_their_connections() -> None:
    """One process per core (at most sync_concurrency), sharing sync_concurrency; each
    opens one connection per sync and one more."""
    from provisioner.config import Settings

    s = Settings(database_url="postgresql+psycopg://x@localhost/x")
    assert fleet.processes(s, "postgresql", cores=2) == 2
    assert fleet.processes(s, "postgresql", cores=16) == s.sync_concurrency == 4
    assert fleet.processes(s, "sqlite", cores=16) == 1
    assert fleet.connections(s, 2) == 2 * (2 + 1)
    assert fleet.connections(s, 1) == 0
    one = s.model_copy(update={"sync_processes": 1})
    assert fleet.processes(one, "postgresql", cores=16) == 1


def changes_counted(router: str, menu: str, trigger: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "provisioner_sync_changes_applied_total",
            {"router": router, "menu": menu, "trigger": trigger},
        )
        or 0.0
    )


def test_the_periodic_repair_spreads_and_its_metrics_stay_with_the_scheduler(
    ctx_factory: Any, sims: list[SimulatedRouter]
) -> None:
    """The scheduler's reconcile on PostgreSQL: drift on two routers repaired from the
    fleet's processes, each change counted under trigger=reconcile in this process."""
    from provisioner import scheduler

    ctx = ctx_factory("postgresql", sync_processes=2)
    seed(ctx, sims)
    assert all(r.status == "ok" for r in sync.sync_many(ctx.factory, ctx.settings,
                                                         sync.router_ids(ctx.factory)))  # fmt: skip
    for s in (sims[1], sims[4]):
        [home] = [p for p in s.items("/ppp/profile") if p["name"] == "home"]
        s.set_item("/ppp/profile", home[".id"], rate_limit="1M/1M")
    before = [changes_counted(r, "/ppp/profile", "reconcile") for r in ("r2", "r5", "r1")]
    scheduler.reconcile(ctx)
    after = [changes_counted(r, "/ppp/profile", "reconcile") for r in ("r2", "r5", "r1")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 0]
    for s in (sims[1], sims[4]):
        assert [p["rate-limit"] for p in s.items("/ppp/profile") if p["name"] == "home"] == [
            "5M/10M"
        ]
    with reading(ctx.factory) as s:
        runs = sorted(
            (name, applied)
            for name, applied in s.execute(
                select(Router.name, SyncRun.changes_applied)
                .join(Router, Router.id == SyncRun.router_id)
                .where(SyncRun.trigger == "reconcile")
            )
        )
    assert runs == [("r1", 0), ("r2", 1), ("r3", 0), ("r4", 0), ("r5", 1)]
