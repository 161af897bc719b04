"""The operator tree: admin → reseller → sub-reseller → customers. Money goes down the
chain in one transaction, prepaid and postpaid floors hold under concurrency, and each
level sees its own subtree only."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from provisioner import access, ledger, registry
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import Conflict, Forbidden, NotFound, PaymentRequired
from provisioner.models import Activation, AuditLog, LedgerEntry, Reseller
from provisioner.read import customers, resellers
from provisioner.registry.resellers import operator_write, settle
from tests.support.factories import Factory

ADMIN = Principal("admin", name="test")


def tree(ctx: Context, *, parent_billing: str = "prepaid", limit: str = "0") -> dict[str, Any]:
    """admin → north (pays 300 for Home) → north-east (pays north 350) and north-west;
    south, a sibling of north. Customers under each."""
    make = Factory(ctx)
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"), name="Home", operator_price="400")
    with transaction(ctx.factory) as s:
        registry.create_reseller(
            s, "t", {"name": "north", "may_have_subresellers": True, "billing": parent_billing,
                     "credit_limit": limit},
        )  # fmt: skip
        registry.create_reseller(s, "t", {"name": "south"})
        registry.assign_package(s, "t", "north", pkg, "300")
        registry.assign_package(s, "t", "south", pkg)
        for sub in ("north-east", "north-west"):
            registry.create_reseller(s, "t", {"name": sub, "parent": "north"})
        registry.assign_package(s, "t", "north-east", pkg, "350", "500")
        ids = {r.name: r.id for r in s.scalars(select(Reseller))}
    for name, owner in (
        ("ne1", "north-east"),
        ("nw1", "north-west"),
        ("n1", "north"),
        ("s1", "south"),
    ):
        make.customer(None, router, username=name, reseller=owner, status="new")
    who = {name: Principal("reseller", reseller_id=i) for name, i in ids.items()}
    return {"pkg": pkg, "ids": ids, "who": who, "router": router, "make": make}


def balance(ctx: Context, reseller_id: int) -> Decimal:
    with reading(ctx.factory) as s:
        return ledger.balance(s, f"reseller:{reseller_id}")


@pytest.mark.parametrize("billing", ["prepaid", "postpaid"])
def test_a_parent_that_covers_150_lets_exactly_150_of_200_concurrent_activations_through(
    ctx_factory: Any, backend: str, billing: str
) -> None:
    ctx = ctx_factory(backend)
    limit = "45000" if billing == "postpaid" else "0"
    t = tree(ctx, parent_billing=billing, limit=limit)
    north, ne = t["ids"]["north"], t["ids"]["north-east"]
    router, make = t["router"], t["make"]
    for i in range(200):
        make.customer(None, router, username=f"c{i}", reseller="north-east", status="new")
    with transaction(ctx.factory) as s:
        ledger.topup(s, "t", f"reseller:{ne}", "100000")
        if billing == "prepaid":
            ledger.topup(s, "t", f"reseller:{north}", "45000")  # 150 x 300
    results: list[str] = []

    def buy(i: int) -> None:
        try:
            run_activation(
                ctx.factory, t["who"]["north-east"], ActivationRequest(f"c{i}", t["pkg"], f"k{i}")
            )
            results.append("ok")
        except PaymentRequired as exc:
            assert "refused up the chain: reseller 'north'" in str(exc)
            results.append("refused")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(200)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results.count("ok") == 150 and results.count("refused") == 50
    assert balance(ctx, ne) == Decimal("100000") - 150 * Decimal("350")
    assert balance(ctx, north) == (
        Decimal("0.00") if billing == "prepaid" else Decimal("-45000.00")
    )
    with reading(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 150
        assert ledger.check(s) == []
        margins = s.scalars(
            select(LedgerEntry.reference).where(LedgerEntry.account == f"reseller:{north}",
                                                LedgerEntry.kind == "activation")
        ).all()  # fmt: skip
        assert len(margins) == 150
        assert all("via north-east (paid 350.00, margin 50.00)" in m for m in margins)


def test_a_refusal_up_the_chain_changes_nothing(ctx: Context) -> None:
    t = tree(ctx)
    north, ne = t["ids"]["north"], t["ids"]["north-east"]
    with transaction(ctx.factory) as s:
        ledger.topup(s, "t", f"reseller:{ne}", "1000")  # north has nothing
    with pytest.raises(PaymentRequired, match="refused up the chain"):
        run_activation(
            ctx.factory, t["who"]["north-east"], ActivationRequest("ne1", t["pkg"], "k1")
        )
    assert (balance(ctx, ne), balance(ctx, north)) == (Decimal("1000.00"), Decimal("0.00"))
    with transaction(ctx.factory) as s:
        ledger.topup(s, "t", f"reseller:{north}", "1000")
        registry.unassign_package(s, "t", "north", t["pkg"])  # the parent lost it
    with pytest.raises(Conflict, match="no longer given to reseller 'north'"):
        run_activation(
            ctx.factory, t["who"]["north-east"], ActivationRequest("ne1", t["pkg"], "k2")
        )
    assert (balance(ctx, ne), balance(ctx, north)) == (Decimal("1000.00"), Decimal("1000.00"))


def test_a_postpaid_operator_may_owe_up_to_its_limit_and_settles(ctx: Context) -> None:
    t = tree(ctx)
    ne = t["ids"]["north-east"]
    with transaction(ctx.factory) as s:
        ledger.topup(s, "t", f"reseller:{t['ids']['north']}", "10000")
        r = operator_write(s, t["who"]["north"], {"billing": "postpaid", "credit_limit": "400"},
                           current=s.get(Reseller, ne))  # fmt: skip
        registry.update_reseller(s, "north", f"id:{ne}", r)
    run_activation(ctx.factory, t["who"]["north-east"], ActivationRequest("ne1", t["pkg"], "k1"))
    assert balance(ctx, ne) == Decimal("-350.00")  # owes its parent
    with transaction(ctx.factory) as s:
        registry.create_customer(s, "t", {"username": "ne2", "password": "x", "customer_type": "pppoe",
                                          "router": t["router"], "reseller": "north-east"})  # fmt: skip
    with pytest.raises(PaymentRequired, match="insufficient balance"):
        run_activation(
            ctx.factory, t["who"]["north-east"], ActivationRequest("ne2", t["pkg"], "k2")
        )
    with transaction(ctx.factory) as s:
        assert settle(s, "reseller:north", s.get(Reseller, ne), "350", "receipt 7") == Decimal(
            "0.00"
        )
        [row] = s.scalars(select(AuditLog).where(AuditLog.action == "settle")).all()
        assert row.after["reference"] == "receipt 7" and row.actor == "reseller:north"
    run_activation(ctx.factory, t["who"]["north-east"], ActivationRequest("ne2", t["pkg"], "k3"))
    assert balance(ctx, ne) == Decimal("-350.00")


# Who sees which customers and operators (never a sibling's or a parent's).
SEES = {
    "north": ({"ne1", "nw1", "n1"}, {"north-east", "north-west"}),
    "north-east": ({"ne1"}, set()),
    "north-west": ({"nw1"}, set()),
    "south": ({"s1"}, set()),
}


@pytest.mark.parametrize("who", sorted(SEES))
def test_each_level_sees_its_own_subtree_only(ctx: Context, who: str) -> None:
    t = tree(ctx)
    p = t["who"][who]
    want_customers, want_resellers = SEES[who]
    with reading(ctx.factory) as s:
        assert {c.username for c in customers.list_(s, p)} == want_customers
        assert {r.name for r in resellers.list_(s, p)} == want_resellers
        for name in ("ne1", "nw1", "n1", "s1"):
            if name not in want_customers:
                with pytest.raises(NotFound):
                    access.customer(s, p, name)
        for name in ("north", "south", "north-east", "north-west"):
            if name not in want_resellers:
                with pytest.raises(NotFound):
                    access.reseller(s, p, name)


def test_a_reseller_makes_sub_resellers_only_when_allowed_and_only_under_itself(
    ctx: Context,
) -> None:
    t = tree(ctx)
    with transaction(ctx.factory) as s:
        data = operator_write(s, t["who"]["north"], {"name": "north-north"}, current=None)
        assert data["parent"] == "north"
        with pytest.raises(Forbidden, match="stays under you"):
            operator_write(s, t["who"]["north"], {"name": "x", "parent": "south"}, current=None)
        with pytest.raises(Forbidden, match="may not have sub-resellers"):
            operator_write(s, t["who"]["north-east"], {"name": "y"}, current=None)
        registry.create_reseller(s, "t", {"name": "loop-test", "parent": "north-east"})
        from provisioner.errors import ValidationError

        with pytest.raises(ValidationError, match="loop"):
            registry.update_reseller(s, "t", "north", {"parent": "loop-test"})


def test_a_sub_reseller_is_given_only_its_parents_packages(ctx: Context) -> None:
    t = tree(ctx)
    other = t["make"].package(t["make"].master(name="other"), name="Other")
    with transaction(ctx.factory) as s:
        with pytest.raises(Forbidden, match="not in the list of 'north-west''s parent"):
            registry.assign_package(s, "t", "north-west", other)
        a = registry.assign_package(s, "t", "north-west", t["pkg"])  # no price: the parent's
        assert (a.price, a.customer_price) == (Decimal("300.00"), None)
