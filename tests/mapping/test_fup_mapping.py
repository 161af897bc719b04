"""Fair usage and shared router profiles in the pure mapping, as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from provisioner.fup import Accounted, cycle_bytes
from provisioner.mapping.menus import PPP_PROFILE, PPP_SECRET
from provisioner.mapping.radius import RadiusRow, customer_rows, group_rows
from provisioner.mapping.routeros import desired_objects
from provisioner.rates import RateLimit
from provisioner.snapshots import CustomerSpec, MasterSpec, RouterSpec

R = RadiusRow
FULL = RateLimit(up=5_000_000, down=20_000_000)
SLOW = RateLimit(up=1_000_000, down=2_000_000)
HOME = MasterSpec(1, "home", "pppoe", "monthly", FULL, "home", "pool1", "10.0.0.2-10.0.0.9",
                  local_address="10.0.0.1", fup_threshold=100 * 2**30, fup_rate=SLOW)  # fmt: skip


@pytest.mark.parametrize(
    ("customer", "extra"),
    [
        pytest.param(CustomerSpec(1, "alice", "pw", "pppoe", "active", master_id=1), [],
                     id="under-threshold"),
        pytest.param(CustomerSpec(1, "alice", "pw", "pppoe", "active", master_id=1, throttled=True),
                     [R("radreply", "alice", "Mikrotik-Rate-Limit", ":=", "1M/2M")],
                     id="throttled: own reduced rate"),
        pytest.param(CustomerSpec(1, "alice", "pw", "pppoe", "expired", master_id=1, throttled=True),
                     [], id="cut off: no rate at all"),
    ],
)  # fmt: skip
def test_a_throttled_customer_gets_its_reduced_rate(
    customer: CustomerSpec, extra: list[RadiusRow]
) -> None:
    rates = [r for r in customer_rows(customer, HOME) if r.attribute == "Mikrotik-Rate-Limit"]
    assert rates == extra


def test_throttle_without_a_reduced_rate_is_no_row() -> None:
    c = CustomerSpec(1, "alice", "pw", "pppoe", "active", master_id=1, throttled=True)
    rows = customer_rows(c, replace(HOME, fup_rate=None))
    assert not [r for r in rows if r.attribute == "Mikrotik-Rate-Limit"]


def test_group_rate_yields_to_the_users_own() -> None:
    [rate] = [r for r in group_rows(HOME) if r.attribute == "Mikrotik-Rate-Limit"]
    assert (rate.op, rate.value) == ("=", "5M/20M")


def test_shared_profile_one_router_object_two_groups_with_their_own_rates() -> None:
    a = replace(HOME, fup_threshold=None, fup_rate=None)
    b = replace(a, id=2, name="home-50", profile_name="home-50", router_profile="home",
                rate=RateLimit(up=10_000_000, down=50_000_000))  # fmt: skip
    ga, gb = group_rows(a), group_rows(b)
    assert {r.owner for r in ga} == {"home"} and {r.owner for r in gb} == {"home-50"}
    assert R("radgroupreply", "home-50", "Mikrotik-Group", ":=", "home") in gb
    assert R("radgroupreply", "home-50", "Mikrotik-Rate-Limit", "=", "10M/50M") in gb
    assert R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "5M/20M") in ga
    assert customer_rows(CustomerSpec(9, "bob", "pw", "pppoe", "active", master_id=2), b)[-1] == (
        R("radusergroup", "bob", "home-50", "", "1")
    )
    router = RouterSpec(1, "r1", "10.9.0.1", frozenset({"pppoe"}), "local")
    customers = [
        CustomerSpec(8, "ann", "pw", "pppoe", "active", master_id=1, router_id=1),
        CustomerSpec(9, "bob", "pw", "pppoe", "active", master_id=2, router_id=1),
    ]
    objs = desired_objects(router, [a, b], customers)
    [profile] = [o for o in objs if o.menu == PPP_PROFILE]
    assert profile.key == "home"
    # The rates differ: the router's profile keeps whatever it has; RADIUS gives each its own.
    assert "rate-limit" not in profile.props
    assert profile.props["local-address"] == "10.0.0.1"
    assert profile.props["remote-address"] == "pool1"
    assert {o.props["profile"] for o in objs if o.menu == PPP_SECRET} == {"home"}
    # Alike in rate too: the shared profile carries it.
    [same] = [
        o for o in desired_objects(router, [a, replace(b, rate=FULL)], []) if o.menu == PPP_PROFILE
    ]
    assert same.props["rate-limit"] == "5M/20M"


T0 = datetime(2027, 1, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    from datetime import timedelta

    return T0 + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("rows", "used"),
    [
        pytest.param([Accounted(at(1), at(2), 100)], 100, id="inside"),
        pytest.param([Accounted(at(1), None, 100)], 100, id="open, no update yet"),
        pytest.param([Accounted(at(-10), at(10), 100)], 50, id="spans the start: pro rata"),
        pytest.param([Accounted(at(-10), at(-1), 100)], 0, id="ended before"),
        pytest.param([Accounted(at(24 * 31), at(24 * 31 + 1), 100)], 0, id="after the end"),
        pytest.param([Accounted(at(1), at(2), 100), Accounted(at(3), at(4), 2**33)], 2**33 + 100,
                     id="several, past 4 GiB"),
        pytest.param([Accounted(at(1).replace(tzinfo=None), at(2).replace(tzinfo=None), 7)], 7,
                     id="naive = UTC (SQLite)"),
    ],
)  # fmt: skip
def test_cycle_bytes(rows: list[Accounted], used: int) -> None:
    assert cycle_bytes(rows, T0, at(24 * 31)) == used
