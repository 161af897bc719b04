"""Fair usage end to end: the real FreeRADIUS (SQLite and PostgreSQL), accounting packets
through it, CoA to a pyrad server on loopback.

Interim updates that cross the threshold → CoA with the reduced rate → a new login gets
the reduced rate → the next cycle restores the full rate the same way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyrad.client
import pyrad.packet

from nas_adapters import radius_client
from provisioner import activation, fup, outbox, registry
from provisioner.activation import ActivationRequest
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.models import Customer
from provisioner.refs import get_by_name
from tests.support.coa_server import CoaServer
from tests.support.freeradius import FreeRadius
from tests.test_freeradius_registry import SECRET, auth, radius  # noqa: F401 (fixture)

GIB = 2**30


def accounting(server: FreeRadius, status: str, **counters: int) -> None:
    """One Accounting-Request from "the router" (127.0.0.1) through FreeRADIUS."""
    client = pyrad.client.Client(
        server=server.host,
        acctport=server.acct_port,
        secret=SECRET.encode(),
        dict=radius_client.load_dictionary(),
        retries=1,
        timeout=3,
    )
    pkt = client.CreateAcctPacket(code=pyrad.packet.AccountingRequest)
    attrs: dict[str, Any] = {
        "User-Name": "alice",
        "Acct-Status-Type": status,
        "Acct-Session-Id": "81c00001",
        "NAS-IP-Address": "127.0.0.1",
        "NAS-Port": 1,
        "Framed-IP-Address": "10.70.0.9",
    }
    attrs.update({k.replace("_", "-"): v for k, v in counters.items()})
    for name, value in attrs.items():
        pkt.AddAttribute(name, value)
    reply = client.SendPacket(pkt)
    assert reply.code == pyrad.packet.AccountingResponse, server.log_tail()


def rate(server: FreeRadius) -> list[Any]:
    reply = auth(server, "alice", "pw")
    assert reply.accepted, server.log_tail()
    return list(reply.attributes["Mikrotik-Rate-Limit"])


def test_interim_updates_past_the_threshold_throttle_and_the_next_cycle_restores(
    radius: Any,  # noqa: F811
) -> None:
    server, ctx, make = radius
    home = make.master(name="home", rate_down="20M", rate_up="5M", fup_threshold="2G",
                       fup_down="2M", fup_up="1M", shared_users=2, pool_name="pool-fup",
                       pool_ranges="10.70.0.2-10.70.0.200")  # fmt: skip
    pkg = make.package(home)
    make.customer(None, "r1", username="alice", password="pw", status="new")
    admin = Principal("admin")
    with CoaServer(SECRET) as coa:
        with transaction(ctx.factory) as s:
            registry.update_router(s, "test", "r1", {"coa_port": coa.port})
        activation.run_activation(ctx.factory, admin, ActivationRequest("alice", pkg, "k1"))
        assert rate(server) == ["5M/20M"]
        accounting(server, "Start")
        # 1.5 GiB so far: under the threshold, nothing changes.
        accounting(server, "Interim-Update", Acct_Input_Octets=GIB // 2, Acct_Output_Octets=GIB)
        assert fup.check(ctx.factory) == 0
        with transaction(ctx.factory) as s:
            used = fup.usage(s, get_by_name(s, Customer, "alice", "username"))
            assert used.used == GIB // 2 + GIB and used.threshold == 2 * GIB
            assert used.throttled_until is None
        # Past it, with the download counter wrapped into gigawords (1 GiB + 2 GiB).
        accounting(server, "Interim-Update", Acct_Input_Octets=GIB, Acct_Output_Octets=0,
                   Acct_Output_Gigawords=1)  # fmt: skip
        assert fup.check(ctx.factory) == 1
        assert fup.check(ctx.factory) == 0  # once
        assert outbox.drain(ctx.factory, ctx.settings)["done"] >= 1
        [(code, attrs)] = coa.received
        assert code == "CoA-Request"
        assert attrs["User-Name"] == ["alice"] and attrs["Acct-Session-Id"] == ["81c00001"]
        assert attrs["Mikrotik-Rate-Limit"] == ["1M/2M"]
        assert rate(server) == ["1M/2M"]  # the next login too
        with transaction(ctx.factory) as s:
            alice = get_by_name(s, Customer, "alice", "username")
            used = fup.usage(s, alice)
            assert used.used == GIB + 4 * GIB and used.throttled_until == used.cycle_end
            end = used.cycle_end
        assert end is not None
        # Renewed ahead of time: the new cycle starts when this one ends, and so does the
        # full rate; the open session's bytes belong to the cycle it was counted in.
        activation.run_activation(ctx.factory, admin, ActivationRequest("alice", pkg, "k2"))
        assert fup.check(ctx.factory) == 0
        assert fup.check(ctx.factory, now=end + timedelta(minutes=1)) == 1
        outbox.drain(ctx.factory, ctx.settings)
        assert [(c, a["Mikrotik-Rate-Limit"]) for c, a in coa.received[1:]] == [
            ("CoA-Request", ["5M/20M"])
        ]
        assert rate(server) == ["5M/20M"]
        accounting(server, "Stop", Acct_Input_Octets=GIB, Acct_Output_Octets=0,
                   Acct_Output_Gigawords=1)  # fmt: skip


def test_a_renewal_that_starts_a_new_cycle_now_restores_at_once(radius: Any) -> None:  # noqa: F811
    server, ctx, make = radius
    home = make.master(name="home", billing="daily", duration_days=1, rate_down="20M",
                       rate_up="5M", fup_threshold="1G", fup_down="2M", fup_up="1M", shared_users=2)  # fmt: skip
    other = make.master(name="home-b", billing="daily", duration_days=1, rate_down="30M",
                        rate_up="5M", fup_threshold="1G", fup_down="3M", fup_up="1M", shared_users=2)  # fmt: skip
    make.customer(None, "r1", username="alice", password="pw", status="new")
    admin = Principal("admin")
    activation.run_activation(ctx.factory, admin,
                              ActivationRequest("alice", make.package(home), "k1"))  # fmt: skip
    accounting(server, "Start")
    accounting(server, "Interim-Update", Acct_Input_Octets=0, Acct_Output_Gigawords=1)
    assert fup.check(ctx.factory) == 1
    assert rate(server) == ["1M/2M"]
    # Another package starts its period now: its usage starts from zero.
    activation.run_activation(ctx.factory, admin,
                              ActivationRequest("alice", make.package(other, name="B"), "k2"))  # fmt: skip
    assert rate(server) == ["5M/30M"]


def test_usage_in_the_api_and_cli_and_a_package_without_fair_usage_restores(
    ctx: Any, make: Any, monkeypatch: Any
) -> None:
    """Usage per customer per cycle, as the customer itself, an admin and the CLI see it;
    another customer's is a 404."""
    import importlib
    import json

    from fastapi.testclient import TestClient
    from sqlalchemy import insert
    from typer.testing import CliRunner

    from provisioner.api import create_app
    from provisioner.auth import create_token
    from provisioner.models import utcnow
    from provisioner.radius_tables import radacct

    make.router(None, host="10.0.0.1", radius_secret=SECRET, mode="radius")
    home = make.master(name="home", rate_down="20M", rate_up="5M", fup_threshold="1G",
                       fup_down="2M", fup_up="1M")  # fmt: skip
    pkg = make.package(home)
    for name in ("alice", "bob"):
        make.customer(None, "r1", username=name, password="pw", status="new")
        activation.run_activation(ctx.factory, Principal("admin"),
                                  ActivationRequest(name, pkg, f"k-{name}"))  # fmt: skip
    with transaction(ctx.factory) as s:
        s.execute(insert(radacct).values(
            acctsessionid="s1", acctuniqueid="u1", username="alice", nasipaddress="10.0.0.1",
            acctstarttime=utcnow(), acctinputoctets=GIB, acctoutputoctets=GIB // 4,
        ))  # fmt: skip
        s.execute(insert(radacct).values(  # the last cycle's: not this one's
            acctsessionid="s0", acctuniqueid="u0", username="alice", nasipaddress="10.0.0.1",
            acctstarttime=utcnow() - timedelta(days=40), acctstoptime=utcnow() - timedelta(days=35),
            acctinputoctets=100 * GIB, acctoutputoctets=0,
        ))  # fmt: skip
        admin = create_token(s, role="admin")
        mine = create_token(s, role="customer", customer="alice")
    assert fup.check(ctx.factory) == 1
    with TestClient(create_app(ctx)) as client:
        got = client.get(
            "/api/v1/customers/alice/usage", headers={"Authorization": f"Bearer {mine}"}
        )
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["used_bytes"] == GIB + GIB // 4 and body["threshold_bytes"] == GIB
        assert body["throttled"] and body["rate_limit"] == "1M/2M"
        assert body["throttled_until"] == body["cycle_end"]
        other = client.get(
            "/api/v1/customers/bob/usage", headers={"Authorization": f"Bearer {mine}"}
        )
        assert other.status_code == 404
        bob = client.get(
            "/api/v1/customers/bob/usage", headers={"Authorization": f"Bearer {admin}"}
        )
        assert bob.json()["used_bytes"] == 0 and not bob.json()["throttled"]
    common = importlib.import_module("provisioner.cli.common")
    monkeypatch.setattr(common, "_ctx", ctx)
    result = CliRunner().invoke(importlib.import_module("provisioner.cli").app,
                                ["customer", "usage", "alice", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["used_bytes"] == GIB + GIB // 4
    # The package loses its fair usage: the throttle goes at the next run.
    with transaction(ctx.factory) as s:
        registry.update_master_package(s, "t", "home", {"fup_threshold": None, "fup_down": None,
                                                        "fup_up": None})  # fmt: skip
    assert fup.check(ctx.factory) == 1
    with transaction(ctx.factory) as s:
        assert get_by_name(s, Customer, "alice", "username").throttled_until is None
