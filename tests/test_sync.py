"""The sync engine end to end: librouteros over TCP to the RouterOS API simulator."""

from __future__ import annotations

from typing import Any

import pytest

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import registry, sync
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import Package, SyncRun
from provisioner.planning.plan import Action
from tests.support.factories import Factory

MANAGED = [
    "/ip/pool",
    "/ppp/profile",
    "/ppp/secret",
    "/ip/hotspot/user/profile",
    "/ip/hotspot/user",
    "/queue/simple",
]


def run(
    ctx: Context, *names: str, dry_run: bool = False, adopt: bool = False
) -> list[sync.RouterResult]:
    return sync.sync_many(
        ctx.factory, ctx.settings, sync.router_ids(ctx.factory, names), dry_run=dry_run, adopt=adopt
    )


def snapshot(sim: SimulatedRouter) -> dict[str, list[dict[str, str]]]:
    return {m: sim.items(m) for m in MANAGED}


def seed_all_types(make: Factory, sim: SimulatedRouter) -> str:
    router = make.router(sim)
    home = make.master(name="home", rate_down="10M", rate_up="5M")
    hs = make.master(
        name="hs", customer_type="hotspot", billing="daily", duration_days=1, volume_cap="5G"
    )
    biz = make.master(
        name="biz",
        customer_type="static",
        burst_down="40M",
        burst_up="20M",
        burst_threshold_down="8M",
        burst_threshold_up="4M",
        burst_time="8",
    )
    make.customer(make.package(home), router, username="alice")
    make.customer(make.package(hs), router, username="bob", customer_type="hotspot")
    make.customer(make.package(biz), router, username="corp", customer_type="static")
    make.customer(make.package(home), router, username="eve", status="expired")
    return router


def test_empty_router_converges_in_one_sync_and_next_plan_is_empty(
    ctx_factory: Any, backend: str, sim: SimulatedRouter
) -> None:
    ctx = ctx_factory(backend)
    make = Factory(ctx)
    seed_all_types(make, sim)
    [first] = run(ctx)
    assert first.status == "ok", first.error
    assert (
        first.applied == len(first.plan.writes) == 8
    )  # 2 pools, 2 profiles, 2 secrets, 1 user, 1 queue
    assert sim.stats.writes == 8
    assert {i["name"] for i in sim.items("/ppp/secret")} == {"alice", "eve"}
    assert [i["disabled"] for i in sim.items("/ppp/secret") if i["name"] == "eve"] == ["true"]
    sim.reset_stats()
    [again] = run(ctx)
    assert again.status == "ok" and again.plan.changes == () and again.applied == 0
    assert sim.stats.writes == 0
    # One print per menu, on one connection.
    assert sim.stats.connections == 1
    assert sim.stats.reads == len(
        sync.menus_to_read(sync.router_spec(_router(ctx)), sync.options(ctx.settings))
    )


def _router(ctx: Context) -> Any:
    from provisioner.models import Router

    with transaction(ctx.factory) as s:
        return s.query(Router).first()


def test_changed_speed_is_exactly_one_rate_limit_change_per_router(
    ctx: Context, make: Factory
) -> None:
    with SimulatedRouter(username="admin", password="pw", host="127.0.0.1") as a, \
         SimulatedRouter(username="admin", password="pw", host="127.0.0.2") as b:  # fmt: skip
        make.router(a)
        make.router(b)
        home = make.master(name="home")
        make.master(name="other-plan", rate_down="3M", rate_up="1M")
        make.customer(make.package(home), "r1")
        assert all(r.status == "ok" for r in run(ctx))
        with transaction(ctx.factory) as s:
            registry.update_master_package(s, "test", "home", {"rate_down": "20M"})
        plans = [r.plan for r in run(ctx, dry_run=True)]
        for plan in plans:
            assert [(c.action, c.menu, c.key, [p.name for p in c.props]) for c in plan.changes] == [
                (Action.set, "/ppp/profile", "home", ["rate-limit"])
            ]
            assert (
                plan.changes[0].props[0].old == "5M/10M"
                and plan.changes[0].props[0].new == "5M/20M"
            )
        a.reset_stats()
        b.reset_stats()
        assert all(r.applied == 1 for r in run(ctx))
        assert a.stats.writes == b.stats.writes == 1
        assert [p["rate-limit"] for p in a.items("/ppp/profile") if p["name"] == "home"] == [
            "5M/20M"
        ]


def test_hand_made_objects_survive_every_sync(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    sim.add_item("/ppp/profile", name="vip", rate_limit="100M/100M")
    sim.add_item("/queue/simple", name="office", target="192.168.88.0/24", max_limit="50M/50M")
    sim.add_item("/ppp/secret", name="admin-test", password="x", profile="vip")
    before = {
        m: [i for i in sim.items(m) if i["name"] in ("vip", "office", "admin-test")]
        for m in MANAGED
    }
    seed_all_types(make, sim)
    for _ in range(2):
        assert run(ctx)[0].status == "ok"
    # Remove everything from the registry: only our objects go.
    with transaction(ctx.factory) as s:
        for u in ("alice", "bob", "corp", "eve"):
            registry.delete_customer(s, "test", u)
        for p in [p.name for p in s.query(Package)]:
            registry.delete_package(s, "test", p)
        for m in ("home", "hs", "biz"):
            registry.delete_master_package(s, "test", m)
    assert run(ctx)[0].status == "ok"
    after = {
        m: [i for i in sim.items(m) if i["name"] in ("vip", "office", "admin-test")]
        for m in MANAGED
    }
    assert after == before
    assert {p["name"] for p in sim.items("/ppp/profile")} == {
        "default",
        "default-encryption",
        "vip",
    }
    assert [q["name"] for q in sim.items("/queue/simple")] == ["office"]


def test_name_conflict_is_reported_not_overwritten_then_adopted(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    sim.add_item("/ppp/profile", name="home", rate_limit="1M/1M")
    make.router(sim)
    make.master(name="home")
    [r] = run(ctx)
    assert [(c.action, c.key) for c in r.plan.conflicts] == [(Action.conflict, "home")]
    assert [p["rate-limit"] for p in sim.items("/ppp/profile") if p["name"] == "home"] == ["1M/1M"]
    [adopted] = run(ctx, adopt=True)
    assert adopted.status == "ok" and not adopted.plan.conflicts
    home = next(p for p in sim.items("/ppp/profile") if p["name"] == "home")
    assert home["rate-limit"] == "5M/10M" and home["comment"].startswith("provisioner:")
    assert run(ctx, dry_run=True)[0].plan.changes == ()


def test_dropped_connection_mid_apply_then_next_sync_converges_without_duplicates(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim)
    home = make.master(name="home")
    pkg = make.package(home)
    for i in range(10):
        make.customer(pkg, router, username=f"user{i}")
    sim.drop_after = 1 + 7 + 4  # login, 7 prints, 4 writes: then the link dies
    [broken] = run(ctx)
    assert broken.status == "unreachable" and "connection" in (broken.error or "")
    assert 0 < broken.applied < len(broken.plan.writes)
    [fixed] = run(ctx)
    assert fixed.status == "ok", fixed.error
    assert broken.applied + fixed.applied == len(broken.plan.writes)
    names = [s["name"] for s in sim.items("/ppp/secret")]
    assert sorted(names) == sorted(f"user{i}" for i in range(10))
    assert run(ctx, dry_run=True)[0].plan.changes == ()
    with transaction(ctx.factory) as s:
        runs = s.query(SyncRun).order_by(SyncRun.id).all()
        assert [r.status for r in runs] == ["unreachable", "ok"]
        assert runs[0].changes_applied == broken.applied and runs[0].error


def test_router_that_refuses_connections_is_reported_and_others_converge(
    ctx: Context, make: Factory
) -> None:
    with SimulatedRouter(username="admin", password="pw", host="127.0.0.1") as up, \
         SimulatedRouter(username="admin", password="pw", host="127.0.0.2") as down:  # fmt: skip
        make.router(up, name="up")
        make.router(down, name="down")
        make.master(name="home")
        down.refuse = True
        results = {r.router: r for r in run(ctx)}
        assert results["up"].status == "ok" and results["up"].applied == 2
        assert results["down"].status == "unreachable"
        assert results["down"].plan.error and "cannot connect" in results["down"].plan.error
        down.refuse = False
        assert {r.router: r.status for r in run(ctx)} == {"up": "ok", "down": "ok"}


def test_routeros_trap_is_reported_with_its_message(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    make.router(sim)
    make.master(name="home")
    sim.trap_rate = 1.0
    [r] = run(ctx)
    assert r.status == "failed" and r.applied == 0
    assert "simulated fault" in (r.error or "") and "/ip/pool" in (r.error or "")
    sim.trap_rate = 0.0
    assert run(ctx)[0].status == "ok"


def test_one_refused_object_does_not_hold_up_the_others(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim, customer_types="pppoe")
    pkg = make.package(make.master(name="home"))
    for user in ("alice", "mallory", "zoe"):
        make.customer(pkg, router, username=user)
    sim.trap_names = {"mallory"}
    [r] = run(ctx)
    assert r.status == "failed" and r.applied == len(r.plan.writes) - 1
    assert r.error == (
        "1 of 5 changes refused: r1 /ppp/secret mallory: add: failure: simulated fault"
    )
    assert sorted(x["name"] for x in sim.items("/ppp/secret")) == ["alice", "zoe"]
    with transaction(ctx.factory) as s:
        last = s.query(SyncRun).order_by(SyncRun.id.desc()).first()
        assert last is not None and (last.status, last.error) == ("failed", r.error)
    sim.trap_names = set()
    [again] = run(ctx)
    assert (again.status, again.applied) == ("ok", 1)
    assert sorted(x["name"] for x in sim.items("/ppp/secret")) == ["alice", "mallory", "zoe"]


def test_bad_credentials_are_a_clear_error(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    make.router(sim, password="wrong")
    [r] = run(ctx, dry_run=True)
    assert (
        r.plan.error
        and "login refused" in r.plan.error
        and "invalid user name or password" in r.plan.error
    )


def test_bootstrap_configures_radius_side_as_a_plan(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    make.router(sim, customer_types="pppoe,hotspot")
    rid = sync.router_ids(ctx.factory)[0]
    dry = sync.sync_router(ctx.factory, ctx.settings, rid, dry_run=True, bootstrap=True)
    assert {(c.action, c.menu) for c in dry.plan.changes} == {
        (Action.add, "/radius"), (Action.set, "/radius/incoming"), (Action.set, "/ppp/aaa"),
    }  # fmt: skip
    assert sim.items("/radius") == []
    done = sync.sync_router(ctx.factory, ctx.settings, rid, bootstrap=True)
    assert done.status == "ok", done.error
    [entry] = sim.items("/radius")
    assert entry["secret"] == "s3cret" and entry["service"] == "ppp,hotspot"
    assert sim.items("/radius/incoming")[0]["accept"] == "true"
    assert sim.items("/ppp/aaa")[0]["use-radius"] == "true"
    # Usage of live sessions every 300 s (the setting): fair usage acts before logout.
    assert sim.items("/ppp/aaa")[0]["interim-update"] == "5m"
    assert (
        sync.sync_router(ctx.factory, ctx.settings, rid, dry_run=True, bootstrap=True).plan.changes
        == ()
    )
    # A regular sync never touches the RADIUS entry.
    assert run(ctx)[0].status == "ok" and len(sim.items("/radius")) == 1


@pytest.mark.parametrize("field", ["password", "radius_secret"])
def test_credentials_never_appear_in_plans_or_runs(
    ctx: Context, make: Factory, sim: SimulatedRouter, field: str
) -> None:
    make.router(sim)
    make.customer(make.package(make.master(name="home")), "r1", password="hunter2-secret")
    [r] = run(ctx)
    from provisioner.planning.diff import redact

    assert "hunter2-secret" not in redact(r.plan).to_json()
    with transaction(ctx.factory) as s:
        assert "hunter2-secret" not in str(s.query(SyncRun).one().applied)


def test_local_mode_cut_off_ends_live_sessions_and_leaves_others_online(
    ctx_factory: Any, backend: str, sim: SimulatedRouter
) -> None:
    """A disabled secret does not end a RouterOS session: the sync removes the
    /ppp/active (and /ip/hotspot/active) entry of a cut-off customer, and only theirs."""
    ctx = ctx_factory(backend)
    make = Factory(ctx)
    router = make.router(sim, mode="local")
    home = make.package(make.master(name="home"))
    hs = make.package(make.master(name="hs", customer_type="hotspot", billing="daily"))
    make.customer(home, router, username="alice")
    make.customer(home, router, username="bob")
    make.customer(hs, router, username="guest", customer_type="hotspot")
    sim.add_item("/ppp/secret", name="hand", password="x")
    assert run(ctx)[0].status == "ok"
    for user in ("alice", "bob", "hand"):
        sim.add_item("/ppp/active", name=user, service="pppoe", address="10.0.0.9")
    sim.add_item("/ip/hotspot/active", user="guest", address="10.0.1.9")
    assert run(ctx)[0].plan.changes == ()  # everyone is paid up: nobody is kicked

    with transaction(ctx.factory) as s:
        registry.update_customer(s, "test", "alice", {"status": "expired"})
        registry.update_customer(s, "test", "guest", {"status": "suspended"})
    [result] = run(ctx)
    assert result.status == "ok", result.error
    assert [(c.menu, c.key, c.action) for c in result.plan.writes] == [
        ("/ppp/secret", "alice", Action.set),
        ("/ip/hotspot/user", "guest", Action.set),
        ("/ip/hotspot/active", "guest", Action.remove),
        ("/ppp/active", "alice", Action.remove),
    ]
    assert sorted(a["name"] for a in sim.items("/ppp/active")) == ["bob", "hand"]
    assert sim.items("/ip/hotspot/active") == []
    assert run(ctx, dry_run=True)[0].plan.changes == ()


def test_a_session_a_failed_sync_left_up_is_ended_by_the_next(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim, mode="local", customer_types="pppoe")
    make.customer(make.package(make.master(name="home")), router, username="alice")
    assert run(ctx)[0].status == "ok"
    sim.add_item("/ppp/active", name="alice", service="pppoe", address="10.0.0.9")
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "test", "alice", {"status": "suspended"})
    sim.drop_after = 7  # login, 5 prints, the secret's set; the link dies before the kick
    first = run(ctx)[0]
    sim.drop_after = None
    assert (first.status, first.applied) == ("unreachable", 1)
    assert [x["disabled"] for x in sim.items("/ppp/secret")] == ["true"]
    assert [a["name"] for a in sim.items("/ppp/active")] == ["alice"]
    [again] = run(ctx)
    assert again.status == "ok", again.error
    assert sim.items("/ppp/active") == []
    assert [x["disabled"] for x in sim.items("/ppp/secret")] == ["true"]


def test_a_name_clash_holds_back_the_customers_it_would_bind_to_a_foreign_profile(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    """A hand-made PPP profile and hotspot user profile, and a hand-made pool, hold names
    our master packages want. Each is a conflict and left alone, and so is every object
    that would point at it: alice's secret (3M/3M and the foreign pool's addresses), bob's
    hotspot user, the profile whose pool is foreign and carol's secret that uses it. The
    run says so ("conflicts"); after adopting, everything is made."""
    sim.add_item("/ip/pool", name="their-pool", ranges="192.168.77.2-192.168.77.254")
    sim.add_item("/ppp/profile", name="hand-made", rate_limit="3M/3M")
    sim.add_item("/ip/hotspot/user/profile", name="vip", rate_limit="50M/50M", shared_users="3")
    router = make.router(sim)
    clash = make.package(make.master(name="hand-made"))
    vip = make.package(
        make.master(name="vip", customer_type="hotspot", billing="daily", duration_days=1)
    )
    pooled = make.package(make.master(name="home", pool_name="their-pool"))
    make.customer(clash, router, username="alice")
    make.customer(vip, router, username="bob", customer_type="hotspot")
    make.customer(pooled, router, username="carol")
    before = snapshot(sim)
    [r] = run(ctx)
    assert r.status == "conflicts", r.error
    reasons = {(c.menu, c.key): c.reason for c in r.plan.conflicts}
    assert set(reasons) == {
        ("/ip/pool", "their-pool"), ("/ppp/profile", "hand-made"),
        ("/ip/hotspot/user/profile", "vip"), ("/ppp/profile", "home"),
        ("/ppp/secret", "alice"), ("/ip/hotspot/user", "bob"), ("/ppp/secret", "carol"),
    }  # fmt: skip
    assert "its profile 'hand-made' is not provisioner's" in reasons[("/ppp/secret", "alice")]
    assert "its pool 'their-pool' is not provisioner's" in reasons[("/ppp/profile", "home")]
    after = snapshot(sim)  # nothing sent that would bind a customer to them; the other
    for menu in MANAGED[1:]:  # masters' own pools are made (nothing points at them yet)
        assert after[menu] == before[menu], menu
    assert [p for p in after["/ip/pool"] if p["name"] == "their-pool"] == before["/ip/pool"]
    assert r.error is not None and "7 conflicts left unsynced" in r.error
    with transaction(ctx.factory) as s:
        assert s.query(SyncRun).one().status == "conflicts"
    [adopted] = run(ctx, adopt=True)
    assert adopted.status == "ok" and not adopted.plan.conflicts
    assert {x["name"] for x in sim.items("/ppp/secret")} == {"alice", "carol"}
    assert [u["name"] for u in sim.items("/ip/hotspot/user")] == ["bob"]
