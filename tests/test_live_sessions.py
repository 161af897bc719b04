"""Live sessions end to end: the RouterOS simulator's NAS dials in through the real
FreeRADIUS (``tests/test_routeros_sim_nas.py``'s ``isp``), on SQLite and PostgreSQL.

- Fair usage acts on a session that is still open: the daemon's RADIUS rows tell every
  session to send interim updates (nothing else here does: the simulated router's own
  interim-update is 0s), so usage reaches radacct before logout, the customer is
  throttled and the live session gets the reduced rate by CoA.
- A router killed without its Stop leaves the session open and the customer refused
  ("already logged in"); three silent intervals and one sweep later it logs in again.
- A suspended customer whose Disconnect was lost is found by the sweep and cut: the NAS
  receives the Disconnect.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from provisioner import fup, outbox, registry, sweep
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.models import Customer, Outbox, utcnow
from tests.test_freeradius_registry import radius  # noqa: F401 (fixture)
from tests.test_routeros_sim_nas import POOL, Isp, isp  # noqa: F401 (fixture)

MB = 10**6
ADMIN = Principal("admin", name="test")


def activated(isp: Isp, username: str = "alice", **master: Any) -> None:  # noqa: F811
    m = isp.make.master(name=f"home-{username}", rate_down="10M", rate_up="2M",
                        pool_name=POOL[0], pool_ranges=POOL[1], **master)  # fmt: skip
    pkg = isp.make.package(m)
    isp.make.customer(None, "r1", username=username, password="pw", status="new")
    run_activation(isp.ctx.factory, ADMIN, ActivationRequest(username, pkg, f"k-{username}"))


def test_fair_usage_throttles_a_session_still_online(isp: Isp) -> None:  # noqa: F811
    activated(isp, fup_threshold="100M", fup_down="2M", fup_up="1M")
    assert isp.sim.items("/ppp/aaa")[0]["interim-update"] == "0s"  # the router's own: none
    session = isp.dial()
    assert session.interim_interval == isp.ctx.settings.acct_interim_interval_seconds
    session.add_traffic(20 * MB, 150 * MB)  # 170 MB this cycle, still online
    assert isp.nas.tick(isp.ctx.settings.acct_interim_interval_seconds) >= 1
    isp.nas.settle()
    [acct] = isp.radacct()
    assert acct["acctstoptime"] is None and acct["acctoutputoctets"] >= 150 * MB
    assert fup.check(isp.ctx.factory) == 1  # past its 100 MB: throttled
    outbox.drain(isp.ctx.factory, isp.ctx.settings)
    coa = [r for r in isp.nas.received if r.code == "CoA-Request"]
    assert [r.answer for r in coa] == ["CoA-ACK"], isp.nas.received
    assert session.rate is not None and session.rate.startswith("1M/2M"), session.rate
    assert session.ended is None  # throttled, not cut


def test_a_router_killed_without_its_stop_lets_the_customer_back_in_after_a_sweep(
    isp: Isp,  # noqa: F811
) -> None:
    activated(isp)
    isp.dial()
    assert isp.nas.crash() == 1  # no Stop: radacct keeps it open
    refused = isp.nas.dial("alice", "pw")
    assert not refused.accepted and "already logged in" in refused.reason
    interval = isp.ctx.settings.acct_interim_interval_seconds
    assert sweep.run(isp.ctx.factory, isp.ctx.settings) == []  # not silent long enough
    later = utcnow() + timedelta(seconds=3 * interval + 1)
    [closed] = sweep.run(isp.ctx.factory, isp.ctx.settings, later)
    assert (closed.action, closed.username) == ("close", "alice")
    [acct] = isp.radacct()
    assert acct["acctstoptime"] is not None and acct["acctterminatecause"] == sweep.STALE_CAUSE
    assert isp.dial().username == "alice"  # back online


def test_a_suspended_customers_session_that_survived_a_lost_disconnect_is_cut(
    isp: Isp,  # noqa: F811
) -> None:
    activated(isp)
    session = isp.dial()
    with transaction(isp.ctx.factory) as s:
        registry.update_customer(s, "test", "alice", {"status": "suspended"})
        # The Disconnect is lost: its work is gone before the drain sends it.
        s.execute(update(Outbox).where(Outbox.kind == "disconnect").values(status="done"))
    outbox.drain(isp.ctx.factory, isp.ctx.settings)
    assert session.ended is None and isp.nas.received == []  # still online, without a right
    [cut] = sweep.run(isp.ctx.factory, isp.ctx.settings)
    assert (cut.action, cut.why) == ("disconnect", "its customer is suspended")
    outbox.drain(isp.ctx.factory, isp.ctx.settings)
    [seen] = isp.nas.received
    assert (seen.code, seen.answer) == ("Disconnect-Request", "Disconnect-ACK")
    assert session.ended == "Admin-Reset" and isp.nas.sessions == []
    with transaction(isp.ctx.factory) as s:
        assert s.query(Customer).one().status == "suspended"
