"""Monthly invoices: issued once per period ahead of it, paid from the balance or by an
operator, an unpaid one suspends after the grace and a payment restores service; the
clock is passed in, so months pass in a test (SQLite and PostgreSQL; the real FreeRADIUS
for the cycle's accept/reject)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from provisioner import invoices, ledger, registry
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.billing import add_month
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import Conflict, NotFound, PaymentRequired
from provisioner.models import Customer, Invoice, Payment, Reseller
from provisioner.read import ADMIN
from provisioner.read import invoices as read
from tests.support.factories import Factory
from tests.test_freeradius_registry import auth, radius  # noqa: F401  (a fixture)

DAY = timedelta(days=1)


def customer_row(ctx: Context, username: str) -> dict[str, Any]:
    with transaction(ctx.factory) as s:
        c = s.scalar(select(Customer).where(Customer.username == username))
        assert c is not None
        return {
            "status": str(c.status),
            "reason": c.suspended_reason,
            "expires_at": c.expires_at,
            "balance": ledger.balance(s, ledger.account_of("customer", c.id)),
        }


def invoice_rows(ctx: Context) -> list[tuple[datetime, str, str | None]]:
    with transaction(ctx.factory) as s:
        return [
            (i.period_start, i.status, None if i.activation_id is None else "activation")
            for i in s.scalars(select(Invoice).order_by(Invoice.period_start))
        ]


def topup(ctx: Context, username: str, amount: str) -> None:
    with transaction(ctx.factory) as s:
        ledger.topup(s, "test", f"customer:{username}", amount)


def monthly_customer(ctx: Context, make: Factory, router: str, **kw: Any) -> tuple[str, str]:
    """A monthly customer (price 500) activated now, paid from its balance of 1500."""
    pkg = make.package(make.master(name="home", billing="monthly"))
    user = make.customer(pkg, router, username="alice", password="alice-pw", status="new", **kw)
    topup(ctx, user, "1500")
    run_activation(ctx.factory, ADMIN, ActivationRequest(user, pkg, "k-1", "customer"))
    return user, pkg


def run(ctx: Context, now: datetime) -> invoices.RunResult:
    return invoices.run(ctx.factory, now)


def test_three_months_issued_once_paid_by_balance_suspended_after_grace(any_ctx: Context) -> None:
    ctx, make = any_ctx, Factory(any_ctx)
    user, _ = monthly_customer(ctx, make, make.router(None, mode="radius"))
    e0 = customer_row(ctx, user)["expires_at"]
    assert invoice_rows(ctx) == [(invoice_rows(ctx)[0][0], "paid", "activation")]
    # Not yet within invoice_days_ahead (5): nothing.
    assert run(ctx, e0 - 6 * DAY) == invoices.RunResult(0, 0, 0)
    # Month 2: issued 5 days ahead, paid from the balance at once; a rerun issues nothing.
    assert run(ctx, e0 - 5 * DAY) == invoices.RunResult(1, 1, 0)
    assert run(ctx, e0 - 4 * DAY) == invoices.RunResult(0, 0, 0)
    e1 = add_month(e0)
    assert customer_row(ctx, user)["expires_at"] == e1
    # Month 3: the same, and the balance is spent.
    assert run(ctx, e1 - 2 * DAY) == invoices.RunResult(1, 1, 0)
    e2 = add_month(e1)
    assert customer_row(ctx, user) == {
        "status": "active", "reason": None, "expires_at": e2, "balance": Decimal("0.00")
    }  # fmt: skip
    # Month 4: the balance does not cover it: open, service through the grace (3 days).
    assert run(ctx, e2 - 5 * DAY) == invoices.RunResult(1, 0, 0)
    assert customer_row(ctx, user)["expires_at"] == e2 + 3 * DAY
    assert run(ctx, e2 + 2 * DAY) == invoices.RunResult(0, 0, 0)
    assert customer_row(ctx, user)["status"] == "active"
    # Past the grace: suspended, paid through e2.
    assert run(ctx, e2 + 3 * DAY) == invoices.RunResult(0, 0, 1)
    assert customer_row(ctx, user) == {
        "status": "suspended", "reason": "unpaid", "expires_at": e2, "balance": Decimal("0.00")
    }  # fmt: skip
    # A top-up: the next run pays it and restores service to the period's end.
    topup(ctx, user, "500")
    assert run(ctx, e2 + 4 * DAY) == invoices.RunResult(0, 1, 0)
    e3 = add_month(e2)
    assert customer_row(ctx, user) == {
        "status": "active", "reason": None, "expires_at": e3, "balance": Decimal("0.00")
    }  # fmt: skip
    starts = [r[0] for r in invoice_rows(ctx)]
    assert starts[1:] == [e0, e1, e2] and len(set(starts)) == 4
    assert [r[1] for r in invoice_rows(ctx)] == ["paid"] * 4
    with transaction(ctx.factory) as s:
        assert ledger.check(s) == []
        methods = [p.method for p in s.scalars(select(Payment).order_by(Payment.id))]
        assert methods == ["balance"] * 3


def test_payment_lifts_only_its_own_suspension(any_ctx: Context) -> None:
    ctx, make = any_ctx, Factory(any_ctx)
    user, _ = monthly_customer(ctx, make, make.router(None, mode="radius"))
    with transaction(ctx.factory) as s:  # spend the balance elsewhere
        ledger.debit(s, f"customer:{_id(s, user)}", Decimal(1000), "test")
    e0 = customer_row(ctx, user)["expires_at"]
    run(ctx, e0 - 5 * DAY)
    # An operator suspends the customer during the grace: a payment must not lift that.
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "test", user, {"status": "suspended"})
    assert run(ctx, e0 + 10 * DAY).suspended == 0  # already suspended, by the operator
    with transaction(ctx.factory) as s:
        inv = s.scalar(select(Invoice).where(Invoice.status == "open"))
        assert inv is not None
        invoices.pay(s, ADMIN, inv.id, reference="cash 7")
    row = customer_row(ctx, user)
    assert row["status"] == "suspended" and row["reason"] is None
    with transaction(ctx.factory) as s:
        with pytest.raises(Conflict):
            invoices.pay(s, ADMIN, inv.id)
        shown = read.get(s, ADMIN, inv.id)
    assert shown.status == "paid" and [p.method for p in shown.payments] == ["admin"]


def test_an_activation_in_the_grace_pays_the_open_invoice(any_ctx: Context) -> None:
    ctx, make = any_ctx, Factory(any_ctx)
    user, pkg = monthly_customer(ctx, make, make.router(None, mode="radius"))
    with transaction(ctx.factory) as s:
        ledger.debit(s, f"customer:{_id(s, user)}", Decimal(1000), "test")
    e0 = customer_row(ctx, user)["expires_at"]
    run(ctx, e0 - 5 * DAY)
    assert customer_row(ctx, user)["expires_at"] == e0 + 3 * DAY
    # Renewed by the admin: the period is the open invoice's, not shifted by the grace.
    run_activation(ctx.factory, ADMIN, ActivationRequest(user, pkg, "k-2", "admin"))
    assert customer_row(ctx, user)["expires_at"] == add_month(e0)
    assert [r[:2] for r in invoice_rows(ctx)][1:] == [(e0, "paid")]
    assert run(ctx, e0 + 10 * DAY).suspended == 0


def test_reseller_pays_from_its_balance_and_sees_only_its_subtree(any_ctx: Context) -> None:
    ctx, make = any_ctx, Factory(any_ctx)
    res, other = make.reseller(), make.reseller()
    user, _ = monthly_customer(ctx, make, make.router(None, mode="radius"), reseller=res)
    with transaction(ctx.factory) as s:
        ledger.debit(s, f"customer:{_id(s, user)}", Decimal(1000), "test")
        rid = registry.get_by_name(s, Reseller, res).id
        oid = registry.get_by_name(s, Reseller, other).id
    e0 = customer_row(ctx, user)["expires_at"]
    run(ctx, e0 - 5 * DAY)
    me = Principal("reseller", reseller_id=rid, name="r")
    stranger = Principal("reseller", reseller_id=oid, name="o")
    with transaction(ctx.factory) as s:
        inv = s.scalar(select(Invoice).where(Invoice.status == "open"))
        assert inv is not None
        assert [i.id for i in read.list_(s, me, reseller=res)] == [inv.id, inv.id - 1]
        assert read.list_(s, stranger) == []
        with pytest.raises(NotFound):
            invoices.pay(s, stranger, inv.id)
        with pytest.raises(PaymentRequired):
            invoices.pay(s, me, inv.id)
    with transaction(ctx.factory) as s:
        ledger.credit(s, f"reseller:{rid}", Decimal(500), "topup")
    with transaction(ctx.factory) as s:
        invoices.pay(s, me, inv.id)
        # Cash it collected: it pays its own price (the operator price, 400), not the
        # customer's 500 on the invoice (README, "Who pays for a period").
        assert ledger.balance(s, f"reseller:{rid}") == Decimal("100.00")
        page = read.html(s, me, inv.id)
    assert "Invoice" in page and "alice" in page and "reseller" in page
    assert customer_row(ctx, user)["expires_at"] == add_month(e0)


def _id(s: Any, username: str) -> int:
    return int(registry.get_by_name(s, Customer, username, "username").id)


def test_freeradius_rejects_after_grace_and_accepts_after_payment(radius: Any) -> None:  # noqa: F811
    server, ctx, make = radius
    user, _ = monthly_customer(ctx, make, "r1")
    assert auth(server, user, "alice-pw").accepted, server.log_tail()
    e0 = customer_row(ctx, user)["expires_at"]
    assert run(ctx, e0 - 5 * DAY) == invoices.RunResult(1, 1, 0)  # month 2, by balance
    e1 = add_month(e0)
    assert run(ctx, e1 - 5 * DAY) == invoices.RunResult(1, 1, 0)  # month 3, by balance
    e2 = add_month(e1)
    assert run(ctx, e2 - 5 * DAY) == invoices.RunResult(1, 0, 0)  # month 4: unpaid
    assert auth(server, user, "alice-pw").accepted  # within its grace
    assert run(ctx, e2 + 3 * DAY) == invoices.RunResult(0, 0, 1)
    assert not auth(server, user, "alice-pw").accepted, server.log_tail()
    with transaction(ctx.factory) as s:
        inv = s.scalar(select(Invoice).where(Invoice.status == "open"))
        assert inv is not None
        invoices.pay(s, ADMIN, inv.id, reference="cash")
    assert auth(server, user, "alice-pw").accepted, server.log_tail()
    assert customer_row(ctx, user)["expires_at"] == add_month(e2)


def test_cli_lists_shows_pays_prints_and_runs(
    ctx: Context, make: Factory, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from provisioner.cli import app as cli_root
    from provisioner.cli import common

    user, _ = monthly_customer(ctx, make, make.router(None, mode="radius"))
    with transaction(ctx.factory) as s:
        ledger.debit(s, f"customer:{_id(s, user)}", Decimal(1000), "test")
    e0 = customer_row(ctx, user)["expires_at"]
    run(ctx, e0 - 5 * DAY)
    runner = CliRunner()
    monkeypatch.setattr(common, "_ctx", ctx)

    def invoke(*args: str) -> str:
        result = runner.invoke(cli_root, ["invoice", *args])
        assert result.exit_code == 0, result.output
        return result.output

    rows = json.loads(invoke("list", "--customer", user, "--status", "open", "--json"))
    assert len(rows) == 1 and rows[0]["due_at"] == e0.isoformat()
    inv = rows[0]["id"]
    assert json.loads(invoke("show", str(inv), "--json"))["status"] == "open"
    assert "0 issued" in invoke("run")
    out = tmp_path / "inv.html"
    invoke("print", str(inv), "--out", str(out))
    assert f"Invoice {inv}" in out.read_text()
    invoke("print", str(inv), "--pdf", "--out", str(out))
    assert_pdf(out.read_bytes(), f"Invoice {inv}")
    assert json.loads(invoke("pay", str(inv), "--reference", "r-1", "--json"))["status"] == "paid"
    assert customer_row(ctx, user)["expires_at"] == add_month(e0)


def assert_pdf(data: bytes, text: str) -> None:
    """A well-formed one-page PDF: every xref offset points at its object, and the text
    is on the page."""
    import re

    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    start = int(re.findall(rb"startxref\n(\d+)", data)[-1])
    assert data[start:].startswith(b"xref")
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", data)]
    assert [data[o:].split(b" ", 1)[0] for o in offsets] == [b"1", b"2", b"3", b"4", b"5"]
    assert f"({text})".encode() in data


def _statements(ctx: Context, call: Any) -> tuple[Any, int]:
    """``call()``'s answer and the SQL statements it ran."""
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        seen.append(statement)

    from sqlalchemy import event

    event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        answer = call()
    finally:
        event.remove(ctx.engine, "before_cursor_execute", count)
    return answer, len(seen)


def test_the_invoice_list_reads_its_invoices_in_one_set(any_ctx: Context) -> None:
    """``GET /api/v1/invoices``: the same few statements for 2 invoices as for 10 (not one
    more per invoice), each answer the same as the invoice read alone."""
    ctx, make = any_ctx, Factory(any_ctx)
    res = make.reseller()
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home", billing="monthly"))
    with transaction(ctx.factory) as s:
        registry.assign_package(s, "test", res, pkg, "350")
        me = Principal("reseller", reseller_id=registry.get_by_name(s, Reseller, res).id)

    def customers(n: int) -> None:
        """``n`` customers of the reseller, each with an activation's invoice and the next
        month's, paid from its balance (a payment)."""
        for _ in range(n):
            user = make.customer(pkg, router, reseller=res, status="new")
            topup(ctx, user, "1000")
            run_activation(ctx.factory, ADMIN, ActivationRequest(user, pkg, user, "customer"))
            run(ctx, customer_row(ctx, user)["expires_at"] - 5 * DAY)

    def listed(who: Principal) -> tuple[list[Any], int]:
        with transaction(ctx.factory) as s:
            return _statements(ctx, lambda: read.list_(s, who))  # type: ignore[no-any-return]

    customers(1)
    few, n_few = listed(me)
    customers(4)
    many, n_many = listed(me)
    assert len(few) == 2 and len(many) == 10
    assert n_many == n_few
    assert listed(ADMIN)[1] <= n_few  # its scope needs no reads of its own
    assert [v.id for v in listed(ADMIN)[0]] == [v.id for v in many]
    with transaction(ctx.factory) as s:
        assert many == [read.get(s, me, v.id) for v in many]
    paid = [v for v in many if v.activation_id is None]
    assert len(paid) == 5
    assert {(v.reseller, v.package, v.amount, v.your_price, v.margin) for v in paid} == {
        (res, pkg, "500.00", "350.00", "150.00")
    }  # fmt: skip
    assert {tuple((p.amount, p.method) for p in v.payments) for v in paid} == {
        (("500.00", "balance"),)
    }
