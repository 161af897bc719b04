"""IPv6 delegated prefixes → RADIUS reply rows and RouterOS objects, as tables (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from provisioner.mapping.menus import IPV6_POOL, MANAGED_PROPS, NO_COMMENT, POOL, PPP_PROFILE
from provisioner.mapping.radius import MANAGED, RadiusRow, customer_rows
from provisioner.mapping.routeros import desired_objects, menus_to_read
from provisioner.rates import RateLimit
from provisioner.snapshots import CustomerSpec, MappingOptions, MasterSpec, RouterSpec

R = RadiusRow
RATE = RateLimit(up=2_000_000, down=10_000_000)
PLAIN = MasterSpec(1, "home", "pppoe", "monthly", RATE, "home", "pool-home", "10.1.0.2-10.1.0.9")
V6 = replace(
    PLAIN, ipv6_pool_name="v6-home", ipv6_prefix="2001:db8:100::/40", ipv6_prefix_length=56
)
FRAMED = replace(V6, framed_ipv6_prefix=True)
ALICE = CustomerSpec(1, "alice", "pw", "pppoe", "active", master_id=1, router_id=1)
WITH_PREFIX = replace(ALICE, delegated_prefix="2001:db8:100:100::/56")
PASSWORD = R("radcheck", "alice", "Cleartext-Password", ":=", "pw")
GROUP = R("radusergroup", "alice", "home", "", "1")
DELEGATED = R("radreply", "alice", "Delegated-IPv6-Prefix", ":=", "2001:db8:100:100::/56")
FRAMED_ROW = R("radreply", "alice", "Framed-IPv6-Prefix", ":=", "2001:db8:100:100::/56")
EXPIRED = R("radusergroup", "alice", "provisioner-expired", "", "0")


@pytest.mark.parametrize(
    ("customer", "master", "rows"),
    [
        pytest.param(ALICE, PLAIN, [PASSWORD, GROUP], id="no-ipv6"),
        pytest.param(ALICE, V6, [PASSWORD, GROUP], id="pool-but-no-prefix-yet"),
        pytest.param(WITH_PREFIX, V6, [PASSWORD, DELEGATED, GROUP], id="delegated"),
        pytest.param(
            WITH_PREFIX, FRAMED, [PASSWORD, FRAMED_ROW, DELEGATED, GROUP], id="and-framed"
        ),
        # A stale prefix of a package that lost its pool is never handed out.
        pytest.param(WITH_PREFIX, PLAIN, [PASSWORD, GROUP], id="package-without-ipv6"),
        pytest.param(WITH_PREFIX, None, [PASSWORD, EXPIRED], id="no-package"),
        # Cut off: rejected by the expired group; the prefix stays reserved meanwhile.
        pytest.param(
            replace(WITH_PREFIX, status="expired"), V6, [PASSWORD, DELEGATED, EXPIRED], id="cut-off"
        ),
    ],
)
def test_customer_reply_rows(
    customer: CustomerSpec, master: MasterSpec | None, rows: list[RadiusRow]
) -> None:
    assert customer_rows(customer, master) == sorted(rows)


def test_ipv6_reply_attributes_are_managed() -> None:
    assert {"Delegated-IPv6-Prefix", "Framed-IPv6-Prefix"} <= MANAGED["radreply"]


LOCAL = RouterSpec(1, "r1", "10.0.0.1", frozenset({"pppoe"}), "local", "sec")


def by_menu(objs: list, menu: str) -> dict[str, dict[str, str]]:  # type: ignore[type-arg]
    return {o.key: o.props for o in objs if o.menu == menu}


@pytest.mark.parametrize(
    ("masters", "pools", "profile_pool"),
    [
        pytest.param([PLAIN], {}, None, id="no-ipv6"),
        pytest.param(
            [V6],
            {"v6-home": {"name": "v6-home", "prefix": "2001:db8:100::/40", "prefix-length": "56"}},
            "v6-home",
            id="pool-and-profile",
        ),
        # Two packages sharing one pool: one /ipv6/pool.
        pytest.param(
            [V6, replace(V6, id=2, name="fast", profile_name="fast")],
            {"v6-home": {"name": "v6-home", "prefix": "2001:db8:100::/40", "prefix-length": "56"}},
            "v6-home",
            id="shared-pool",
        ),
        pytest.param([replace(V6, customer_type="hotspot")], {}, None, id="not-pppoe"),
        # Another package has IPv6: this profile says it has none.
        pytest.param(
            [PLAIN, replace(V6, id=2, name="fast", profile_name="fast")],
            {"v6-home": {"name": "v6-home", "prefix": "2001:db8:100::/40", "prefix-length": "56"}},
            "none",
            id="other-package-has-ipv6",
        ),
    ],
)
def test_local_mode_ipv6_pool_and_profile(
    masters: list[MasterSpec], pools: dict[str, dict[str, str]], profile_pool: str | None
) -> None:
    objs = desired_objects(LOCAL, masters, [ALICE])
    assert by_menu(objs, IPV6_POOL) == pools
    profile = by_menu(objs, PPP_PROFILE).get("home", {})
    assert profile.get("remote-ipv6-prefix-pool") == profile_pool
    # The pool is written before the profile naming it.
    menus = [o.menu for o in objs]
    if pools:
        assert menus.index(IPV6_POOL) < menus.index(PPP_PROFILE)


def test_a_pool_of_ours_left_on_the_router_clears_the_profiles_naming_it() -> None:
    objs = desired_objects(LOCAL, [PLAIN], [ALICE], ipv6_owned=True)
    assert by_menu(objs, IPV6_POOL) == {}
    assert by_menu(objs, PPP_PROFILE)["home"]["remote-ipv6-prefix-pool"] == "none"


def test_ipv6_pool_has_no_comment_and_its_properties_are_managed() -> None:
    assert IPV6_POOL in NO_COMMENT
    assert MANAGED_PROPS[IPV6_POOL] == ["prefix", "prefix-length"]
    assert "remote-ipv6-prefix-pool" in MANAGED_PROPS[PPP_PROFILE]


@pytest.mark.parametrize(
    ("types", "masters", "owned", "reads_ipv6"),
    [
        ({"pppoe"}, [PLAIN], (), False),  # a router without IPv6 is never asked
        ({"pppoe"}, [V6], (), True),
        ({"pppoe"}, [PLAIN], (IPV6_POOL,), True),  # ours to remove
        ({"hotspot"}, [V6], (), False),
    ],
)
def test_ipv6_pool_is_read_only_when_needed(
    types: set[str], masters: list[MasterSpec], owned: tuple[str, ...], reads_ipv6: bool
) -> None:
    router = RouterSpec(1, "r1", "10.0.0.1", frozenset(types), "radius", "sec")
    menus = menus_to_read(router, MappingOptions(), masters, owned)
    assert (IPV6_POOL in menus) is reads_ipv6
    assert POOL in menus
