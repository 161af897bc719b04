"""IPv6 delegated prefixes (issue 15, item 2): validation of a master package's IPv6 pool,
the allocator (never one prefix to two customers, released on removal or when the package
loses IPv6), the real FreeRADIUS handing Delegated-IPv6-Prefix on SQLite and PostgreSQL,
and a local-mode sync creating ``/ipv6/pool`` and the profile's prefix pool."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import registry, sync
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import Conflict, ValidationError
from provisioner.models import Customer, Ipv6Prefix
from provisioner.radius_tables import radreply
from tests.support.concurrency import at_once
from tests.support.factories import Factory
from tests.test_freeradius_registry import auth, radius  # noqa: F401 (fixture)

V6 = {"ipv6_pool_name": "v6-home", "ipv6_prefix": "2001:db8:100::/40", "ipv6_prefix_length": 56}


def prefixes(ctx: Context) -> dict[str, str]:
    """username → delegated prefix, from the allocator's table."""
    with transaction(ctx.factory) as s:
        q = select(Customer.username, Ipv6Prefix.prefix).join(
            Ipv6Prefix, Ipv6Prefix.customer_id == Customer.id
        )
        return {u: p for u, p in s.execute(q)}


def reply_rows(ctx: Context, user: str) -> dict[str, str]:
    with transaction(ctx.factory) as s:
        q = select(radreply.c.attribute, radreply.c.value).where(radreply.c.username == user)
        return {a: v for a, v in s.execute(q)}


# ---- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"ipv6_prefix": "2001:db8:100::1/40"}, "ipv6_prefix", "the network is 2001:db8:100::/40"),
        ({"ipv6_prefix": "2001:db8:100::"}, "ipv6_prefix", "not an IPv6 prefix"),
        ({"ipv6_prefix": "10.0.0.0/8"}, "ipv6_prefix", "not an IPv6 prefix"),
        ({"ipv6_prefix": "2001:db8::/200"}, "ipv6_prefix", "not an IPv6 prefix"),
        ({"ipv6_prefix_length": 36}, "ipv6_prefix_length", "at least the pool's own length (40)"),
        ({"ipv6_prefix_length": 80}, "ipv6_prefix_length", "at most 64"),
        ({"ipv6_pool_name": None}, "ipv6_pool_name", "a name, a prefix and a prefix length"),
        ({"ipv6_prefix_length": None}, "ipv6_prefix_length", "a name, a prefix and a prefix"),
        ({"ipv6_pool_name": "bad name"}, "ipv6_pool_name", "not a valid RouterOS name"),
        ({"customer_type": "hotspot"}, "ipv6_prefix", "PPPoE customers only"),
    ],
)
def test_bad_ipv6_pools_are_refused_naming_the_field(
    make: Factory, fields: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as err:
        make.master(**{**V6, **fields})
    assert err.value.field == field and reason in str(err.value)


def test_framed_prefix_needs_a_pool(make: Factory) -> None:
    with pytest.raises(ValidationError) as err:
        make.master(framed_ipv6_prefix=True)
    assert err.value.field == "framed_ipv6_prefix"


@pytest.mark.parametrize(
    ("other", "ok"),
    [
        ({"ipv6_pool_name": "v6-biz", "ipv6_prefix": "2001:db8:100:ff00::/56"}, False),  # inside
        ({"ipv6_pool_name": "v6-biz", "ipv6_prefix": "2001:db8::/32"}, False),  # around
        ({"ipv6_pool_name": "v6-biz", "ipv6_prefix": "2001:db8:200::/40"}, True),  # beside
        ({"ipv6_pool_name": "v6-home"}, True),  # the same pool, shared alike
        ({"ipv6_pool_name": "v6-home", "ipv6_prefix_length": 60}, False),  # shared, unlike
        ({"ipv6_pool_name": "v6-home", "ipv6_prefix": "2001:db8:200::/40"}, False),
    ],
)
def test_overlapping_pools_are_refused_and_a_shared_pool_must_match(
    make: Factory, other: dict[str, Any], ok: bool
) -> None:
    make.master(name="home", **V6)
    if ok:
        make.master(name="biz", **{**V6, **other})
        return
    with pytest.raises(ValidationError) as err:
        make.master(name="biz", **{**V6, **other})
    assert err.value.field in ("ipv6_prefix", "ipv6_prefix_length")
    assert "'home'" in str(err.value)


def test_a_pool_is_stored_in_its_short_form_and_cli_flags_are_read(
    make: Factory, ctx: Context
) -> None:
    from provisioner.models import MasterPackage
    from provisioner.read import masters

    make.master(
        name="home",
        **{**V6, "ipv6_prefix": "2001:0db8:0100:0000::/40"},
        framed_ipv6_prefix="yes",
    )
    with transaction(ctx.factory) as s:
        m = s.scalar(select(MasterPackage).where(MasterPackage.name == "home"))
        assert m is not None
        assert (m.ipv6_prefix, m.framed_ipv6_prefix) == ("2001:db8:100::/40", True)
        shown = masters.view(m)  # what the API, the CLI and the panel show
        assert (shown.ipv6_pool_name, shown.ipv6_prefix, shown.ipv6_prefix_length) == (
            "v6-home",
            "2001:db8:100::/40",
            56,
        )
        assert shown.framed_ipv6_prefix is True


# ---- the allocator ---------------------------------------------------------------------


def test_lowest_free_prefix_never_twice_released_on_removal_and_reused(
    any_ctx: Context,
) -> None:
    ctx, make = any_ctx, Factory(any_ctx)
    pkg = make.package(make.master(name="home", **V6))
    r = make.router(None, mode="radius")
    a = make.customer(pkg, r, username="a", status="new")
    b = make.customer(pkg, r, username="b", status="new")
    assert prefixes(ctx) == {a: "2001:db8:100::/56", b: "2001:db8:100:100::/56"}
    with transaction(ctx.factory) as s:
        registry.delete_customer(s, "test", "a")
    assert prefixes(ctx) == {b: "2001:db8:100:100::/56"}
    assert reply_rows(ctx, "a") == {}
    make.customer(pkg, r, username="c", status="new")  # the lowest free one again
    assert prefixes(ctx)["c"] == "2001:db8:100::/56"
    # A customer keeps its prefix through other edits.
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "test", "b", {"status": "suspended"})
    assert prefixes(ctx)["b"] == "2001:db8:100:100::/56"


def test_a_gap_in_the_middle_of_a_pool_is_filled_first_then_the_end(any_ctx: Context) -> None:
    ctx, make = any_ctx, Factory(any_ctx)
    pkg = make.package(make.master(name="home", **V6))
    r = make.router(None, mode="radius")
    for name in ("a", "b", "c", "d"):
        make.customer(pkg, r, username=name, status="new")
    with transaction(ctx.factory) as s:
        registry.delete_customer(s, "test", "b")
        registry.delete_customer(s, "test", "c")
    make.customer(pkg, r, username="e", status="new")  # slot 1, the first gap
    make.customer(pkg, r, username="f", status="new")  # slot 2, the next
    make.customer(pkg, r, username="g", status="new")  # slot 4: 0 to 3 are taken
    got = prefixes(ctx)
    assert [got[u] for u in "efg"] == [
        "2001:db8:100:100::/56",
        "2001:db8:100:200::/56",
        "2001:db8:100:400::/56",
    ]


def test_prefix_released_when_the_package_loses_ipv6_and_moved_when_the_pool_does(
    ctx: Context, make: Factory
) -> None:
    home = make.master(name="home", **V6)
    plain = make.master(name="plain")
    r = make.router(None, mode="radius")
    make.customer(make.package(home), r, username="a")
    assert reply_rows(ctx, "a")["Delegated-IPv6-Prefix"] == "2001:db8:100::/56"
    # Another pool: a prefix of the new pool, in the RADIUS rows at once.
    with transaction(ctx.factory) as s:
        registry.update_master_package(
            s, "test", "home", {"ipv6_prefix": "2001:db8:300::/40", "ipv6_prefix_length": 48}
        )
    assert prefixes(ctx) == {"a": "2001:db8:300::/48"}
    assert reply_rows(ctx, "a")["Delegated-IPv6-Prefix"] == "2001:db8:300::/48"
    # A package without IPv6: terminated, the prefix is free.
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "test", "a", {"package": make.package(plain)})
    assert prefixes(ctx) == {}
    assert "Delegated-IPv6-Prefix" not in reply_rows(ctx, "a")


def test_an_activation_takes_a_prefix_and_a_move_to_a_package_without_ipv6_frees_it(
    ctx: Context, make: Factory
) -> None:
    from provisioner.activation import ActivationRequest, run_activation
    from provisioner.auth import Principal

    admin = Principal("admin", name="test")
    home = make.package(make.master(name="home", **V6))
    plain = make.package(make.master(name="plain"))
    r = make.router(None, mode="radius")
    make.customer(None, r, username="a", status="new")
    assert prefixes(ctx) == {}
    run_activation(ctx.factory, admin, ActivationRequest("a", home, "k1", payer="admin"))
    assert prefixes(ctx) == {"a": "2001:db8:100::/56"}
    assert reply_rows(ctx, "a")["Delegated-IPv6-Prefix"] == "2001:db8:100::/56"
    run_activation(ctx.factory, admin, ActivationRequest("a", home, "k2", payer="admin"))
    assert prefixes(ctx) == {"a": "2001:db8:100::/56"}  # a renewal keeps it
    run_activation(ctx.factory, admin, ActivationRequest("a", plain, "k3", payer="admin"))
    assert prefixes(ctx) == {}
    assert "Delegated-IPv6-Prefix" not in reply_rows(ctx, "a")


def test_a_full_pool_is_a_conflict(make: Factory) -> None:
    pkg = make.package(
        make.master(
            name="tiny", ipv6_pool_name="tiny", ipv6_prefix="2001:db8::/63", ipv6_prefix_length=64
        )
    )
    r = make.router(None, mode="radius")
    make.customer(pkg, r, status="new")
    make.customer(pkg, r, status="new")
    with pytest.raises(Conflict, match="no free /64"):
        make.customer(pkg, r, status="new")


def test_concurrent_allocations_on_postgresql_never_share_a_prefix(ctx_factory: Any) -> None:
    ctx = ctx_factory("postgresql")
    make = Factory(ctx)
    pkg = make.package(make.master(name="home", **V6))
    r = make.router(None, mode="radius")
    users = [make.customer(None, r, username=f"c{i}", status="new") for i in range(8)]

    def assign(user: str) -> None:
        with transaction(ctx.factory) as s:
            registry.update_customer(s, "test", user, {"package": pkg})

    at_once(*(lambda u=u: assign(u) for u in users))
    got = prefixes(ctx)
    assert sorted(got) == sorted(users)
    assert len(set(got.values())) == len(users)


# ---- the real FreeRADIUS ---------------------------------------------------------------


def test_access_accept_carries_the_delegated_prefix_and_framed_where_configured(
    radius: Any,  # noqa: F811 (the fixture)
) -> None:
    server, ctx, make = radius
    home = make.package(make.master(name="home", **V6))
    make.customer(home, "r1", username="alice", password="pw-a")
    make.customer(home, "r1", username="bob", password="pw-b")
    a, b = auth(server, "alice", "pw-a"), auth(server, "bob", "pw-b")
    assert a.accepted and b.accepted, server.log_tail()
    assert a.attributes["Delegated-IPv6-Prefix"] == ["2001:db8:100::/56"]
    assert b.attributes["Delegated-IPv6-Prefix"] == ["2001:db8:100:100::/56"]
    assert "Framed-IPv6-Prefix" not in a.attributes
    assert a.attributes["Framed-Pool"] == ["pool2"]  # IPv4 as before
    # Framed-IPv6-Prefix where the package says so (a /64 for the link).
    link = make.package(
        make.master(
            name="link",
            ipv6_pool_name="v6-link",
            ipv6_prefix="2001:db8:ff00::/48",
            ipv6_prefix_length=64,
            framed_ipv6_prefix=True,
        )
    )
    make.customer(link, "r1", username="carol", password="pw-c")
    c = auth(server, "carol", "pw-c")
    assert c.attributes["Delegated-IPv6-Prefix"] == ["2001:db8:ff00::/64"]
    assert c.attributes["Framed-IPv6-Prefix"] == ["2001:db8:ff00::/64"]
    # Terminated: removed, the prefix goes with it, and the next customer gets it.
    with transaction(ctx.factory) as s:
        registry.delete_customer(s, "test", "alice")
    assert not auth(server, "alice", "pw-a").accepted
    make.customer(home, "r1", username="dave", password="pw-d")
    d = auth(server, "dave", "pw-d")
    assert d.attributes["Delegated-IPv6-Prefix"] == ["2001:db8:100::/56"]
    # A package without IPv6: no prefix in the reply any more.
    with transaction(ctx.factory) as s:
        registry.update_master_package(
            s,
            "test",
            "home",
            {"ipv6_pool_name": None, "ipv6_prefix": None, "ipv6_prefix_length": None},
        )
    b = auth(server, "bob", "pw-b")
    assert b.accepted and "Delegated-IPv6-Prefix" not in b.attributes


# ---- local mode ------------------------------------------------------------------------


def test_local_mode_sync_creates_the_ipv6_pool_and_the_profile_property(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim)
    make.customer(make.package(make.master(name="home", **V6)), router, username="alice")
    [first] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, ()))
    assert first.status == "ok", first.error
    [pool] = sim.items("/ipv6/pool")
    assert (pool["name"], pool["prefix"], pool["prefix-length"]) == (
        "v6-home",
        "2001:db8:100::/40",
        "56",
    )
    [profile] = [p for p in sim.items("/ppp/profile") if p["name"] == "home"]
    assert profile["remote-ipv6-prefix-pool"] == "v6-home"
    [again] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, ()))
    assert again.status == "ok" and again.plan.changes == ()
    # A changed pool is set in place.
    with transaction(ctx.factory) as s:
        registry.update_master_package(s, "test", "home", {"ipv6_prefix_length": 60})
    [third] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, ()))
    assert third.status == "ok", third.error
    assert sim.items("/ipv6/pool")[0]["prefix-length"] == "60"
    # IPv6 taken off the package: the profile names no pool and ours is removed.
    with transaction(ctx.factory) as s:
        registry.update_master_package(
            s,
            "test",
            "home",
            {"ipv6_pool_name": None, "ipv6_prefix": None, "ipv6_prefix_length": None},
        )
    [fourth] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, ()))
    assert fourth.status == "ok", fourth.error
    assert sim.items("/ipv6/pool") == []
    [profile] = [p for p in sim.items("/ppp/profile") if p["name"] == "home"]
    assert profile["remote-ipv6-prefix-pool"] == "none"
    [last] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, ()))
    assert last.status == "ok" and last.plan.changes == ()


def test_a_router_is_not_asked_about_ipv6_while_no_package_has_it(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim)
    make.customer(make.package(make.master(name="home")), router)
    [first] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, ()))
    assert first.status == "ok", first.error
    assert "/ipv6/pool" not in {c.menu for c in first.plan.changes}
    assert sim.items("/ipv6/pool") == []


def test_free_slots_are_kept_by_the_database_and_the_search_reads_two_rows(
    any_ctx: Context,
) -> None:
    """``ipv6_free_slots`` follows ``ipv6_prefixes`` by triggers (a removal adds its slot,
    a take removes it), so the lowest free slot is the least of the smallest free one and
    the highest taken plus one."""
    from provisioner.models import Ipv6FreeSlot
    from provisioner.registry.customers import _LOWEST_FREE

    ctx, make = any_ctx, Factory(any_ctx)
    pkg = make.package(make.master(name="home", **V6))
    r = make.router(None, mode="radius")
    for name in "abcde":
        make.customer(pkg, r, username=name, status="new")

    def state() -> tuple[list[int], int]:
        with transaction(ctx.factory) as s:
            free = list(s.scalars(select(Ipv6FreeSlot.slot).order_by(Ipv6FreeSlot.slot)))
            return free, s.connection().scalar(_LOWEST_FREE, {"pool": "v6-home"})

    assert state() == ([], 5)
    with transaction(ctx.factory) as s:
        for name in "db":
            registry.delete_customer(s, "test", name)
    assert state() == ([1, 3], 1)
    make.customer(pkg, r, username="f", status="new")
    assert state() == ([3], 3)
    with transaction(ctx.factory) as s:
        registry.delete_customer(s, "test", "e")  # the highest: 4 free, and so is 3
    assert state() == ([3, 4], 3)
    make.customer(pkg, r, username="g", status="new")
    make.customer(pkg, r, username="h", status="new")
    make.customer(pkg, r, username="i", status="new")
    assert state() == ([], 6)
    assert prefixes(ctx)["i"] == "2001:db8:100:500::/56"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_fills_the_free_slots_of_pools_with_gaps(backend: str, tmp_path: Any) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from provisioner.db import alembic_config
    from tests.support.databases import empty_database

    with empty_database(backend, tmp_path, "v6") as url:
        command.upgrade(alembic_config(url), "0020")
        engine = create_engine(url)
        with engine.begin() as conn:
            for cid, slot in ((1, 0), (2, 2), (3, 5), (4, None)):
                conn.execute(text(
                    "INSERT INTO customers (id, username, password, customer_type, status, "
                    "created_at) VALUES (:id, :u, 'x', 'pppoe', 'active', CURRENT_TIMESTAMP)"
                ), {"id": cid, "u": f"c{cid}"})  # fmt: skip
                conn.execute(text(
                    "INSERT INTO ipv6_prefixes (prefix, customer_id, pool_name, slot) "
                    "VALUES (:p, :id, :pool, :slot)"
                ), {"p": f"2001:db8:{cid}::/56", "id": cid, "slot": slot,
                    "pool": "old" if slot is None else "v6"})  # fmt: skip
        engine.dispose()
        command.upgrade(alembic_config(url), "heads")
        engine = create_engine(url)
        with engine.connect() as conn:
            free = conn.execute(text("SELECT pool_name, slot FROM ipv6_free_slots ORDER BY slot"))
            assert [tuple(r) for r in free] == [("v6", 1), ("v6", 3), ("v6", 4)]
        engine.dispose()
