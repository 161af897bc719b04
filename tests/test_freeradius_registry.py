"""The real FreeRADIUS reading the tables the registry writes (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nas_adapters import radius_client
from provisioner import registry
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import utcnow
from tests.support.factories import Factory
from tests.support.freeradius import FreeRadius, freeradius_available, postgresql_driver_available
from tests.support.require import require

SECRET = "s3cret"


@pytest.fixture
def radius(
    ctx_factory: Any, backend: str, tmp_path: Path
) -> Iterator[tuple[FreeRadius, Context, Factory]]:
    require(freeradius_available(), "FreeRADIUS is not installed (scripts/install-freeradius.sh)")
    if backend == "postgresql":
        require(postgresql_driver_available(), "freeradius-postgresql is not installed")
    ctx = ctx_factory(backend)
    make = Factory(ctx)
    # The router (our test process on 127.0.0.1) must be in `nas` before FreeRADIUS starts.
    make.router(None, host="127.0.0.1", radius_secret=SECRET, mode="radius")
    url = ctx.engine.url
    if backend == "postgresql":
        kw: dict[str, Any] = {
            "dialect": "postgresql",
            "pg": {
                "host": url.host,
                "port": url.port,
                "user": url.username,
                "password": "",
                "dbname": url.database,
            },
        }
    else:
        kw = {"dialect": "sqlite", "sqlite_path": url.database}
    with FreeRadius(**kw, workdir=tmp_path / "fr") as server:
        yield server, ctx, make


def auth(server: FreeRadius, user: str, password: str) -> radius_client.RadiusReply:
    return radius_client.authenticate(
        server.host, server.auth_port, SECRET, user, password, timeout=3
    )


def test_pppoe_customer_gets_package_attributes_and_speed_change_applies_at_once(
    radius: Any,
) -> None:
    server, ctx, make = radius
    home = make.master(
        name="home",
        rate_down="10M",
        rate_up="2M",
        pool_name="pool-home",
        pool_ranges="10.50.0.2-10.50.0.200",
    )
    make.customer(
        make.package(home),
        "r1",
        username="alice",
        password="alice-pw",
        expires_at=utcnow() + timedelta(days=30),
    )
    reply = auth(server, "alice", "alice-pw")
    assert reply.accepted, server.log_tail()
    assert reply.attributes["Mikrotik-Rate-Limit"] == ["2M/10M"]
    assert reply.attributes["Framed-Pool"] == ["pool-home"]
    assert reply.attributes["Mikrotik-Group"] == ["home"]
    assert 0 < reply.attributes["Session-Timeout"][0] <= 30 * 86400
    with transaction(ctx.factory) as s:
        registry.update_master_package(
            s,
            "test",
            "home",
            {
                "rate_down": "25M",
                "burst_down": "50M",
                "burst_up": "4M",
                "burst_threshold_down": "20M",
                "burst_threshold_up": "1M",
                "burst_time": "10",
            },
        )
    reply = auth(server, "alice", "alice-pw")
    assert reply.attributes["Mikrotik-Rate-Limit"] == ["2M/25M 4M/50M 1M/20M 10/10"]


def test_wrong_password_is_rejected(radius: Any) -> None:
    server, _ctx, make = radius
    make.customer(make.package(make.master(name="home")), "r1", username="bob", password="right")
    assert not auth(server, "bob", "wrong").accepted
    assert auth(server, "bob", "right").accepted


def test_expired_customer_is_rejected(radius: Any) -> None:
    server, ctx, make = radius
    pkg = make.package(make.master(name="home"))
    make.customer(pkg, "r1", username="old", password="pw", expires_at=utcnow() - timedelta(days=1))
    assert not auth(server, "old", "pw").accepted
    # Cut off by status too: the expired group rejects whatever the date says.
    make.customer(pkg, "r1", username="cut", password="pw", status="expired")
    assert not auth(server, "cut", "pw").accepted
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "test", "cut", {"status": "active"})
    assert auth(server, "cut", "pw").accepted


def test_static_customer_gets_framed_ip_and_cap_over_4gib_is_split(radius: Any) -> None:
    server, _ctx, make = radius
    biz = make.master(
        name="biz",
        customer_type="static",
        pool_name="pool-biz",
        pool_ranges="10.60.0.10-10.60.0.20",
    )
    user = make.customer(
        make.package(biz), "r1", username="corp", password="pw", customer_type="static"
    )
    reply = auth(server, user, "pw")
    assert reply.accepted and reply.attributes["Framed-IP-Address"] == ["10.60.0.10"]
    hs = make.master(name="hs", customer_type="hotspot", volume_cap=str(10 * 2**30 + 1))
    make.customer(make.package(hs), "r1", username="guest", password="pw", customer_type="hotspot")
    reply = auth(server, "guest", "pw")
    assert reply.attributes["Mikrotik-Total-Limit"] == [(10 * 2**30 + 1) % 2**32]
    assert reply.attributes["Mikrotik-Total-Limit-Gigawords"] == [2]


def test_radius_drift_is_shown_and_repaired_touching_only_our_rows(radius: Any) -> None:
    from sqlalchemy import insert, select, update

    from provisioner import radius_store
    from provisioner.radius_tables import radgroupreply, radreply
    from provisioner.state import options

    server, ctx, make = radius
    make.customer(make.package(make.master(name="home")), "r1", username="alice", password="pw")
    with transaction(ctx.factory) as s:
        s.execute(
            update(radgroupreply)
            .where(radgroupreply.c.attribute == "Mikrotik-Rate-Limit")
            .values(value="1k/1k")
        )
        s.execute(
            insert(radreply).values(
                username="alice", attribute="Mikrotik-Address-List", op="+=", value="vip"
            )
        )
    with transaction(ctx.factory) as s:
        plan = radius_store.plan(s, options(ctx.settings))
        assert [(c.action, c.menu, c.key) for c in plan.changes] == [
            ("set", "radgroupreply", "home|Mikrotik-Rate-Limit")
        ]
        radius_store.apply(s, plan)
    with transaction(ctx.factory) as s:
        assert radius_store.plan(s, options(ctx.settings)).changes == ()
        kept = (
            s.execute(
                select(radreply.c.value).where(radreply.c.attribute == "Mikrotik-Address-List")
            )
            .scalars()
            .all()
        )
        assert kept == ["vip"]
    reply = auth(server, "alice", "pw")
    assert reply.attributes["Mikrotik-Rate-Limit"] == ["5M/10M"] and reply.attributes[
        "Mikrotik-Address-List"
    ] == ["vip"]


def test_expired_pppoe_customer_is_rejected_and_disconnected(radius: Any) -> None:
    """The whole cut-off: activation, a live session, expiry, Reject, Disconnect-Request."""
    from sqlalchemy import insert, update

    from provisioner import activation, outbox
    from provisioner.activation import ActivationRequest
    from provisioner.auth import Principal
    from provisioner.radius_tables import radacct
    from tests.support.coa_server import CoaServer

    server, ctx, make = radius
    pkg = make.package(make.master(name="home"))
    make.customer(None, "r1", username="alice", password="pw", status="new")
    with CoaServer(SECRET) as coa:
        with transaction(ctx.factory) as s:
            registry.update_router(s, "test", "r1", {"coa_port": coa.port})
        activation.run_activation(
            ctx.factory, Principal("admin"), ActivationRequest("alice", pkg, "k1"))
        assert auth(server, "alice", "pw").accepted
        with transaction(ctx.factory) as s:  # the router's Accounting-Start for that login
            s.execute(
                insert(radacct).values(
                    acctsessionid="81b00007",
                    acctuniqueid="uniq-7",
                    username="alice",
                    nasipaddress="127.0.0.1",
                    acctstarttime=utcnow(),
                    framedipaddress="10.5.0.9",
                )
            )
        assert (
            activation.expire_due(ctx.factory, now=utcnow() + timedelta(days=40)) == 1
        )
        assert not auth(server, "alice", "pw").accepted
        assert outbox.drain(ctx.factory, ctx.settings)["done"] >= 1
        [(code, attrs)] = coa.received
        assert code == "Disconnect-Request"
        assert attrs["User-Name"] == ["alice"] and attrs["Acct-Session-Id"] == ["81b00007"]
        with transaction(ctx.factory) as s:  # the router's Accounting-Stop after the Disconnect
            s.execute(
                update(radacct)
                .where(radacct.c.acctuniqueid == "uniq-7")
                .values(acctstoptime=utcnow())
            )
        activation.run_activation(
            ctx.factory, Principal("admin"), ActivationRequest("alice", pkg, "k2"))
        assert auth(server, "alice", "pw").accepted


def radclient(server: FreeRadius, request: str) -> tuple[int, str]:
    """Debian's radclient: it computes MS-CHAP itself from ``MS-CHAP-Password``."""
    import shutil
    import subprocess

    exe = shutil.which("radclient")
    require(exe is not None, "radclient is not installed (freeradius-utils)")
    done = subprocess.run(
        [str(exe), "-x", "-r", "1", "-t", "3", f"{server.host}:{server.auth_port}", "auth", SECRET],
        input=request,
        capture_output=True,
        text=True,
        timeout=20,
    )
    return done.returncode, done.stdout + done.stderr


def test_chap_and_ms_chap_logins_are_accepted_with_the_package(radius: Any) -> None:
    """RouterOS's PPPoE server offers pap, chap, mschap1 and mschap2: a CPE picking CHAP or
    MS-CHAP must log in against the same Cleartext-Password row."""
    server, ctx, make = radius
    make.customer(make.package(make.master(name="home", rate_down="10M", rate_up="2M")), "r1",
                  username="alice", password="alice-pw")  # fmt: skip
    chap = radius_client.authenticate(
        server.host, server.auth_port, SECRET, "alice", "alice-pw", timeout=3, method="chap"
    )
    assert chap.accepted, server.log_tail()
    assert chap.attributes["Mikrotik-Rate-Limit"] == ["2M/10M"]
    wrong = radius_client.authenticate(
        server.host, server.auth_port, SECRET, "alice", "nope", timeout=3, method="chap"
    )
    assert wrong.code_name == "Access-Reject"

    code, out = radclient(server, 'User-Name = "alice", MS-CHAP-Password = "alice-pw"\n')
    assert code == 0 and "Access-Accept" in out and "2M/10M" in out, out + server.log_tail()
    code, out = radclient(server, 'User-Name = "alice", MS-CHAP-Password = "nope"\n')
    assert code != 0 and "Access-Reject" in out, out
