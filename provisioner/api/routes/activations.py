"""Activations, balances and recharge cards.

Anyone with a token may ask for an activation; ``activation.activate`` decides what each
role may buy and who pays (reseller: its operator price from its balance; customer:
public packages at the customer's price, from its balance or a card; admin: anything,
free or charged to a named payer). A repeated idempotency key returns the first
activation (200) and charges nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy import select

from provisioner import activation, ledger, views
from provisioner.activation import ActivationRequest
from provisioner.api import scope
from provisioner.api.deps import AdminDep, CtxDep, PrincipalDep, SessionDep
from provisioner.api.schemas import ActivationCreate, CardBatch, CardRedeem, TopUp
from provisioner.errors import Forbidden, NotFound, ValidationError
from provisioner.models import Activation, Customer, Package, Visibility

router = APIRouter(tags=["activations"])


@router.post("/activations", status_code=201)
def create_activation(
    body: ActivationCreate,
    ctx: CtxDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Activate in one transaction; the router/CoA work runs after it (see ``status``)."""
    key = body.idempotency_key or idempotency_key
    if not key:
        raise ValidationError(
            "is required (body field or Idempotency-Key header)", field="idempotency_key"
        )
    if principal.role != "admin" and body.payer not in ("auto", "card"):
        raise Forbidden("only an admin chooses who pays")
    req = ActivationRequest(
        body.customer, body.package, key, body.payer, body.card_serial, body.card_pin
    )
    act_id, created = activation.run_activation(ctx.factory, principal, req, ctx.settings)
    if not created:
        response.status_code = 200
    with ctx.factory() as s:
        return scope.activation_view(principal, activation.activation_view(s, act_id))


@router.get("/activations")
def list_activations(
    session: SessionDep,
    principal: PrincipalDep,
    customer: Annotated[str | None, Query(description="a username (or id)")] = None,
    status: Annotated[str | None, Query(description="pending | applied | failed")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """Activations, newest first, each as ``GET /activations/{id}`` shows it, plus ``at``.
    Admin: all of them. Reseller: its customers'. Customer: its own."""
    return scope.activations(session, principal, customer_ref=customer, status=status, limit=limit)


@router.get("/activations/{act_id}")
def get_activation(act_id: int, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """An activation and its provisioning status: pending, applied, or failed with the reason."""
    a = session.get(Activation, act_id)
    c = session.get(Customer, a.customer_id) if a else None
    allowed = c is not None and (
        principal.role == "admin"
        or (
            principal.role == "reseller"
            and c.reseller_id == scope.own_reseller(session, principal).id
        )
        or (principal.role == "customer" and c.id == principal.customer_id)
    )
    if not allowed:
        raise NotFound(f"no activation {act_id}")
    return scope.activation_view(principal, activation.activation_view(session, act_id))


def _own_account(principal: PrincipalDep) -> str:
    if principal.role == "reseller":
        return ledger.account_of("reseller", principal.reseller_id or 0)
    if principal.role == "customer":
        return ledger.account_of("customer", principal.customer_id or 0)
    raise Forbidden("an admin has no balance; use GET /balances/{account}")


def _balance_body(session: SessionDep, account: str) -> dict[str, Any]:
    return {
        "account": account,
        "balance": str(ledger.balance(session, account)),
        "entries": [
            {
                "at": e.created_at.isoformat(),
                "amount": str(e.amount),
                "kind": e.kind,
                "reference": e.reference,
            }
            for e in ledger.entries(session, account)
        ],
    }


@router.get("/balance")
def my_balance(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """The caller's own balance (reseller or customer) and the ledger it sums."""
    return _balance_body(session, _own_account(principal))


@router.get("/balances/{account}")
def balance(account: str, session: SessionDep, _admin: AdminDep) -> dict[str, Any]:
    return _balance_body(session, account)


@router.post("/topups", status_code=201)
def topup(body: TopUp, session: SessionDep, admin: AdminDep) -> dict[str, Any]:
    """Credit a balance (a top-up or a refund): one ledger row."""
    new = ledger.topup(
        session, admin.actor, body.account, body.amount, kind="refund" if body.refund else "topup"
    )
    return {"account": body.account, "balance": str(new)}


@router.post("/cards", status_code=201)
def generate_cards(body: CardBatch, session: SessionDep, _admin: AdminDep) -> dict[str, Any]:
    """A batch of recharge cards; the PINs are shown this once."""
    cards = activation.generate_cards(session, body.count, body.value, body.days, body.batch)
    return {"batch": body.batch, "cards": [{"serial": s, "pin": p} for s, p in cards]}


@router.post("/cards/redeem")
def redeem_card(body: CardRedeem, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """Top up a customer's balance with a card (once). Customers redeem for themselves."""
    if principal.role == "reseller":
        raise Forbidden("cards are redeemed by customers (or an admin for them)")
    if principal.role == "customer":
        me = session.get(Customer, principal.customer_id)
        target = me.username if me else ""
    else:
        if not body.customer:
            raise ValidationError("an admin names the customer to credit", field="customer")
        target = body.customer
    new = activation.redeem_card(session, principal, target, body.serial, body.pin)
    return {"customer": target, "balance": str(new)}


@router.get("/public/packages")
def public_packages(session: SessionDep) -> list[dict[str, Any]]:
    """The self-service listing (no token): public packages with price and duration."""
    q = select(Package).where(Package.visibility == Visibility.public).order_by(Package.name)
    return [views.public_package(p) for p in session.scalars(q)]
