"""CSV import and export of customers (``provisioner.bulk``): a file with refused rows
stores nothing and reports every refusal by line and column; a good file stores every
customer with its RADIUS rows and asks for one sync per router, on both databases."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from provisioner import bulk
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.effects import SYNC_ROUTER
from provisioner.errors import ValidationError
from provisioner.models import AuditLog, Customer, Outbox, Reseller
from provisioner.radius_tables import radcheck
from provisioner.read import ADMIN
from provisioner.registry.common import get_by_name
from tests.support.factories import Factory

HEADER = "username,password,customer_type,router,package,reseller,mac_address,status\n"


def world(ctx: Context) -> dict[str, Any]:
    """Two local-mode routers, a pppoe package, two resellers (one selling it), one
    customer already there (``taken``, with a MAC)."""
    make = Factory(ctx)
    r1, r2 = make.router(), make.router()
    master = make.master()
    pkg = make.package(master)
    seller, other = make.reseller(), make.reseller()
    with transaction(ctx.factory) as s:
        from provisioner import registry

        registry.assign_package(s, "test", seller, pkg, None)
    make.customer(pkg, r1, username="taken", mac_address="AA:BB:CC:00:00:01")
    return {"r1": r1, "r2": r2, "pkg": pkg, "seller": seller, "other": other}


def count(ctx: Context, model: Any = Customer) -> int:
    with transaction(ctx.factory) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def run(ctx: Context, text: str, *, dry_run: bool, who: Principal = ADMIN) -> Any:
    with transaction(ctx.factory) as s:
        return bulk.import_csv(s, who, text, dry_run=dry_run)


def test_a_bad_file_stores_nothing_and_names_every_line_and_field(ctx: Context) -> None:
    w = world(ctx)
    before = (count(ctx), count(ctx, AuditLog), count(ctx, Outbox))
    text = HEADER + "\n".join(
        [
            f"ok1,pw,pppoe,{w['r1']},{w['pkg']},,,",  # line 2: fine
            f"taken,pw,pppoe,{w['r1']},{w['pkg']},,,",  # 3: exists already
            f"bad1,pw,pppoe,nowhere,{w['pkg']},,,",  # 4: no such router
            f"bad2,,wifi,{w['r1']},,,,",  # 5: no such type (and no password)
            f"bad3,pw,pppoe,{w['r1']},,,AA:BB:CC:00:00:01,",  # 6: MAC of 'taken'
            f"ok1,pw,pppoe,{w['r2']},{w['pkg']},,,",  # 7: ok1 twice in the file
            f"bad4,pw,pppoe,{w['r1']},,,,sleeping",  # 8: no such status
            f"{'x' * 65},pw,pppoe,{w['r1']},,,,",  # 9: a name past its bound
            f"ok2,pw,pppoe,{w['r2']},,,,",  # 10: fine
        ]
    )
    for dry_run in (True, False):
        out = run(ctx, text, dry_run=dry_run)
        assert (out.rows, out.created, out.dry_run) == (9, 0, dry_run)
        got = {(e.line, e.field) for e in out.errors}
        assert got == {
            (3, "username"),
            (4, "router"),
            (5, "customer_type"),  # the body's choices are checked before the registry's rules
            (5, "password"),  # and every other field the body refuses
            (6, "mac_address"),
            (7, "username"),
            (8, "status"),
            (9, "username"),
        }
        by_line = {e.line: e.error for e in out.errors}
        assert "nowhere" in by_line[4]
        assert by_line[5] == "must be one of pppoe, hotspot, static, other"
        assert "'taken'" in by_line[6]
        assert by_line[3] == "a customer named 'taken' exists"
        assert by_line[7] == "a customer named 'ok1' exists"  # its line 2 was first
        assert (count(ctx), count(ctx, AuditLog), count(ctx, Outbox)) == before


@pytest.mark.parametrize(
    "text",
    ["", "user,password\n", "username,password,customer_type,colour\n"],
    ids=["empty", "missing columns", "unknown column"],
)
def test_a_file_without_its_header_is_refused_whole(ctx: Context, text: str) -> None:
    with pytest.raises(ValidationError) as err:
        run(ctx, text, dry_run=True)
    assert err.value.field == "file"


def test_a_good_file_stores_everything_with_radius_rows_and_one_sync_per_router(
    any_ctx: Context,
) -> None:
    w = world(any_ctx)
    with transaction(any_ctx.factory) as s:
        s.query(Outbox).delete()  # the world's own syncs
    n = 300
    lines = [
        f"imp{i:04d},pw-{i},pppoe,{w['r1'] if i % 2 else w['r2']},{w['pkg']},"
        f"{w['seller'] if i % 3 == 0 else ''},,{'active' if i % 5 == 0 else ''}"
        for i in range(n)
    ]
    text = HEADER + "\n".join(lines) + "\n"
    dry = run(any_ctx, text, dry_run=True)
    assert (dry.rows, dry.created, dry.errors) == (n, 0, [])
    assert count(any_ctx) == 1
    out = run(any_ctx, text, dry_run=False)
    assert (out.rows, out.created, out.errors) == (n, n, [])
    with transaction(any_ctx.factory) as s:
        assert count(any_ctx) == n + 1
        names = set(s.scalars(select(radcheck.c.username).where(radcheck.c.username.like("imp%"))))
        assert len(names) == n
        syncs = s.execute(
            select(Outbox.router_id, func.count())
            .where(Outbox.kind == SYNC_ROUTER)
            .group_by(Outbox.router_id)
        ).all()
        assert sorted(c for _, c in syncs) == [1, 1]
        c = s.scalar(select(Customer).where(Customer.username == "imp0003"))
        assert c is not None and c.reseller is not None and c.reseller.name == w["seller"]
        audited = s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.entity == "customers")
        )
        assert audited == n + 1
    # The same file again: every row is now taken.
    again = run(any_ctx, text, dry_run=True)
    assert len(again.errors) == n and {e.field for e in again.errors} == {"username"}


def test_a_reseller_imports_its_own_customers_on_its_own_packages(ctx: Context) -> None:
    w = world(ctx)
    with transaction(ctx.factory) as s:
        seller_id = get_by_name(s, Reseller, w["seller"]).id
    me = Principal(role="reseller", reseller_id=seller_id)
    text = HEADER + "\n".join(
        [
            f"mine1,pw,pppoe,{w['r1']},{w['pkg']},,,",
            f"mine2,pw,pppoe,{w['r1']},{w['pkg']},{w['other']},,",  # another's: refused
            f"mine3,pw,pppoe,{w['r1']},{w['pkg']},,,active",  # only an activation does
        ]
    )
    out = run(ctx, text, dry_run=True, who=me)
    assert {(e.line, e.field) for e in out.errors} == {(3, "reseller"), (4, "status")}
    good = HEADER + f"mine1,pw,pppoe,{w['r1']},{w['pkg']},,,\n"
    assert run(ctx, good, dry_run=False, who=me).created == 1
    with transaction(ctx.factory) as s:
        c = s.scalar(select(Customer).where(Customer.username == "mine1"))
        assert c is not None and c.reseller_id == seller_id


def test_export_lists_what_import_reads_without_passwords(ctx: Context) -> None:
    w = world(ctx)
    with transaction(ctx.factory) as s:
        text = bulk.export_csv(s, ADMIN)
    header, row = text.splitlines()
    assert "password" not in header
    assert row.startswith("taken,pppoe,") and w["r1"] in row and "AA:BB:CC:00:00:01" in row
    # Re-imported under a new name with a password, it is checked like any other file.
    again = header.replace("username,", "username,password,") + "\n"
    again += row.replace("taken,", "taken,pw,", 1).replace("AA:BB:CC:00:00:01", "")
    out = run(ctx, again, dry_run=True)
    assert [(e.line, e.field) for e in out.errors] == [(2, "username")]


def test_the_cli_imports_exports_and_lists_with_filters(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    cli_common = importlib.import_module("provisioner.cli.common")
    cli_root = importlib.import_module("provisioner.cli").app

    w = world(ctx)
    monkeypatch.setattr(cli_common, "_ctx", ctx)
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli_root, list(args))
        assert result.exit_code == code, result.output
        return result.output

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"taken,pw,pppoe,{w['r1']},,,,\nnew1,pw,pppoe,nowhere,,,,\n")
    out = cli("customer", "import", str(bad), "--dry-run", code=1)
    assert "line 2: username: a customer named 'taken' exists" in out
    assert "line 3: router: no router named 'nowhere'" in out
    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"new1,pw,pppoe,{w['r1']},{w['pkg']},{w['seller']},,\n")
    assert "1 rows would be added" in cli("customer", "import", str(good), "--dry-run")
    assert count(ctx) == 1
    assert "1 customers added" in cli("customer", "import", str(good))
    assert (
        cli("customer", "export", "--reseller", w["seller"])
        .splitlines()[1]
        .startswith("new1,pppoe,")
    )
    listed = json.loads(cli("customer", "list", "--search", "NEW", "--json"))
    assert [c["username"] for c in listed["items"]] == ["new1"] and listed["total"] == 1
    table = cli("customer", "list", "--reseller", w["seller"], "--limit", "1")
    assert "new1" in table and "1-1 of 1" in table


def test_the_api_imports_csv_all_or_nothing(tmp_path: Path) -> None:
    from tests.test_api import make_world

    for api in make_world(tmp_path):
        headers = {**api.as_("admin"), "Content-Type": "text/csv"}
        bad = HEADER + "cust-a,pw,pppoe,r1,,,,\nfresh,pw,pppoe,r1,,,,\n"
        r = api.client.post("/api/v1/customers/import", content=bad, headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {"line": 2, "field": "username", "error": "a customer named 'cust-a' exists"}
        ]
        assert "nothing stored" in r.json()["error"]
        good = HEADER + "fresh,pw,pppoe,r1,pkg-a,,,\n"
        dry = api.client.post(
            "/api/v1/customers/import?dry_run=true", content=good, headers=headers
        )
        assert dry.status_code == 200 and dry.json()["errors"] == []
        assert api.call("GET", "/customers?q=fresh", "admin").json()["total"] == 0
        mine = {**api.as_("reseller"), "Content-Type": "text/csv"}
        r = api.client.post("/api/v1/customers/import", content=good, headers=mine)
        assert r.status_code == 201 and r.json()["created"] == 1, r.text
        assert api.call("GET", "/customers/fresh", "reseller").json()["reseller"] == "resA"
        customer = {**api.as_("customer"), "Content-Type": "text/csv"}
        assert (
            api.client.post("/api/v1/customers/import", content=good, headers=customer).status_code
            == 403
        )
