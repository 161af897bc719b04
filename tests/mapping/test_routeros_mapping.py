"""Master packages and customers → RouterOS objects, as tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioner.mapping.routeros import bootstrap_objects, desired_objects
from provisioner.rates import RateLimit
from provisioner.snapshots import CustomerSpec, MasterSpec, RouterSpec

RADIUS_ROUTER = RouterSpec(
    1, "r1", "10.0.0.1", frozenset({"pppoe", "hotspot", "static"}), "radius", "sec"
)
LOCAL_ROUTER = RouterSpec(
    1, "r1", "10.0.0.1", frozenset({"pppoe", "hotspot", "static"}), "local", "sec"
)
PPPOE = MasterSpec(
    1,
    "home",
    "pppoe",
    "monthly",
    RateLimit(up=5_000_000, down=10_000_000),
    "home",
    "pool-home",
    "10.1.0.2-10.1.0.254",
    "10.1.0.1",
)
HOTSPOT = MasterSpec(
    2,
    "hs",
    "hotspot",
    "daily",
    RateLimit(up=1_000_000, down=2_000_000),
    "hs",
    "pool-hs",
    "10.2.0.0/24",
    volume_cap=5 * 2**30,
    shared_users=3,
)
BURST = RateLimit(
    up=10_000_000,
    down=20_000_000,
    burst_up=20_000_000,
    burst_down=40_000_000,
    threshold_up=8_000_000,
    threshold_down=15_000_000,
    burst_time=8,
    priority=2,
    min_up=1_000_000,
    min_down=2_000_000,
)
STATIC = MasterSpec(3, "biz", "static", "monthly", BURST, "biz", "pool-biz", "10.3.0.2-10.3.0.9")
OTHER = MasterSpec(4, "ftth", "other", "monthly", RateLimit(up=1, down=1), "ftth")
MASTERS = [PPPOE, HOTSPOT, STATIC, OTHER]
ALICE = CustomerSpec(1, "alice", "pa", "pppoe", "active", master_id=1, router_id=1)
BOB = CustomerSpec(
    2, "bob", "pb", "hotspot", "expired", master_id=2, router_id=1, mac_address="AA:BB:CC:DD:EE:FF"
)
CORP = CustomerSpec(
    3, "corp", "pc", "static", "active", master_id=3, router_id=1, static_ip="10.3.0.2"
)
GONE = CustomerSpec(
    4,
    "gone",
    "pg",
    "static",
    "expired",
    master_id=3,
    router_id=1,
    static_ip="10.3.0.3",
    expires_at=datetime(2020, 1, 1, tzinfo=UTC),
)
FIBER = CustomerSpec(5, "fiber", "pf", "other", "active", master_id=4)
CUSTOMERS = [ALICE, BOB, CORP, GONE, FIBER]  # fmt: skip


def by_key(
    router: RouterSpec, masters=MASTERS, customers=CUSTOMERS
) -> dict[tuple[str, str], dict[str, str]]:  # type: ignore[no-untyped-def]
    return {(o.menu, o.key): o.props for o in desired_objects(router, masters, customers)}


def test_radius_router_carries_pools_profiles_and_static_queues_only() -> None:
    got = by_key(RADIUS_ROUTER)
    assert set(got) == {
        ("/ip/pool", "pool-home"), ("/ip/pool", "pool-hs"),
        ("/ppp/profile", "home"), ("/ip/hotspot/user/profile", "hs"),
        ("/queue/simple", "corp"), ("/queue/simple", "gone"),
        ("/ip/firewall/address-list", "provisioner-expired|10.3.0.3"),
    }  # fmt: skip


def test_pppoe_profile() -> None:
    assert by_key(RADIUS_ROUTER)[("/ppp/profile", "home")] == {
        "name": "home", "rate-limit": "5M/10M", "only-one": "yes", "comment": "provisioner:master:1",
        "remote-address": "pool-home", "local-address": "10.1.0.1",
    }  # fmt: skip


def test_hotspot_profile_has_no_comment() -> None:
    assert by_key(RADIUS_ROUTER)[("/ip/hotspot/user/profile", "hs")] == {
        "name": "hs", "rate-limit": "1M/2M", "address-pool": "pool-hs", "shared-users": "3",
    }  # fmt: skip


def test_static_queue_with_burst_priority_and_minimum() -> None:
    assert by_key(RADIUS_ROUTER)[("/queue/simple", "corp")] == {
        "name": "corp", "target": "10.3.0.2/32", "max-limit": "10M/20M", "limit-at": "1M/2M",
        "burst-limit": "20M/40M", "burst-threshold": "8M/15M", "burst-time": "8s/8s",
        "priority": "2/2", "comment": "provisioner:customer:3",
    }  # fmt: skip


def test_local_mode_adds_secrets_and_users_disabled_when_cut_off() -> None:
    got = by_key(LOCAL_ROUTER)
    assert got[("/ppp/secret", "alice")] == {
        "name": "alice", "password": "pa", "service": "pppoe", "profile": "home",
        "disabled": "no", "comment": "provisioner:customer:1",
    }  # fmt: skip
    assert got[("/ip/hotspot/user", "bob")] == {
        "name": "bob", "password": "pb", "profile": "hs", "limit-bytes-total": str(5 * 2**30),
        "disabled": "yes", "comment": "provisioner:customer:2", "mac-address": "AA:BB:CC:DD:EE:FF",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("types", "menus"),
    [
        ({"pppoe"}, {"/ip/pool", "/ppp/profile"}),
        ({"hotspot"}, {"/ip/pool", "/ip/hotspot/user/profile"}),
        ({"static"}, {"/queue/simple", "/ip/firewall/address-list"}),
    ],
)
def test_router_gets_only_the_types_it_serves(types: set[str], menus: set[str]) -> None:
    r = RouterSpec(1, "r1", "10.0.0.1", frozenset(types), "radius", "sec")
    assert {m for m, _ in by_key(r)} == menus


def test_other_customers_and_other_routers_customers_are_not_mapped() -> None:
    moved = CustomerSpec(9, "elsewhere", "p", "pppoe", "active", master_id=1, router_id=2)
    got = by_key(LOCAL_ROUTER, customers=[moved, FIBER])
    assert not [k for k in got if k[0] in ("/ppp/secret", "/queue/simple")]


def test_bootstrap_objects() -> None:
    objs = bootstrap_objects(
        RADIUS_ROUTER, radius_address="10.9.9.9", auth_port=1812, acct_port=1813, timeout="2s"
    )
    assert [(o.menu, o.key) for o in objs] == [
        ("/radius", "10.9.9.9"),
        ("/radius/incoming", ""),
        ("/ppp/aaa", ""),
    ]
    assert objs[0].props["service"] == "ppp,hotspot"
    assert objs[0].props["secret"] == "sec"
    assert objs[1].props == {"accept": "yes", "port": "3799"}
