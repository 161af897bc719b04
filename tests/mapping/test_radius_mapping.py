"""Master packages, customers and routers → stock FreeRADIUS rows, as tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioner.mapping.radius import (
    RadiusRow,
    customer_rows,
    expired_group_rows,
    group_rows,
    nas_row,
)
from provisioner.rates import RateLimit
from provisioner.snapshots import CustomerSpec, MappingOptions, MasterSpec, RouterSpec

R = RadiusRow
SYM = RateLimit(up=10_000_000, down=10_000_000)
ASYM = RateLimit(up=2_000_000, down=10_000_000)
BURST = RateLimit(
    up=2_000_000,
    down=10_000_000,
    burst_up=4_000_000,
    burst_down=20_000_000,
    threshold_up=1_000_000,
    threshold_down=8_000_000,
    burst_time=10,
    priority=5,
)


def m(
    ctype: str = "pppoe",
    rate: RateLimit = ASYM,
    cap: int | None = None,
    pool: str | None = "pool1",
    shared: int = 1,
) -> MasterSpec:
    return MasterSpec(1, "home", ctype, "monthly", rate, "home", pool, "10.0.0.2-10.0.0.9" if pool else None,
                      volume_cap=cap, shared_users=shared)  # fmt: skip


@pytest.mark.parametrize(
    ("master", "rows"),
    [
        pytest.param(m(rate=SYM), [
            R("radgroupcheck", "home", "Simultaneous-Use", ":=", "1"),
            R("radgroupreply", "home", "Framed-Pool", ":=", "pool1"),
            R("radgroupreply", "home", "Mikrotik-Group", ":=", "home"),
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "10M/10M"),
        ], id="pppoe-no-cap"),
        pytest.param(m(rate=ASYM, shared=2), [
            R("radgroupcheck", "home", "Simultaneous-Use", ":=", "2"),
            R("radgroupreply", "home", "Framed-Pool", ":=", "pool1"),
            R("radgroupreply", "home", "Mikrotik-Group", ":=", "home"),
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "2M/10M"),
        ], id="asymmetric-upload-first"),
        pytest.param(m(rate=BURST), [
            R("radgroupcheck", "home", "Simultaneous-Use", ":=", "1"),
            R("radgroupreply", "home", "Framed-Pool", ":=", "pool1"),
            R("radgroupreply", "home", "Mikrotik-Group", ":=", "home"),
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "2M/10M 4M/20M 1M/8M 10/10 5"),
        ], id="burst-and-priority"),
        pytest.param(m(cap=3 * 2**30), [
            R("radgroupcheck", "home", "Simultaneous-Use", ":=", "1"),
            R("radgroupreply", "home", "Framed-Pool", ":=", "pool1"),
            R("radgroupreply", "home", "Mikrotik-Group", ":=", "home"),
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "2M/10M"),
            R("radgroupreply", "home", "Mikrotik-Total-Limit", ":=", str(3 * 2**30)),
        ], id="cap-under-4GiB"),
        pytest.param(m(ctype="hotspot", cap=50 * 2**30 + 5), [
            R("radgroupcheck", "home", "Simultaneous-Use", ":=", "1"),
            R("radgroupreply", "home", "Framed-Pool", ":=", "pool1"),
            R("radgroupreply", "home", "Mikrotik-Group", ":=", "home"),
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "2M/10M"),
            R("radgroupreply", "home", "Mikrotik-Total-Limit", ":=", str((50 * 2**30 + 5) % 2**32)),
            R("radgroupreply", "home", "Mikrotik-Total-Limit-Gigawords", ":=", "12"),
        ], id="hotspot-cap-over-4GiB"),
        pytest.param(m(cap=4 * 2**30), [
            R("radgroupcheck", "home", "Simultaneous-Use", ":=", "1"),
            R("radgroupreply", "home", "Framed-Pool", ":=", "pool1"),
            R("radgroupreply", "home", "Mikrotik-Group", ":=", "home"),
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "2M/10M"),
            R("radgroupreply", "home", "Mikrotik-Total-Limit", ":=", "0"),
            R("radgroupreply", "home", "Mikrotik-Total-Limit-Gigawords", ":=", "1"),
        ], id="cap-exactly-4GiB"),
        pytest.param(m(ctype="static"), [
            R("radgroupreply", "home", "Mikrotik-Rate-Limit", "=", "2M/10M"),
        ], id="static"),
        pytest.param(m(ctype="other"), [], id="other"),
    ],
)  # fmt: skip
def test_group_rows(master: MasterSpec, rows: list[RadiusRow]) -> None:
    assert group_rows(master, MappingOptions(interim_interval=0)) == sorted(rows)


@pytest.mark.parametrize("ctype", ["pppoe", "hotspot"])
def test_every_session_is_told_to_send_interim_updates(ctype: str) -> None:
    """A router sends a live session's usage only at logout unless told an interval: fair
    usage and stale-session repair need it (default 300 s, from the settings)."""
    [row] = [r for r in group_rows(m(ctype=ctype)) if r.attribute == "Acct-Interim-Interval"]
    assert row == R("radgroupreply", "home", "Acct-Interim-Interval", ":=", "300")
    assert not [r for r in group_rows(m(ctype=ctype), MappingOptions(interim_interval=0))
                if r.attribute == "Acct-Interim-Interval"]  # fmt: skip


def test_customer_rows_active_with_expiry_and_pinned_ip() -> None:
    c = CustomerSpec(1, "alice", "s3cret", "pppoe", "active", master_id=1, static_ip="10.0.0.5",
                     expires_at=datetime(2027, 1, 1, tzinfo=UTC))  # fmt: skip
    assert customer_rows(c, m()) == sorted([
        R("radcheck", "alice", "Cleartext-Password", ":=", "s3cret"),
        R("radcheck", "alice", "Expiration", ":=", "Jan 01 2027 00:00:00"),
        R("radreply", "alice", "Framed-IP-Address", ":=", "10.0.0.5"),
        R("radusergroup", "alice", "home", "", "1"),
    ])  # fmt: skip


@pytest.mark.parametrize("status", ["expired", "suspended", "new"])
def test_cut_off_customers_go_to_the_expired_group(status: str) -> None:
    c = CustomerSpec(1, "alice", "pw", "hotspot", status, master_id=1)
    rows = customer_rows(c, m(), MappingOptions(expired_group="cut"))
    assert R("radusergroup", "alice", "cut", "", "0") in rows
    assert not [r for r in rows if r.table == "radusergroup" and r.attribute == "home"]
    assert expired_group_rows(MappingOptions(expired_group="cut")) == [
        R("radgroupcheck", "cut", "Auth-Type", ":=", "Reject")
    ]


def test_other_customer_has_no_rows_and_router_is_a_nas() -> None:
    assert (
        customer_rows(CustomerSpec(1, "f", "pw", "other", "active", master_id=1), m("other")) == []
    )
    n = nas_row(RouterSpec(7, "core-1", "10.9.0.1", frozenset({"pppoe"}), "radius", "sec"))
    assert (n.nasname, n.shortname, n.secret, n.type) == ("10.9.0.1", "core-1", "sec", "other")
    assert n.description == "provisioner:router:7"
