"""Live sessions kept true (``sweep``): a session whose Stop was lost is closed after three
interim intervals of silence; a session without a right (customer suspended, expired,
removed, beyond its shared users) is cut by a Disconnect the NAS receives, once,
audited; ``sessions diff`` shows it first. SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from provisioner import sweep
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.models import AuditLog, Customer, utcnow
from provisioner.radius_tables import radacct
from tests.support.coa_server import CoaServer
from tests.support.factories import Factory
from tests.test_sessions import coa, isp, received  # noqa: F401  (fixtures)

cli_common = importlib.import_module("provisioner.cli.common")
cli_root = importlib.import_module("provisioner.cli").app


def opened(ctx: Context, username: str, sid: str, *, ago: int, updated: int | None = None) -> None:
    """An open session started ``ago`` seconds ago, last heard of ``updated`` seconds ago."""
    now = utcnow()
    with transaction(ctx.factory) as s:
        s.execute(
            insert(radacct).values(
                acctsessionid=sid, acctuniqueid=f"u-{sid}", username=username,
                nasipaddress="127.0.0.1", framedipaddress="10.1.0.9",
                acctstarttime=now - timedelta(seconds=ago),
                acctupdatetime=None if updated is None else now - timedelta(seconds=updated),
            )
        )  # fmt: skip


def stopped(ctx: Context, sid: str) -> tuple[Any, Any]:
    with reading(ctx.factory) as s:
        row = s.execute(
            select(radacct.c.acctstoptime, radacct.c.acctterminatecause).where(
                radacct.c.acctsessionid == sid)
        ).one()  # fmt: skip
        return row[0], row[1]


def test_a_session_whose_stop_was_lost_is_closed_after_three_silent_intervals(
    isp: tuple[Context, Factory, str],  # noqa: F811
) -> None:
    ctx, make, router = isp
    make.customer(make.package(make.master(name="home")), router, username="alice")
    make.customer(make.package(make.master(name="biz")), router, username="bob")
    interval = ctx.settings.acct_interim_interval_seconds
    opened(ctx, "alice", "lost", ago=10 * interval, updated=3 * interval + 5)
    opened(ctx, "bob", "alive", ago=10 * interval, updated=interval)
    with reading(ctx.factory) as s:
        found = sweep.find(s, ctx.settings, utcnow())
    assert [(f.action, f.session_id) for f in found] == [("close", "lost")]
    assert stopped(ctx, "lost")[0] is None  # a dry run changes nothing
    done = sweep.run(ctx.factory, ctx.settings)
    assert [f.session_id for f in done] == ["lost"]
    stop, cause = stopped(ctx, "lost")
    assert stop is not None and cause == sweep.STALE_CAUSE
    assert stopped(ctx, "alive")[0] is None
    assert sweep.run(ctx.factory, ctx.settings) == []  # once


def test_a_session_without_a_right_is_cut_once_and_audited(
    isp: tuple[Context, Factory, str], coa: CoaServer  # noqa: F811
) -> None:
    """A suspended customer whose Disconnect was lost, a removed one, and a customer with
    two sessions where its package allows one (the older goes)."""
    ctx, make, router = isp
    pkg = make.package(make.master(name="home"))
    for name in ("alice", "carol", "dave"):
        make.customer(pkg, router, username=name)
    opened(ctx, "alice", "a1", ago=60)
    opened(ctx, "carol", "c-old", ago=120)
    opened(ctx, "carol", "c-new", ago=30)
    opened(ctx, "dave", "d1", ago=60)
    opened(ctx, "ghost", "g1", ago=60)  # a user the registry never had
    with transaction(ctx.factory) as s:  # suspended behind the daemon's back: no Disconnect
        s.execute(update(Customer).where(Customer.username == "alice")
                  .values(status="suspended"))  # fmt: skip
    received(ctx, coa)
    done = sweep.run(ctx.factory, ctx.settings)
    assert sorted((f.username, f.session_id) for f in done) == [
        ("alice", "a1"), ("carol", "c-old"), ("ghost", "g1")
    ]
    why = {f.username: f.why for f in done}
    assert why["alice"] == "its customer is suspended"
    assert why["ghost"] == "its customer was removed"
    assert why["carol"] == "beyond its package's 1 shared user"
    assert sweep.run(ctx.factory, ctx.settings) == []  # queued already: not again
    got = received(ctx, coa)
    assert sorted(a["Acct-Session-Id"][0] for code, a in got if code == "Disconnect-Request") == [
        "a1", "c-old", "g1"
    ]
    with reading(ctx.factory) as s:
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "disconnect")).all()
        assert sorted(a.after["session"] for a in audits) == ["a1", "c-old", "g1"]
        assert {a.actor for a in audits} == {sweep.ACTOR}


def test_sessions_diff_shows_what_a_repair_would_do(
    isp: tuple[Context, Factory, str], monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    ctx, make, router = isp
    monkeypatch.setattr(cli_common, "_ctx", ctx)
    monkeypatch.setenv("COLUMNS", "200")
    make.customer(make.package(make.master(name="home")), router, username="alice")
    runner = CliRunner()
    assert runner.invoke(cli_root, ["sessions", "diff"]).exit_code == 0
    opened(ctx, "alice", "lost", ago=4000, updated=3000)
    r = runner.invoke(cli_root, ["sessions", "diff"])
    assert r.exit_code == 2, r.output
    assert "close" in r.output and "alice" in r.output and "lost" in r.output
    assert stopped(ctx, "lost")[0] is None
    assert runner.invoke(cli_root, ["sessions", "repair"]).exit_code == 0
    assert runner.invoke(cli_root, ["sessions", "diff"]).exit_code == 0
