"""Review findings on activations: idempotency keys across callers, who pays."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from provisioner import ledger, registry
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import Conflict, Forbidden, ValidationError
from provisioner.models import Activation, Customer, Reseller
from tests.conftest import Factory


def _two_resellers(ctx: Context, make: Factory) -> tuple[Principal, Principal, str]:
    """Resellers A and B, each with a customer (alice, bob) and 1000 on its balance."""
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"), name="Home", operator_price="400")
    who = []
    with transaction(ctx.factory) as s:
        for name, customer in (("resA", "alice"), ("resB", "bob")):
            registry.create_reseller(s, "t", {"name": name})
            registry.assign_package(s, "t", name, pkg)
            registry.create_customer(
                s,
                "t",
                {
                    "username": customer,
                    "password": "p",
                    "customer_type": "pppoe",
                    "router": router,
                    "reseller": name,
                },
            )
            rid = s.scalar(select(Reseller.id).where(Reseller.name == name))
            ledger.topup(s, "admin", f"reseller:{rid}", "1000")
            who.append(Principal("reseller", reseller_id=rid))
    return who[0], who[1], pkg


def test_another_callers_idempotency_key_is_refused_not_replayed(
    any_ctx: Context,
) -> None:
    make = Factory(any_ctx)
    a, b, pkg = _two_resellers(any_ctx, make)
    first, created = run_activation(
        any_ctx.factory, a, ActivationRequest("alice", pkg, "order-1"))
    assert created
    # Reseller B happens to (or on purpose) send A's key for its own customer: it must
    # neither get A's activation (A's customer, price) nor have its own silently dropped.
    with pytest.raises(Conflict, match="idempotency key"):
        run_activation(
            any_ctx.factory, b, ActivationRequest("bob", pkg, "order-1"))
    with transaction(any_ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 1
        assert ledger.balance(s, f"reseller:{b.reseller_id}") == Decimal("1000.00")
        bob = s.scalar(select(Customer).where(Customer.username == "bob"))
        assert bob is not None and bob.status == "new"
    # The caller that made it still replays it, and is charged once.
    again = run_activation(
        any_ctx.factory, a, ActivationRequest("alice", pkg, " order-1 "))
    assert again == (first, False)
    with transaction(any_ctx.factory) as s:
        assert ledger.balance(s, f"reseller:{a.reseller_id}") == Decimal("600.00")


def test_an_unknown_payer_is_refused_not_granted_for_free(ctx: Context, make: Factory) -> None:
    a, _, pkg = _two_resellers(ctx, make)
    admin = Principal("admin", name="test")
    # A typo for "reseller" must not fall through to the admin's free grant.
    with pytest.raises(ValidationError, match="payer: must be one of"):
        run_activation(
            ctx.factory,
            admin,
            ActivationRequest("alice", pkg, "k1", payer="resellr"))
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 0
        alice = s.scalar(select(Customer).where(Customer.username == "alice"))
        assert alice is not None and alice.status == "new"
    # The spelled-out payers still work: "reseller" charges, "admin" grants.
    run_activation(
        ctx.factory, admin, ActivationRequest("alice", pkg, "k2", payer="reseller"))
    with transaction(ctx.factory) as s:
        assert ledger.balance(s, f"reseller:{a.reseller_id}") == Decimal("600.00")


def test_a_suspended_customer_cannot_lift_its_suspension_by_buying(
    ctx: Context, make: Factory
) -> None:
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home"), name="Home", visibility="public")
    make.customer(None, router, username="carol", status="suspended")
    with transaction(ctx.factory) as s:
        carol = s.scalar(select(Customer).where(Customer.username == "carol"))
        assert carol is not None
        ledger.topup(s, "admin", f"customer:{carol.id}", "1000")
        me = Principal("customer", customer_id=carol.id)
    with pytest.raises(Forbidden, match="suspended"):
        run_activation(ctx.factory, me, ActivationRequest("carol", pkg, "k1"))
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Activation)) == 0
        assert ledger.balance(s, f"customer:{me.customer_id}") == Decimal("1000.00")
        carol = s.scalar(select(Customer).where(Customer.username == "carol"))
        assert carol is not None and carol.status == "suspended"
    # An expired customer renews itself, as before.
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "t", "carol", {"status": "expired"})
    run_activation(ctx.factory, me, ActivationRequest("carol", pkg, "k2"))
    with transaction(ctx.factory) as s:
        assert ledger.balance(s, f"customer:{me.customer_id}") == Decimal("500.00")
