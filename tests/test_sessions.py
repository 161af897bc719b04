"""Live sessions follow every change of a customer, not only activations: the rule as a
table, then admin edits end to end through the outbox to a pyrad CoA server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import insert

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import outbox, registry, sessions
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import utcnow
from provisioner.radius_tables import radacct
from provisioner.sessions import COA, DISCONNECT, Terms
from tests.support.coa_server import CoaServer
from tests.support.factories import Factory

ON = Terms("alice", router_id=1, active=True, static_ip=None, rate="5M/10M", volume_cap=None)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (ON, None),
        (replace(ON, rate="10M/50M"), COA),
        (replace(ON, active=False), DISCONNECT),
        (None, DISCONNECT),
        (replace(ON, static_ip="10.9.0.2"), DISCONNECT),
        (replace(ON, router_id=2), DISCONNECT),
        (replace(ON, username="alice2"), DISCONNECT),
        (replace(ON, volume_cap=10**9), DISCONNECT),
        (replace(ON, rate=None), None),  # no package left to take a rate from
    ],
    ids=["same", "rate", "cut-off", "removed", "address", "router", "renamed", "cap", "no-rate"],
)
def test_what_a_change_means_for_an_open_session(after: Terms | None, expected: str | None) -> None:
    assert sessions.action(ON, after) == expected


def test_a_customer_already_cut_off_is_not_disconnected_again() -> None:
    off = replace(ON, active=False)
    assert sessions.action(off, replace(off, rate="1M/1M")) is None


@pytest.fixture
def coa() -> Iterator[CoaServer]:
    with CoaServer("s3cret") as server:
        yield server


def online(ctx: Context, username: str, ip: str, sid: str) -> None:
    with transaction(ctx.factory) as s:
        s.execute(
            insert(radacct).values(
                acctsessionid=sid,
                acctuniqueid=f"u-{sid}",
                username=username,
                nasipaddress="127.0.0.1",
                acctstarttime=utcnow(),
                framedipaddress=ip,
            )
        )


def received(ctx: Context, coa: CoaServer) -> list[tuple[str, dict[str, list[Any]]]]:
    counts = outbox.drain(ctx.factory, ctx.settings)
    assert counts["failed"] == 0 and counts["retry"] == 0, counts
    got = coa.received
    coa.clear()
    return got


def edit(ctx: Context, fn: Any, *args: Any) -> None:
    with transaction(ctx.factory) as s:
        fn(s, "admin", *args)


@pytest.fixture
def isp(any_ctx: Context, coa: CoaServer, sim: SimulatedRouter) -> tuple[Context, Factory, str]:
    """A RADIUS-mode router: the simulator for its API, the CoA server for its port 3799."""
    make = Factory(any_ctx)
    router = make.router(sim, mode="radius", coa_port=coa.port)
    return any_ctx, make, router


def test_suspending_by_an_edit_disconnects_and_resuming_does_not(
    isp: tuple[Context, Factory, str], coa: CoaServer
) -> None:
    ctx, make, router = isp
    pkg = make.package(make.master(name="home"), name="Home")
    make.customer(pkg, router, username="alice")
    online(ctx, "alice", "10.1.0.9", "81a00001")
    received(ctx, coa)
    edit(ctx, registry.update_customer, "alice", {"status": "suspended"})
    [(code, attrs)] = received(ctx, coa)
    assert code == "Disconnect-Request"
    assert attrs["User-Name"] == ["alice"] and attrs["Acct-Session-Id"] == ["81a00001"]
    assert attrs["Framed-IP-Address"] == ["10.1.0.9"]
    edit(ctx, registry.update_customer, "alice", {"status": "active"})
    edit(ctx, registry.update_customer, "alice", {"password": "new-secret"})
    assert received(ctx, coa) == []


def test_a_master_speed_change_reaches_every_online_customer_of_it_by_coa(
    isp: tuple[Context, Factory, str], coa: CoaServer
) -> None:
    ctx, make, router = isp
    home = make.master(name="home", rate_down="10M", rate_up="5M")
    other = make.master(name="other")
    pkg_a = make.package(home, name="Home A")
    pkg_b = make.package(home, name="Home B", customer_price="450")
    make.customer(pkg_a, router, username="alice")
    make.customer(pkg_b, router, username="bob")
    make.customer(pkg_a, router, username="carol")  # offline: nothing to send
    make.customer(pkg_a, router, username="dave", status="suspended")
    make.customer(make.package(other, name="Other"), router, username="erin")
    for i, user in enumerate(["alice", "bob", "dave", "erin"]):
        online(ctx, user, f"10.1.0.{10 + i}", f"sess-{user}")
    received(ctx, coa)
    edit(ctx, registry.update_master_package, home, {"rate_down": "20M"})
    got = sorted(received(ctx, coa), key=lambda r: r[1]["User-Name"])
    assert [(code, a["User-Name"], a["Mikrotik-Rate-Limit"]) for code, a in got] == [
        ("CoA-Request", ["alice"], ["5M/20M"]),
        ("CoA-Request", ["bob"], ["5M/20M"]),
    ]
    edit(ctx, registry.update_master_package, home, {"shared_users": 2})
    assert received(ctx, coa) == []


def test_moving_a_customer_to_another_package_coas_and_a_new_address_disconnects(
    isp: tuple[Context, Factory, str], coa: CoaServer
) -> None:
    ctx, make, router = isp
    slow = make.package(make.master(name="slow", rate_down="5M", rate_up="1M"), name="Slow")
    fast = make.package(make.master(name="fast", rate_down="50M", rate_up="10M"), name="Fast")
    make.customer(slow, router, username="alice")
    online(ctx, "alice", "10.1.0.9", "81a00001")
    received(ctx, coa)
    edit(ctx, registry.update_customer, "alice", {"package": fast})
    [(code, attrs)] = received(ctx, coa)
    assert (code, attrs["Mikrotik-Rate-Limit"]) == ("CoA-Request", ["10M/50M"])
    edit(ctx, registry.update_customer, "alice", {"static_ip": "10.77.0.5"})
    assert [code for code, _ in received(ctx, coa)] == ["Disconnect-Request"]


def test_repointing_a_package_at_another_master_coas_its_online_customers(
    isp: tuple[Context, Factory, str], coa: CoaServer
) -> None:
    ctx, make, router = isp
    pkg = make.package(make.master(name="slow", rate_down="5M", rate_up="1M"), name="Promo")
    fast = make.master(name="fast", rate_down="50M", rate_up="10M")
    make.customer(pkg, router, username="alice")
    online(ctx, "alice", "10.1.0.9", "81a00001")
    received(ctx, coa)
    edit(ctx, registry.update_package, pkg, {"master_package": fast})
    [(code, attrs)] = received(ctx, coa)
    assert (code, attrs["Mikrotik-Rate-Limit"]) == ("CoA-Request", ["10M/50M"])


def test_removing_an_online_customer_disconnects_it(
    isp: tuple[Context, Factory, str], coa: CoaServer
) -> None:
    ctx, make, router = isp
    make.customer(make.package(make.master(name="home"), name="Home"), router, username="alice")
    online(ctx, "alice", "10.1.0.9", "81a00001")
    received(ctx, coa)
    with transaction(ctx.factory) as s:
        registry.delete_customer(s, "admin", "alice")
    [(code, attrs)] = received(ctx, coa)
    assert (code, attrs["User-Name"]) == ("Disconnect-Request", ["alice"])
