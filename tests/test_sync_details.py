"""Sync details (issue 11, item 8), end to end over TCP to the RouterOS simulator: a refused
parent holds back what depends on it, a profile renamed by hand keeps its users, a name
conflict makes ``sync`` loud, and ``bootstrap`` puts our RADIUS server first."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from typer.testing import CliRunner

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import sync
from provisioner.context import Context
from provisioner.planning.plan import Action
from tests.support.factories import Factory

cli_common = importlib.import_module("provisioner.cli.common")
cli_root = importlib.import_module("provisioner.cli").app

PPP_PROFILE, HS_PROFILE = "/ppp/profile", "/ip/hotspot/user/profile"
PPP_SECRET, HS_USER = "/ppp/secret", "/ip/hotspot/user"


def run(ctx: Context, *, dry_run: bool = False, adopt: bool = False) -> sync.RouterResult:
    [result] = sync.sync_many(
        ctx.factory, ctx.settings, sync.router_ids(ctx.factory), dry_run=dry_run, adopt=adopt
    )
    return result


def bootstrap(ctx: Context, *, dry_run: bool = False) -> sync.RouterResult:
    rid = sync.router_ids(ctx.factory)[0]
    return sync.sync_router(ctx.factory, ctx.settings, rid, dry_run=dry_run, bootstrap=True)


def names(sim: SimulatedRouter, menu: str) -> list[str]:
    return sorted(i["name"] for i in sim.items(menu))


# -- 1. a refused parent: its dependents are skipped, not sent --------------------------


def test_a_refused_profile_skips_its_secrets_and_the_run_lists_both(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim, customer_types="pppoe")
    home = make.package(make.master(name="home"))
    other = make.package(make.master(name="other"))
    for user, pkg in (("alice", home), ("bob", home), ("carol", other)):
        make.customer(pkg, router, username=user)
    sim.trap_names = {"home"}
    r = run(ctx)
    assert r.status == "failed"
    assert sim.stats.traps == 1  # the profile; its secrets were never sent
    assert r.applied == len(r.plan.writes) - 3 == 4  # 2 pools, profile other, carol
    assert r.error == (
        "1 of 7 changes refused: r1 /ppp/profile home: add: failure: simulated fault; "
        "2 skipped: r1 /ppp/secret alice: skipped: its profile 'home' was refused; "
        "r1 /ppp/secret bob: skipped: its profile 'home' was refused"
    )
    assert names(sim, PPP_SECRET) == ["carol"]
    sim.trap_names = set()
    again = run(ctx)
    assert (again.status, again.applied) == ("ok", 3)
    assert names(sim, PPP_SECRET) == ["alice", "bob", "carol"]


@pytest.mark.parametrize(("kind", "profile_menu", "user_menu"), [
    ("pppoe", PPP_PROFILE, PPP_SECRET), ("hotspot", HS_PROFILE, HS_USER),
])  # fmt: skip
def test_a_refused_pool_skips_its_profile_and_that_profiles_users(
    ctx: Context, make: Factory, sim: SimulatedRouter, kind: str, profile_menu: str, user_menu: str
) -> None:
    router = make.router(sim, customer_types=kind)
    pkg = make.package(
        make.master(name="home", customer_type=kind, billing="daily", pool_name="pool-home")
    )
    make.customer(pkg, router, username="alice", customer_type=kind)
    sim.trap_names = {"pool-home"}
    r = run(ctx)
    assert (r.status, r.applied, sim.stats.traps) == ("failed", 0, 1)
    assert r.error == (
        "1 of 3 changes refused: r1 /ip/pool pool-home: add: failure: simulated fault; "
        f"2 skipped: r1 {profile_menu} home: skipped: its pool 'pool-home' was refused; "
        f"r1 {user_menu} alice: skipped: its profile 'home' was skipped"
    )
    assert names(sim, user_menu) == [] and "home" not in names(sim, profile_menu)
    sim.trap_names = set()
    assert run(ctx).status == "ok" and names(sim, user_menu) == ["alice"]


# -- 2. a profile renamed by hand: renamed back, its users left alone -------------------


@pytest.mark.parametrize(("kind", "profile_menu", "user_menu", "active", "who"), [
    ("pppoe", PPP_PROFILE, PPP_SECRET, "/ppp/active", "name"),
    ("hotspot", HS_PROFILE, HS_USER, "/ip/hotspot/active", "user"),
])  # fmt: skip
def test_a_profile_renamed_by_hand_is_renamed_back_without_touching_its_users(
    ctx: Context,
    make: Factory,
    sim: SimulatedRouter,
    kind: str,
    profile_menu: str,
    user_menu: str,
    active: str,
    who: str,
) -> None:
    router = make.router(sim, customer_types=kind)
    pkg = make.package(make.master(name="home", customer_type=kind, billing="daily"))
    for user in ("alice", "bob"):
        make.customer(pkg, router, username=user, customer_type=kind)
    assert run(ctx).status == "ok"
    sim.add_item(active, **{who: "alice", "address": "10.0.0.9"})
    [pid] = [p[".id"] for p in sim.items(profile_menu) if p["name"] == "home"]
    sim.set_item(profile_menu, pid, name="home-by-hand")
    # RouterOS follows a reference by .id: the users now show the new name.
    assert {u["profile"] for u in sim.items(user_menu)} == {"home-by-hand"}

    plan = run(ctx, dry_run=True).plan
    assert [(c.action, c.menu, c.key, [(p.name, p.old, p.new) for p in c.props])
            for c in plan.changes] == [
        (Action.set, profile_menu, "home", [("name", "home-by-hand", "home")]),
    ]  # fmt: skip
    sim.reset_stats()
    r = run(ctx)
    assert (r.status, r.applied, sim.stats.writes) == ("ok", 1, 1)
    assert {u["profile"] for u in sim.items(user_menu)} == {"home"}
    assert [s[who] for s in sim.items(active)] == ["alice"]  # nobody kicked
    assert run(ctx, dry_run=True).plan.changes == ()


# -- 3. a name conflict left unsynced makes `sync` exit 2 with a warning ----------------


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli_common, "_ctx", ctx)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(cli_root, list(args))
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_sync_with_a_conflict_left_exits_2_and_names_it(
    cli: Any, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim, customer_types="pppoe")
    make.customer(make.package(make.master(name="home")), router, username="alice")
    sim.add_item(PPP_SECRET, name="alice", password="by-hand")
    result = cli("sync", code=2)
    assert result.stderr.strip().splitlines() == [
        "warning: 1 conflict left unsynced: r1 /ppp/secret alice (not ours; --adopt to take "
        "it over)"
    ]
    assert [s["password"] for s in sim.items(PPP_SECRET)] == ["by-hand"]
    cli("sync", "--adopt")
    assert cli("sync").stderr == ""


def test_sync_help_and_readme_give_its_exit_codes() -> None:
    result = CliRunner().invoke(cli_root, ["sync", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "Exit 0 all applied, 2 conflicts left (not ours: --adopt), 1 a router failed" in text
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "exit 0 all applied, 2 conflicts left, 1 a router failed" in readme


# -- 4. bootstrap: our /radius entry before a foreign one for the same service ----------


def test_bootstrap_moves_our_radius_entry_before_a_foreign_one(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    sim.add_item("/radius", address="10.9.9.9", secret="theirs", service="ppp")
    sim.add_item("/radius", address="10.8.8.8", secret="wifi", service="wireless")
    make.router(sim, customer_types="pppoe,hotspot")
    plan = bootstrap(ctx, dry_run=True).plan
    [move] = [c for c in plan.changes if c.action is Action.move]
    assert (move.menu, move.key, move.ros_id) == ("/radius", "127.0.0.1", None)
    assert [(p.name, p.new) for p in move.props] == [("destination", "*1")]
    assert move.reason == (
        "before 10.9.9.9 (*1), not ours, for ppp: RouterOS asks its /radius entries in order"
    )
    assert [c.action for c in plan.changes if c.menu == "/radius"] == [Action.add, Action.move]
    done = bootstrap(ctx)
    assert done.status == "ok", done.error
    assert [r["address"] for r in sim.items("/radius")] == ["127.0.0.1", "10.9.9.9", "10.8.8.8"]
    assert bootstrap(ctx, dry_run=True).plan.changes == ()

    # A foreign server added later, in front of ours: moved behind ours again.
    sim.remove_item("/radius", sim.items("/radius")[1][".id"])
    mine = sim.items("/radius")[0][".id"]
    sim.add_item("/radius", address="10.7.7.7", secret="new", service="hotspot")
    sim.move_item("/radius", sim.items("/radius")[-1][".id"], mine)
    assert [r["address"] for r in sim.items("/radius")][:2] == ["10.7.7.7", "127.0.0.1"]
    [move] = bootstrap(ctx, dry_run=True).plan.changes
    assert (move.action, move.ros_id) == (Action.move, mine)
    assert bootstrap(ctx).status == "ok"
    assert [r["address"] for r in sim.items("/radius")][:2] == ["127.0.0.1", "10.7.7.7"]
    assert bootstrap(ctx, dry_run=True).plan.changes == ()


def test_bootstrap_leaves_foreign_servers_for_other_services_in_front(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    sim.add_item("/radius", address="10.8.8.8", secret="wifi", service="wireless")
    make.router(sim, customer_types="pppoe")
    assert [c.action for c in bootstrap(ctx, dry_run=True).plan.changes] == [
        Action.add, Action.set, Action.set,
    ]  # fmt: skip
    assert bootstrap(ctx).status == "ok"
    assert [r["address"] for r in sim.items("/radius")] == ["10.8.8.8", "127.0.0.1"]
