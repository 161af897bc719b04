"""The simulator's RADIUS side against the real FreeRADIUS (SQLite and PostgreSQL).

Customers made through the registry dial in through `SimulatedRouter.nas`; FreeRADIUS
answers from the registry's rows and writes the NAS's accounting into `radacct`; the
provisioner's own outbox sends Disconnect and CoA to the NAS's `/radius/incoming` port.
Time is the NAS's simulated clock (`tick`), so five minutes of interim updates take
milliseconds. The last tests need no FreeRADIUS: parsers, local logins, lifecycle.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import librouteros
import pytest
from sqlalchemy import delete, insert, text

from nas_adapters import radius_client
from nas_adapters.errors import TemporaryNasError
from nas_adapters.routeros_sim import (
    NasSession,
    SimulatedNas,
    SimulatedRouter,
    parse_interval,
    parse_rate,
)
from provisioner import outbox, registry
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import utcnow
from provisioner.radius_tables import radgroupreply, radreply
from tests.support.factories import Factory
from tests.support.freeradius import FreeRadius
from tests.test_freeradius_registry import SECRET, radius  # noqa: F401 (fixture)

GIB = 2**30
POOL = ("pool-home", "10.50.0.2-10.50.0.200")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Isp:
    server: FreeRadius
    ctx: Context
    make: Factory
    sim: SimulatedRouter
    nas: SimulatedNas
    coa_port: int

    def customer(self, username: str = "alice", password: str = "pw", **kw: Any) -> str:
        master = self.make.master(name=f"home-{username}", rate_down="10M", rate_up="2M",
                                  pool_name=POOL[0], pool_ranges=POOL[1])  # fmt: skip
        return self.make.customer(self.make.package(master), "r1", username=username,
                                  password=password, **kw)  # fmt: skip

    def dial(self, username: str = "alice", password: str = "pw", **kw: Any) -> NasSession:
        result = self.nas.dial(username, password, **kw)
        assert result.accepted and result.session, result.reason + self.server.log_tail(30)
        return result.session

    def radacct(self, username: str = "alice") -> list[dict[str, Any]]:
        """The user's radacct rows as FreeRADIUS wrote them (times as epoch seconds)."""
        query = text(
            "SELECT acctsessionid, acctstarttime, acctupdatetime, acctstoptime,"
            " acctsessiontime, acctinputoctets, acctoutputoctets, acctterminatecause,"
            " framedipaddress, callingstationid, nasporttype, nasipaddress"
            " FROM radacct WHERE username = :u ORDER BY radacctid"
        )
        with self.ctx.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(query, {"u": username})]
        for row in rows:
            for key in ("acctstarttime", "acctupdatetime", "acctstoptime"):
                row[key] = _epoch(row[key])
            for key in ("framedipaddress", "nasipaddress"):
                row[key] = str(row[key])
        return rows

    def no_interval_from_radius(self) -> None:
        """The registry may give every package an Acct-Interim-Interval; these tests are
        about the router's own setting, so FreeRADIUS must not send one."""
        with transaction(self.ctx.factory) as s:
            s.execute(
                delete(radgroupreply).where(radgroupreply.c.attribute == "Acct-Interim-Interval")
            )
            s.execute(delete(radreply).where(radreply.c.attribute == "Acct-Interim-Interval"))

    def reply_row(self, username: str, attribute: str, value: str) -> None:
        with transaction(self.ctx.factory) as s:
            s.execute(insert(radreply).values(username=username, attribute=attribute, op=":=",
                                              value=value))  # fmt: skip


def _epoch(value: object) -> int | None:
    """radacct times: epoch integers (stock SQLite queries) or timestamps (PostgreSQL)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())
    return int(str(value))


@pytest.fixture
def isp(radius: Any) -> Iterator[Isp]:  # noqa: F811
    server, ctx, make = radius
    with SimulatedRouter(username="admin", password="pw") as sim:
        port = free_udp_port()
        # The router's side of RADIUS as bootstrap sets it (mapping.routeros.bootstrap_objects).
        sim.add_item("/radius", service="ppp,hotspot", address=server.host, secret=SECRET,
                     authentication_port=server.auth_port, accounting_port=server.acct_port,
                     timeout="3s")  # fmt: skip
        sim.set_item("/radius/incoming", "", accept="yes", port=port)
        sim.set_item("/ppp/aaa", "", use_radius="yes", accounting="yes")
        sim.add_item("/ip/pool", name=POOL[0], ranges=POOL[1])
        with transaction(ctx.factory) as s:
            registry.update_router(s, "test", "r1", {"coa_port": port, "api_port": sim.port})
        nas = sim.nas
        nas.settle()
        assert nas.incoming == ("127.0.0.1", port), nas.listen_error
        yield Isp(server, ctx, make, sim, nas, port)
    assert not nas.running


# ---------------------------------------------------------------------------------------
# Logging in
# ---------------------------------------------------------------------------------------


def test_a_customer_dials_in_gets_the_package_and_a_start_reaches_radacct(isp: Isp) -> None:
    isp.customer()
    session = isp.dial(mac="aa:bb:cc:00:00:01")
    assert session.rate == "2M/10M"
    assert session.address == "10.50.0.2"  # the first of the Framed-Pool the router has
    [row] = isp.sim.items("/ppp/active")
    assert (row["name"], row["service"], row["caller-id"], row["address"], row["radius"]) == (
        "alice", "pppoe", "AA:BB:CC:00:00:01", "10.50.0.2", "true"
    )  # fmt: skip
    [queue] = isp.sim.items("/queue/simple")
    assert (queue["name"], queue["max-limit"], queue["dynamic"]) == (
        "<pppoe-alice>", "2000000/10000000", "true"
    )  # fmt: skip
    assert [u["address"] for u in isp.sim.items("/ip/pool/used")] == ["10.50.0.2"]
    [start] = isp.nas.accounting
    assert start.status == "Start" and start.answered
    [acct] = isp.radacct()
    assert acct["acctsessionid"] == session.session_id
    assert acct["framedipaddress"] == "10.50.0.2" and acct["nasipaddress"] == "127.0.0.1"
    assert acct["callingstationid"] == "AA:BB:CC:00:00:01"
    assert acct["nasporttype"] == "Ethernet"
    assert acct["acctstoptime"] is None


def test_suspended_expired_and_wrong_passwords_are_refused_with_no_session(isp: Isp) -> None:
    isp.customer("sus", status="suspended")
    isp.customer("old", expires_at=utcnow() - timedelta(days=1))
    isp.customer("cut", status="expired")
    isp.customer("bob")
    for user, password in (("sus", "pw"), ("old", "pw"), ("cut", "pw"), ("bob", "nope"),
                           ("nobody", "pw")):  # fmt: skip
        result = isp.nas.dial(user, password)
        assert not result.accepted and result.session is None, user
        assert result.reason, user
        assert result.reply  # FreeRADIUS answered (a Reject), not a timeout
    assert isp.sim.items("/ppp/active") == [] and isp.sim.items("/queue/simple") == []
    assert isp.nas.sessions == [] and isp.nas.accounting == []
    assert all(isp.radacct(u) == [] for u in ("sus", "old", "cut", "bob"))


def test_hotspot_login_needs_use_radius_on_the_hotspot_profile(isp: Isp) -> None:
    master = isp.make.master(name="hs", customer_type="hotspot")
    isp.make.customer(isp.make.package(master), "r1", username="guest", password="pw",
                      customer_type="hotspot")  # fmt: skip
    refused = isp.nas.dial("guest", "pw", service="hotspot", ip="10.5.50.7")
    assert not refused.accepted and "RADIUS not used" in refused.reason
    isp.sim.set_item("/ip/hotspot/profile", "default", use_radius="yes")
    session = isp.dial("guest", service="hotspot", ip="10.5.50.7", mac="02:00:00:00:00:07")
    [row] = isp.sim.items("/ip/hotspot/active")
    assert (row["user"], row["address"], row["mac-address"]) == ("guest", "10.5.50.7",
                                                                 "02:00:00:00:00:07")  # fmt: skip
    [acct] = isp.radacct("guest")
    assert acct["nasporttype"] == "Wireless-802.11" and acct["framedipaddress"] == "10.5.50.7"
    session.hangup()
    assert isp.sim.items("/ip/hotspot/active") == []


# ---------------------------------------------------------------------------------------
# Interim updates on the simulated clock
# ---------------------------------------------------------------------------------------


def test_without_an_interval_no_interim_update_comes_and_the_stop_carries_the_usage(
    isp: Isp,
) -> None:
    isp.customer()
    isp.no_interval_from_radius()
    assert isp.sim.items("/ppp/aaa")[0]["interim-update"] == "0s"  # RouterOS's default
    session = isp.dial(traffic=(1000, 5000))
    assert session.interim_interval == 0
    assert isp.nas.tick(600) == 0
    [acct] = isp.radacct()
    assert acct["acctsessiontime"] == 0 and acct["acctinputoctets"] == 0
    assert acct["acctupdatetime"] == acct["acctstarttime"]  # the Start's, nothing since
    session.hangup()
    assert [a.status for a in isp.nas.accounting] == ["Start", "Stop"]
    [acct] = isp.radacct()
    assert acct["acctstoptime"] is not None and acct["acctterminatecause"] == "User-Request"
    assert acct["acctsessiontime"] == 600
    assert (acct["acctinputoctets"], acct["acctoutputoctets"]) == (600_000, 3_000_000)
    assert isp.sim.items("/ppp/active") == [] and isp.sim.items("/queue/simple") == []
    assert isp.sim.items("/ip/pool/used") == []


def test_the_routers_interim_update_sends_usage_when_due(isp: Isp) -> None:
    isp.customer()
    isp.no_interval_from_radius()
    isp.sim.set_item("/ppp/aaa", "", interim_update="00:05:00")  # as bootstrap would
    assert isp.sim.items("/ppp/aaa")[0]["interim-update"] == "5m"
    isp.nas.event_timestamp = True  # radacct then holds the simulated times
    session = isp.dial(traffic=(1000, 4000))
    assert session.interim_interval == 300
    start = isp.radacct()[0]["acctstarttime"]
    assert isp.nas.tick(299) == 0
    assert isp.radacct()[0]["acctinputoctets"] == 0
    assert isp.nas.tick(1) == 1
    [acct] = isp.radacct()
    assert acct["acctupdatetime"] == start + 300 and acct["acctsessiontime"] == 300
    assert (acct["acctinputoctets"], acct["acctoutputoctets"]) == (300_000, 1_200_000)
    # More than 4 GiB travels in gigawords; FreeRADIUS puts the 64-bit total back together.
    session.add_traffic(5 * GIB, 0)
    assert isp.nas.tick(300) == 1
    [acct] = isp.radacct()
    assert acct["acctinputoctets"] == 600_000 + 5 * GIB
    assert acct["acctupdatetime"] == start + 600 and acct["acctstoptime"] is None
    interim = isp.nas.accounting[-1].attributes
    assert interim["Acct-Input-Gigawords"] == 1 and interim["Acct-Session-Time"] == 600


def test_the_accepts_interval_wins_over_the_routers_and_session_timeout_ends_it(
    isp: Isp,
) -> None:
    isp.customer()
    isp.no_interval_from_radius()
    isp.reply_row("alice", "Acct-Interim-Interval", "60")
    isp.reply_row("alice", "Session-Timeout", "150")
    isp.sim.set_item("/ppp/aaa", "", interim_update="5m")
    session = isp.dial(traffic=(100, 100))
    assert (session.interim_interval, session.session_timeout) == (60, 150)
    assert isp.nas.tick(149) == 2
    assert isp.nas.tick(1) == 1  # the Stop at 150 s
    assert [a.status for a in isp.nas.accounting] == [
        "Start", "Interim-Update", "Interim-Update", "Stop"
    ]  # fmt: skip
    [acct] = isp.radacct()
    assert acct["acctterminatecause"] == "Session-Timeout" and acct["acctsessiontime"] == 150
    assert isp.nas.sessions == [] and isp.sim.items("/ppp/active") == []


def test_accounting_off_on_the_router_sends_nothing(isp: Isp) -> None:
    isp.customer()
    isp.sim.set_item("/ppp/aaa", "", accounting="no", interim_update="1m")
    session = isp.dial()
    isp.nas.tick(120)
    session.hangup()
    assert isp.nas.accounting == [] and isp.radacct() == []


# ---------------------------------------------------------------------------------------
# Sessions that end badly
# ---------------------------------------------------------------------------------------


def test_a_crash_loses_the_stop_and_radacct_keeps_the_session_open(isp: Isp) -> None:
    isp.customer()
    isp.dial()
    assert isp.nas.crash() == 1
    assert isp.nas.sessions == [] and isp.sim.items("/ppp/active") == []
    assert isp.sim.items("/queue/simple") == [] and isp.sim.items("/ip/pool/used") == []
    assert [a.status for a in isp.nas.accounting] == ["Start"]
    [acct] = isp.radacct()
    assert acct["acctstoptime"] is None
    # What a lost Stop costs: with Simultaneous-Use 1, FreeRADIUS believes the customer
    # is still online and refuses the next login.
    again = isp.nas.dial("alice", "pw")
    assert not again.accepted and "already logged in" in again.reason, isp.server.log_tail(30)


def test_a_kick_over_the_api_stops_the_session_with_admin_reset(isp: Isp) -> None:
    isp.customer()
    isp.dial()
    [row] = isp.sim.items("/ppp/active")
    api = librouteros.connect("127.0.0.1", "admin", "pw", port=isp.sim.port, timeout=5)
    try:
        tuple(api("/ppp/active/remove", **{".id": row[".id"]}))
    finally:
        api.close()
    isp.nas.settle()
    assert isp.nas.sessions == []
    [acct] = isp.radacct()
    assert acct["acctterminatecause"] == "Admin-Reset" and acct["acctstoptime"] is not None


# ---------------------------------------------------------------------------------------
# Disconnect and CoA from the provisioner
# ---------------------------------------------------------------------------------------


def test_suspending_a_customer_disconnects_its_session_through_the_outbox(isp: Isp) -> None:
    isp.customer()
    session = isp.dial()
    with transaction(isp.ctx.factory) as s:
        registry.update_customer(s, "test", "alice", {"status": "suspended"})
    outbox.drain(isp.ctx.factory, isp.ctx.settings)
    [seen] = isp.nas.received
    assert (seen.code, seen.answer) == ("Disconnect-Request", "Disconnect-ACK")
    assert seen.attributes["User-Name"] == ["alice"]
    assert seen.attributes["Acct-Session-Id"] == [session.session_id]
    assert isp.nas.sessions == [] and isp.sim.items("/ppp/active") == []
    assert session.ended == "Admin-Reset"
    isp.nas.settle()  # the Stop follows the ACK
    [acct] = isp.radacct()
    assert acct["acctterminatecause"] == "Admin-Reset" and acct["acctstoptime"] is not None
    # The same request again: the session is gone.
    again = radius_client.send_disconnect(
        "127.0.0.1", isp.coa_port, SECRET,
        {"User-Name": "alice", "Acct-Session-Id": session.session_id}, timeout=2,
    )  # fmt: skip
    assert again.code_name == "Disconnect-NAK" and again.error_cause == 503


def test_a_speed_change_reaches_the_live_session_by_coa(isp: Isp) -> None:
    isp.customer()
    session = isp.dial(traffic=(10**9, 10**9))  # more than the rate lets through
    isp.nas.tick(10)
    assert (session.input_octets, session.output_octets) == (2_500_000, 12_500_000)
    with transaction(isp.ctx.factory) as s:
        registry.update_master_package(s, "test", "home-alice", {"rate_down": "25M"})
    outbox.drain(isp.ctx.factory, isp.ctx.settings)
    [seen] = [r for r in isp.nas.received if r.code == "CoA-Request"]
    assert seen.answer == "CoA-ACK" and seen.attributes["Mikrotik-Rate-Limit"] == ["2M/25M"]
    assert session.rate == "2M/25M"
    assert isp.sim.items("/queue/simple")[0]["max-limit"] == "2000000/25000000"
    isp.nas.tick(10)
    assert session.output_octets == 12_500_000 + 31_250_000
    unknown = radius_client.send_coa("127.0.0.1", isp.coa_port, SECRET,
                                     {"User-Name": "bob", "Mikrotik-Rate-Limit": "1M/1M"})  # fmt: skip
    assert unknown.code_name == "CoA-NAK" and unknown.error_cause == 503


def test_a_request_with_the_wrong_secret_is_dropped_unanswered(isp: Isp) -> None:
    isp.customer()
    isp.dial()
    with pytest.raises(TemporaryNasError):
        radius_client.send_disconnect("127.0.0.1", isp.coa_port, "not-the-secret",
                                      {"User-Name": "alice"}, timeout=0.3, retries=1)  # fmt: skip
    isp.nas.settle()
    assert isp.nas.received == [] and len(isp.nas.sessions) == 1
    assert [reason for _, reason in isp.nas.dropped] == ["bad authenticator (wrong secret?)"]


# ---------------------------------------------------------------------------------------
# Without FreeRADIUS
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5m", 300), ("300s", 300), ("00:05:00", 300), ("300", 300), ("1h30m", 5400),
     ("1d 00:00:10", 86410), ("0s", 0), ("", 0), (None, 0), (90, 90)],
)  # fmt: skip
def test_intervals_parse_as_routeros_writes_them(value: str | int | None, seconds: int) -> None:
    assert parse_interval(value) == seconds


def test_bad_intervals_and_rates() -> None:
    with pytest.raises(ValueError):
        parse_interval("five minutes")
    assert parse_rate("2M/10M 4M/20M 1M/5M 10/10 8") == (2_000_000, 10_000_000)
    assert parse_rate("512k") == (512_000, 512_000)
    assert parse_rate("") is None and parse_rate("fast") is None


def test_a_local_secret_logs_in_without_radius_and_the_nas_stops_with_the_router() -> None:
    with SimulatedRouter() as sim:
        sim.add_item("/ip/pool", name="local", ranges="10.9.0.10-10.9.0.11")
        sim.add_item("/ppp/profile", name="p", remote_address="local", rate_limit="1M/4M")
        sim.add_item("/ppp/secret", name="carol", password="pw", profile="p")
        nas = sim.nas
        assert not nas.dial("carol", "wrong").accepted
        result = nas.dial("carol", "pw")
        assert result.accepted and result.session is not None
        assert (result.session.address, result.session.rate) == ("10.9.0.10", "1M/4M")
        assert sim.items("/ppp/active")[0]["radius"] == "false"
        assert nas.accounting == []  # no RADIUS server was asked for anything
        refused = nas.dial("dave", "pw")  # no secret, and /ppp/aaa use-radius=no
        assert not refused.accepted and "RADIUS not used" in refused.reason
        # The optional real-time clock: 100 simulated seconds a second.
        nas.run_clock(100.0)
        deadline = time.monotonic() + 5
        while nas.clock < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        nas.run_clock(None)
        assert nas.clock >= 10 and sim.items("/ppp/active")[0]["uptime"] != "0s"
        threads = [t for t in threading.enumerate() if t.name.startswith("routeros-sim-nas")]
        assert threads
    assert not any(t.is_alive() for t in threads)
    assert not sim.nas.running  # reading it after stop() does not start it again


def test_a_radius_server_beyond_loopback_is_never_contacted() -> None:
    with SimulatedRouter() as sim:
        sim.add_item("/radius", service="ppp", address="192.0.2.1", secret="x", timeout="5s")
        sim.set_item("/ppp/aaa", "", use_radius="yes")
        result = sim.nas.dial("alice", "pw")
        assert not result.accepted and result.reason == "radius timeout"
