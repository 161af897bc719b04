"""One sale (issue 16): every way a customer gets a period moves money by the same rule,
exactly once, on SQLite and PostgreSQL.

The tree: admin → north (prepaid; pays 300) → east (pays north 350) → far (pays east
420; its customers' price 600). Customers of far buy a monthly package."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from provisioner import invoices, ledger, registry
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import Conflict, PaymentRequired
from provisioner.models import Account, Customer, Invoice, LedgerEntry, Payment, Reseller, utcnow
from provisioner.read import ADMIN
from tests.support.concurrency import at_once
from tests.support.factories import Factory

D = Decimal
PRICES = {"north": D("300.00"), "east": D("350.00"), "far": D("420.00")}
CUSTOMER_PRICE = D("600.00")


def chain(ctx: Context, customers: int = 1, billing: str = "monthly") -> dict[str, Any]:
    make = Factory(ctx)
    router = make.router(None, mode="radius")
    pkg = make.package(
        make.master(name="home", billing=billing), name="Home", customer_price="555.55",
        operator_price="400",
    )  # fmt: skip
    with transaction(ctx.factory) as s:
        registry.create_reseller(s, "t", {"name": "north", "may_have_subresellers": True})
        registry.assign_package(s, "t", "north", pkg, "300")
        registry.create_reseller(
            s, "t", {"name": "east", "parent": "north", "may_have_subresellers": True}
        )
        registry.assign_package(s, "t", "east", pkg, "350")
        registry.create_reseller(s, "t", {"name": "far", "parent": "east"})
        registry.assign_package(s, "t", "far", pkg, "420", "600")
        ids = {r.name: r.id for r in s.scalars(select(Reseller))}
    names = [f"c{i}" for i in range(customers)]
    for name in names:
        make.customer(None, router, username=name, reseller="far", status="new")
    who = {n: Principal("reseller", reseller_id=i) for n, i in ids.items()}
    return {"pkg": pkg, "ids": ids, "who": who, "names": names, "make": make}


def balances(ctx: Context, t: dict[str, Any]) -> dict[str, Decimal]:
    with reading(ctx.factory) as s:
        return {n: ledger.balance(s, f"reseller:{i}") for n, i in t["ids"].items()}


def topup(ctx: Context, account: str, amount: str) -> None:
    with transaction(ctx.factory) as s:
        ledger.topup(s, "t", account, amount)


def open_invoice(ctx: Context, t: dict[str, Any], username: str, key: str) -> Invoice:
    """``username`` activated by far (monthly), then the job issues its next period's
    invoice a day before the paid one ends: open, nothing to pay it from."""
    run_activation(ctx.factory, t["who"]["far"], ActivationRequest(username, t["pkg"], key))
    with reading(ctx.factory) as s:
        c = s.scalar(select(Customer).where(Customer.username == username))
        assert c is not None and c.expires_at is not None
        due = c.expires_at - timedelta(days=1)
    invoices.run(ctx.factory, due)
    with reading(ctx.factory) as s:
        inv = s.scalar(
            select(Invoice).join(Customer).where(Customer.username == username,
                                                 Invoice.status == "open")
        )  # fmt: skip
        assert inv is not None
        s.expunge(inv)
        return inv


def test_an_operators_invoice_payment_charges_the_chain_like_an_activation(
    any_ctx: Context,
) -> None:
    """Finding 1: far recorded a payment of its customer's invoice (600.00) and was
    debited 600.00, east and north nothing. It is cash far collected: far pays 420, east
    350, north 300, each row with its margin; a second payment is a 409 and moves nothing."""
    ctx = any_ctx
    t = chain(ctx)
    for name in ("north", "east", "far"):
        topup(ctx, f"reseller:{t['ids'][name]}", "1000")
    inv = open_invoice(ctx, t, "c0", "k0")
    assert inv.amount == CUSTOMER_PRICE  # the customer's price, never far's 420
    start = balances(ctx, t)
    assert start == {n: D("1000.00") - p for n, p in PRICES.items()}  # the activation's
    with transaction(ctx.factory) as s:
        invoices.pay(s, t["who"]["far"], inv.id)
    assert balances(ctx, t) == {n: start[n] - p for n, p in PRICES.items()}
    with pytest.raises(Conflict, match="is paid, not open"), transaction(ctx.factory) as s:
        invoices.pay(s, t["who"]["far"], inv.id)
    assert balances(ctx, t) == {n: start[n] - p for n, p in PRICES.items()}
    with reading(ctx.factory) as s:
        rows = s.execute(
            select(LedgerEntry.account, LedgerEntry.amount, LedgerEntry.reference)
            .where(LedgerEntry.invoice_id == inv.id).order_by(LedgerEntry.id)
        ).all()  # fmt: skip
        assert [(a, amount) for a, amount, _ in rows] == [
            (f"reseller:{t['ids']['far']}", D("-420.00")),
            (f"reseller:{t['ids']['east']}", D("-350.00")),
            (f"reseller:{t['ids']['north']}", D("-300.00")),
        ]
        assert "via far (paid 420.00, margin 70.00)" in rows[1][2]
        assert "via east (paid 350.00, margin 50.00)" in rows[2][2]
        assert s.scalar(select(func.count()).select_from(Payment)) == 1
        assert ledger.check(s) == []


def test_a_sub_reseller_cannot_pay_an_invoice_past_its_parents_floor(any_ctx: Context) -> None:
    """The chain's guard holds for invoices as for activations: east cannot pay its 350,
    so far's payment is refused whole and the invoice stays open."""
    ctx = any_ctx
    t = chain(ctx)
    topup(ctx, f"reseller:{t['ids']['far']}", "1000")
    topup(ctx, f"reseller:{t['ids']['east']}", "350")
    topup(ctx, f"reseller:{t['ids']['north']}", "1000")
    inv = open_invoice(ctx, t, "c0", "k0")  # east is at 0 now
    before = balances(ctx, t)
    refused = pytest.raises(PaymentRequired, match="refused up the chain: reseller 'east'")
    with refused, transaction(ctx.factory) as s:
        invoices.pay(s, t["who"]["far"], inv.id)
    assert balances(ctx, t) == before
    with reading(ctx.factory) as s:
        assert s.get(Invoice, inv.id).status == "open"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(Payment)) == 0


def test_a_customer_pays_the_customers_price_and_its_reseller_keeps_the_margin(
    any_ctx: Context,
) -> None:
    """A customer paying its invoice from its balance pays 600 (never an operator's
    price); far is credited the sale and pays 420, east 350, north 300."""
    ctx = any_ctx
    t = chain(ctx)
    for name in ("north", "east", "far"):
        topup(ctx, f"reseller:{t['ids'][name]}", "1000")
    inv = open_invoice(ctx, t, "c0", "k0")
    start = balances(ctx, t)
    with reading(ctx.factory) as s:
        cid = s.scalar(select(Customer.id).where(Customer.username == "c0"))
    topup(ctx, f"customer:{cid}", "600")
    me = Principal("customer", customer_id=cid)
    with transaction(ctx.factory) as s:
        invoices.pay(s, me, inv.id)
    got = balances(ctx, t)
    assert got["far"] == start["far"] + CUSTOMER_PRICE - PRICES["far"]
    assert got["east"] == start["east"] - PRICES["east"]
    assert got["north"] == start["north"] - PRICES["north"]
    with reading(ctx.factory) as s:
        assert ledger.balance(s, f"customer:{cid}") == D("0.00")
        assert ledger.check(s) == []


def test_two_invoice_runs_at_once_pay_each_invoice_once(ctx_factory: Any, backend: str) -> None:
    """Finding 2: 40 monthly customers with open invoices of 600.00 and 1,000.00 each;
    two ``invoice run`` started at the same instant. Every invoice has one payment and
    every balance went 1,000.00 → 400.00."""
    ctx = ctx_factory(backend)
    t = chain(ctx, customers=40)
    for name in ("north", "east", "far"):
        topup(ctx, f"reseller:{t['ids'][name]}", "100000")
    due = None
    for i, name in enumerate(t["names"]):
        run_activation(ctx.factory, t["who"]["far"], ActivationRequest(name, t["pkg"], f"k{i}"))
    with reading(ctx.factory) as s:
        due = max(s.scalars(select(Customer.expires_at))) - timedelta(days=1)  # type: ignore[type-var]
        ids = list(s.scalars(select(Customer.id)))
    invoices.run(ctx.factory, due)  # issued, open: no balance yet
    for cid in ids:
        topup(ctx, f"customer:{cid}", "1000")
    start = balances(ctx, t)
    results: list[Any] = []

    def run() -> None:
        results.append(invoices.run(ctx.factory, due + timedelta(hours=1)))  # type: ignore[operator]

    at_once(run, run, timeout=120)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.paid for r in results) == 40, results
    with reading(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Payment)) == 40
        assert {ledger.balance(s, f"customer:{cid}") for cid in ids} == {D("400.00")}
        assert ledger.check(s) == []
    got = balances(ctx, t)
    assert got["far"] == start["far"] + 40 * (CUSTOMER_PRICE - PRICES["far"])
    assert got["north"] == start["north"] - 40 * PRICES["north"]


def test_a_customer_never_sees_its_resellers_price_on_an_invoice(any_ctx: Context) -> None:
    """Finding 3: the invoice of a period far activated showed far's own price (420) to
    the customer. Every invoice is the customer's price; far sees its price and margin."""
    ctx = any_ctx
    t = chain(ctx)
    for name in ("north", "east", "far"):
        topup(ctx, f"reseller:{t['ids'][name]}", "1000")
    run_activation(ctx.factory, t["who"]["far"], ActivationRequest("c0", t["pkg"], "k0"))
    from provisioner.read import invoices as read

    with reading(ctx.factory) as s:
        cid = s.scalar(select(Customer.id).where(Customer.username == "c0"))
        mine = read.list_(s, Principal("customer", customer_id=cid))
        assert [v.amount for v in mine] == ["600.00"]
        assert mine[0].your_price is None and mine[0].margin is None
        html = read.html(s, Principal("customer", customer_id=cid), mine[0].id)
        assert "600.00" in html and "420" not in html
        theirs = read.list_(s, t["who"]["far"])
        assert (theirs[0].your_price, theirs[0].margin) == ("420.00", "180.00")
        assert read.list_(s, ADMIN)[0].amount == "600.00"


def test_voiding_an_invoice_keeps_only_what_was_paid(any_ctx: Context) -> None:
    """An admin voids an open invoice: audited; the expiry the grace moved goes back to
    the period's start; a second void or a payment after it is a 409."""
    ctx = any_ctx
    t = chain(ctx)
    for name in ("north", "east", "far"):
        topup(ctx, f"reseller:{t['ids'][name]}", "1000")
    inv = open_invoice(ctx, t, "c0", "k0")
    with reading(ctx.factory) as s:
        c = s.scalar(select(Customer).where(Customer.username == "c0"))
        assert c is not None and c.expires_at is not None and c.expires_at > inv.period_start
    with transaction(ctx.factory) as s:
        invoices.void(s, "admin:test", inv.id, "goodwill")
    with reading(ctx.factory) as s:
        c = s.scalar(select(Customer).where(Customer.username == "c0"))
        assert c is not None and c.expires_at == inv.period_start
        from provisioner.models import AuditLog

        row = s.scalar(select(AuditLog).where(AuditLog.entity == "invoices"))
        assert row is not None and row.action == "void" and row.after["reason"] == "goodwill"
    for attempt in (lambda s: invoices.void(s, "admin:test", inv.id),
                    lambda s: invoices.pay(s, ADMIN, inv.id)):  # fmt: skip
        with pytest.raises(Conflict, match="is void, not open"), transaction(ctx.factory) as s:
            attempt(s)


def test_a_short_period_moves_the_billing_day(any_ctx: Context) -> None:
    """An expiry moved off the billing day (an operator's edit) would have made the next
    period end on the old billing day, days later, at the full price: the billing day
    moves to the period's start instead, so every period is a whole month."""
    ctx = any_ctx
    t = chain(ctx)
    for name in ("north", "east", "far"):
        topup(ctx, f"reseller:{t['ids'][name]}", "100000")
    run_activation(ctx.factory, t["who"]["far"], ActivationRequest("c0", t["pkg"], "k0"))
    with transaction(ctx.factory) as s:
        c = s.scalar(select(Customer).where(Customer.username == "c0"))
        assert c is not None and c.expires_at is not None
        moved = c.expires_at + timedelta(days=9)
        c.expires_at = moved
    invoices.run(ctx.factory, moved - timedelta(days=1))
    with reading(ctx.factory) as s:
        inv = s.scalar(select(Invoice).where(Invoice.status == "open"))
        assert inv is not None and inv.period_start == moved
        from provisioner.billing import add_month

        assert inv.period_end == add_month(moved)


def test_invoice_run_at_a_given_time(any_ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """``invoice run --at`` runs the job as of that time (a missed day replayed)."""
    import importlib

    from typer.testing import CliRunner

    app = importlib.import_module("provisioner.cli").app
    ctx = any_ctx
    monkeypatch.setattr(importlib.import_module("provisioner.cli.common"), "_ctx", ctx)
    t = chain(ctx)
    for name in ("north", "east", "far"):
        topup(ctx, f"reseller:{t['ids'][name]}", "1000")
    run_activation(ctx.factory, t["who"]["far"], ActivationRequest("c0", t["pkg"], "k0"))
    with reading(ctx.factory) as s:
        end = s.scalar(select(Customer.expires_at))
    assert end is not None
    runner = CliRunner()
    env: dict[str, str] = {}
    r = runner.invoke(app, ["invoice", "run", "--at", utcnow().isoformat()], env=env)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("0 issued")
    at = (end - timedelta(days=1)).isoformat()
    r = runner.invoke(app, ["invoice", "run", "--at", at], env=env)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("1 issued, 0 paid from balances"), r.output
    r = runner.invoke(app, ["invoice", "run", "--at", "yesterday"], env=env)
    assert r.exit_code != 0 and "at" in r.output


def test_200_concurrent_sales_of_every_kind_against_balances_that_cover_150(
    ctx_factory: Any, backend: str
) -> None:
    """Every kind of sale at once, all of them charging north 300 (each is a sale of a
    customer under north): far's, east's and north's own activations, portal purchases
    from the balance, purchases with a card, invoices recorded by far and invoices paid
    from the balance by two ``invoice run``s started together. north covers 150 of the
    200: exactly 150 go through, every balance on every level is exact, none is below
    its floor, each invoice is paid at most once, and the ledger check is clean."""
    from provisioner import cards
    from provisioner.models import Activation

    ctx = ctx_factory(backend)
    kinds = {"far": 40, "east": 40, "north": 30, "portal": 30, "card": 20, "recorded": 20,
             "job": 20}  # fmt: skip
    t = chain(ctx, customers=0)
    make = t["make"]
    router = make.router(None, mode="radius")
    owner = {"far": "far", "east": "east", "north": "north", "portal": "far", "card": "far",
             "recorded": "far", "job": "far"}  # fmt: skip
    names = {k: [f"{k}{i}" for i in range(n)] for k, n in kinds.items()}
    for k, users in names.items():
        for u in users:
            make.customer(None, router, username=u, reseller=owner[k], status="new")
    for name in ("north", "east", "far"):  # the setup's own sales: 40 invoiced customers
        topup(ctx, f"reseller:{t['ids'][name]}", "100000" if name != "north" else "12000")
    for i, u in enumerate(names["recorded"] + names["job"]):
        run_activation(ctx.factory, t["who"]["far"], ActivationRequest(u, t["pkg"], f"s{i}"))
    with reading(ctx.factory) as s:
        ends = s.scalars(select(Customer.expires_at).where(Customer.expires_at.is_not(None)))
        due = max(ends) - timedelta(days=1)
        assert ledger.balance(s, f"reseller:{t['ids']['north']}") == D("0.00")
        cid = {c.username: c.id for c in s.scalars(select(Customer))}
    invoices.run(ctx.factory, due)  # 40 open invoices
    with transaction(ctx.factory) as s:
        made = cards.generate(s, kinds["card"], "600", 30, "b1")
        for u in names["portal"] + names["job"]:
            ledger.topup(s, "t", f"customer:{cid[u]}", "600")
        ledger.topup(s, "t", f"reseller:{t['ids']['north']}", str(150 * 300))
        inv_of = {
            c: i for i, c in s.execute(
                select(Invoice.id, Invoice.customer_id).where(Invoice.status == "open"))
        }  # fmt: skip
    start = balances(ctx, t)
    outcomes: list[str] = []
    lock = threading.Lock()

    def sale(kind: str, i: int) -> None:
        u = names[kind][i]
        try:
            if kind in ("far", "east", "north"):
                req = ActivationRequest(u, t["pkg"], f"{kind}-{i}")
                run_activation(ctx.factory, t["who"][kind], req)
            elif kind == "portal":
                me = Principal("customer", customer_id=cid[u])
                run_activation(ctx.factory, me, ActivationRequest(u, t["pkg"], f"p-{i}"))
            elif kind == "card":
                me = Principal("customer", customer_id=cid[u])
                serial, pin = made[i]
                req = ActivationRequest(u, t["pkg"], f"c-{i}", "card", serial, pin)
                run_activation(ctx.factory, me, req)
            elif kind == "recorded":
                with transaction(ctx.factory) as s:
                    invoices.pay(s, t["who"]["far"], inv_of[cid[u]])
            r = "ok"
        except PaymentRequired:
            r = "refused"
        except Exception as exc:  # noqa: BLE001 - shown by the assertion
            r = f"{kind}: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(r)

    def job() -> None:
        try:
            invoices.run(ctx.factory, due + timedelta(hours=1))  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - shown by the assertion
            with lock:
                outcomes.append(f"job: {type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=sale, args=(k, i))
        for k in ("far", "east", "north", "portal", "card", "recorded")
        for i in range(kinds[k])
    ] + [threading.Thread(target=job) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(180)
    assert set(outcomes) <= {"ok", "refused"}, [o for o in outcomes if o not in ("ok", "refused")]
    with reading(ctx.factory) as s:
        acts = s.execute(
            select(Activation.payer, Activation.idempotency_key).where(
                ~Activation.idempotency_key.like("s%"))
        ).all()  # fmt: skip
        pays = s.execute(select(Payment.method, Payment.invoice_id)).all()
        assert len({i for _, i in pays}) == len(pays)  # one payment per invoice
        job_paid = sum(1 for m, _ in pays if m == "balance")
        recorded = sum(1 for m, _ in pays if m == "reseller")
        assert len(acts) + len(pays) == 150, (len(acts), len(pays))
        assert ledger.check(s) == []
        floors = s.execute(select(func.count()).select_from(Account).where(
            Account.balance < Account.floor))  # fmt: skip
        assert floors.scalar() == 0
    by = {k: sum(1 for _, key in acts if key.startswith(p)) for k, p in
          (("far", "far-"), ("east", "east-"), ("north", "north-"), ("portal", "p-"),
           ("card", "c-"))}  # fmt: skip
    customer_paid = by["portal"] + by["card"] + job_paid
    far_sold = by["far"] + recorded
    got = balances(ctx, t)
    margin = CUSTOMER_PRICE - PRICES["far"]
    assert got["far"] == start["far"] - far_sold * PRICES["far"] + customer_paid * margin
    assert got["east"] == start["east"] - (far_sold + customer_paid + by["east"]) * PRICES["east"]
    assert got["north"] == D("0.00")
    assert sum(by.values()) + job_paid + recorded == 150
