"""Live sessions follow every change of a customer, not only activations: the rule as a
table, then admin edits end to end through the outbox to a pyrad CoA server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import outbox, registry, sessions
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import Outbox, utcnow
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


# ---- every open session; CoA tries are bounded; a dead router holds up no other ----------


def test_shared_users_every_open_session_is_followed(
    isp: tuple[Context, Factory, str], coa: CoaServer
) -> None:
    ctx, make, router = isp
    pkg = make.package(make.master(name="home", shared_users=2), name="Home")
    make.customer(pkg, router, username="alice")
    online(ctx, "alice", "10.1.0.9", "81a00001")
    online(ctx, "alice", "10.1.0.10", "81a00002")
    received(ctx, coa)
    edit(ctx, registry.update_master_package, "home", {"rate_down": "20M"})
    got = received(ctx, coa)
    assert sorted((c, a["Acct-Session-Id"][0], a["Mikrotik-Rate-Limit"][0]) for c, a in got) == [
        ("CoA-Request", "81a00001", "5M/20M"),
        ("CoA-Request", "81a00002", "5M/20M"),
    ]
    edit(ctx, registry.update_customer, "alice", {"status": "suspended"})
    got = received(ctx, coa)
    assert sorted((c, a["Acct-Session-Id"][0], a["Framed-IP-Address"][0]) for c, a in got) == [
        ("Disconnect-Request", "81a00001", "10.1.0.9"),
        ("Disconnect-Request", "81a00002", "10.1.0.10"),
    ]


class TimedCoaServer(CoaServer):
    """Also notes when each request arrived (``time.monotonic()``)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.times: list[float] = []

    def _answer(self, pkt: Any, nak_code: int) -> None:
        self.times.append(time.monotonic())
        super()._answer(pkt, nak_code)


def no_router_syncs(ctx: Context) -> None:
    """Set the routers' API syncs aside: these routers have no API, and it is not the point."""
    with transaction(ctx.factory) as s:
        s.execute(update(Outbox).where(Outbox.kind == "sync_router").values(status="done"))


def due_now(ctx: Context) -> None:
    """Skip the backoff wait of every pending row."""
    with transaction(ctx.factory) as s:
        s.execute(update(Outbox).where(Outbox.status == "pending").values(next_attempt_at=utcnow()))


def test_a_coa_never_answered_becomes_a_disconnect_after_bounded_tries(ctx_factory: Any) -> None:
    ctx = ctx_factory("sqlite", coa_max_attempts=3, coa_timeout_seconds=0.2)
    with CoaServer("s3cret") as dead:
        dead.silent = True
        make = Factory(ctx)
        router = make.router(None, mode="radius", host="127.0.0.1", coa_port=dead.port)
        make.customer(make.package(make.master(name="home"), name="Home"), router, username="al")
        online(ctx, "al", "10.1.0.9", "81a00001")
        edit(ctx, registry.update_master_package, "home", {"rate_down": "20M"})
        no_router_syncs(ctx)
        sent = []
        for _ in range(4):
            assert outbox.drain(ctx.factory, ctx.settings) == {"done": 0, "retry": 1, "failed": 0}
            sent.append([code for code, _ in dead.received])
            dead.clear()
            due_now(ctx)
        # Three tries of two sends each (a timeout counts as a try), then Disconnect.
        assert sent == [["CoA-Request"] * 2] * 3 + [["Disconnect-Request"] * 2]
        dead.silent = False  # the router answers again: the session is ended
        assert outbox.drain(ctx.factory, ctx.settings) == {"done": 1, "retry": 0, "failed": 0}
        [(code, attrs)] = dead.received
        assert code == "Disconnect-Request" and attrs["Acct-Session-Id"] == ["81a00001"]
        assert "Mikrotik-Rate-Limit" not in attrs


def test_a_dead_routers_coa_does_not_hold_up_another_routers(ctx_factory: Any) -> None:
    timeout = 0.5
    ctx = ctx_factory("sqlite", coa_timeout_seconds=timeout)
    with TimedCoaServer("s3cret", address="127.0.0.2") as dead, TimedCoaServer("s3cret") as live:
        dead.silent = True
        make = Factory(ctx)
        dead_r = make.router(None, mode="radius", host="127.0.0.2", coa_port=dead.port)
        live_r = make.router(None, mode="radius", host="127.0.0.1", coa_port=live.port)
        pkg = make.package(make.master(name="home"), name="Home")
        # The dead router's sessions come first: a drain in order would wait for them.
        for user, router, nas in (("d1", dead_r, "127.0.0.2"), ("d2", dead_r, "127.0.0.2"),
                                  ("l1", live_r, "127.0.0.1")):  # fmt: skip
            make.customer(pkg, router, username=user)
            with transaction(ctx.factory) as s:
                s.execute(
                    insert(radacct).values(
                        acctsessionid=f"s-{user}", acctuniqueid=f"u-{user}", username=user,
                        nasipaddress=nas, acctstarttime=utcnow(), framedipaddress="10.1.0.9",
                    )
                )  # fmt: skip
        edit(ctx, registry.update_master_package, "home", {"rate_down": "20M"})
        no_router_syncs(ctx)
        with transaction(ctx.factory) as s:
            coas = list(s.scalars(select(Outbox).where(Outbox.kind == "coa").order_by(Outbox.id)))
        assert [r.payload["User-Name"] for r in coas] == ["d1", "d2", "l1"]
        assert outbox.drain(ctx.factory, ctx.settings) == {"done": 1, "retry": 2, "failed": 0}
        # The dead router got one try (two sends), d2 was not sent in this pass, and the
        # live router's CoA arrived before the dead router's try was over.
        assert [a["User-Name"] for _, a in dead.received] == [["d1"], ["d1"]]
        [(code, attrs)] = live.received
        assert (code, attrs["User-Name"]) == ("CoA-Request", ["l1"])
        assert live.times[0] < dead.times[-1] < dead.times[0] + 2 * timeout
        with transaction(ctx.factory) as s:
            coas = list(s.scalars(select(Outbox).where(Outbox.kind == "coa")))
        errors = {r.payload["User-Name"]: r.last_error for r in coas}
        assert "no valid reply" in (errors["d1"] or "")
        assert (errors["d2"] or "").startswith("not sent: ")
