"""Several master packages on one router profile (issue 15.5): one object on the router,
a RADIUS group and a rate of its own for each; the real FreeRADIUS gives each customer
its own rate and the shared profile."""

from __future__ import annotations

from typing import Any

import pytest

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import registry, sync
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import ValidationError
from tests.support.factories import Factory
from tests.test_freeradius_registry import auth, radius  # noqa: F401 (fixture)

SHARED = {"pool_name": "pool-home", "pool_ranges": "10.80.0.2-10.80.0.250",
          "local_address": "10.80.0.1"}  # fmt: skip


def two_on_one_profile(make: Factory) -> tuple[str, str]:
    a = make.master(name="home-10", profile_name="home-10", router_profile="home",
                    rate_down="10M", rate_up="2M", **SHARED)  # fmt: skip
    b = make.master(name="home-50", profile_name="home-50", router_profile="home",
                    rate_down="50M", rate_up="10M", **SHARED)  # fmt: skip
    return a, b


def test_one_router_profile_for_two_master_packages(
    ctx: Context, make: Factory, sim: SimulatedRouter
) -> None:
    router = make.router(sim, mode="local")
    a, b = two_on_one_profile(make)
    make.customer(make.package(a), router, username="ann")
    make.customer(make.package(b), router, username="bob")
    [result] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, [router]))
    assert result.status == "ok", result
    ours = [
        p for p in sim.items("/ppp/profile") if p["name"] not in ("default", "default-encryption")
    ]
    assert [p["name"] for p in ours] == ["home"]
    assert ours[0]["local-address"] == "10.80.0.1" and ours[0]["remote-address"] == "pool-home"
    assert {s["name"]: s["profile"] for s in sim.items("/ppp/secret")} == {
        "ann": "home", "bob": "home"
    }  # fmt: skip
    assert [p["name"] for p in sim.items("/ip/pool")].count("pool-home") == 1
    again = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory, [router]),
                           dry_run=True)  # fmt: skip
    assert again[0].plan is not None and again[0].plan.changes == ()


def test_a_shared_profile_must_agree_on_what_the_router_holds(make: Factory, ctx: Context) -> None:
    two_on_one_profile(make)
    with pytest.raises(ValidationError, match="shared with master package 'home-10'") as err:
        make.master(
            name="home-x", router_profile="home", **{**SHARED, "local_address": "10.80.0.9"}
        )
    assert err.value.field == "router_profile"
    # A master's own profile (its profile_name) is shared by naming it.
    make.master(name="solo", pool_name="pool-solo", pool_ranges="10.81.0.2-10.81.0.9")
    with pytest.raises(ValidationError, match="whose shared_users is 1"):
        make.master(name="solo-4", router_profile="solo", pool_name="pool-solo",
                    pool_ranges="10.81.0.2-10.81.0.9", shared_users=4)  # fmt: skip
    with pytest.raises(ValidationError, match="reserved"):
        make.master(name="home-z", router_profile="default")
    # Two masters may not share a RADIUS group: that is each one's own.
    with pytest.raises(Exception, match="already used"):
        make.master(name="home-w", profile_name="home-50", router_profile="home", **SHARED)
    with transaction(ctx.factory) as s:  # leaving the shared profile is an edit
        registry.update_master_package(s, "t", "home-50", {"router_profile": None})


def test_freeradius_gives_each_customer_its_own_rate_and_the_shared_profile(
    radius: Any,  # noqa: F811
) -> None:
    server, _ctx, make = radius
    a, b = two_on_one_profile(make)
    make.customer(make.package(a), "r1", username="ann", password="pw")
    make.customer(make.package(b), "r1", username="bob", password="pw")
    ann, bob = auth(server, "ann", "pw"), auth(server, "bob", "pw")
    assert ann.accepted and bob.accepted, server.log_tail()
    assert ann.attributes["Mikrotik-Rate-Limit"] == ["2M/10M"]
    assert bob.attributes["Mikrotik-Rate-Limit"] == ["10M/50M"]
    assert ann.attributes["Mikrotik-Group"] == bob.attributes["Mikrotik-Group"] == ["home"]
    assert ann.attributes["Framed-Pool"] == bob.attributes["Framed-Pool"] == ["pool-home"]
