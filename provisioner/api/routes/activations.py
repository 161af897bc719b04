"""Activations, balances and recharge cards.

Anyone with a token may ask for an activation; ``activation.activate`` decides what each
role may buy and who pays (reseller: its operator price from its balance; customer:
public packages at the customer's price, from its balance or a card; admin: anything,
free or charged to a named payer). A repeated idempotency key returns the first
activation (200) and charges nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from provisioner import access, activation, cards, ledger
from provisioner.activation import ActivationRequest
from provisioner.api.deps import AdminDep, CtxDep, PagingDep, PrincipalDep, SessionDep
from provisioner.errors import Forbidden, ValidationError
from provisioner.http_threads import Route, slow
from provisioner.read import activations, balances, packages
from provisioner.read.models import (
    ActivationOut,
    ActivationRow,
    BalanceOut,
    CardBatchOut,
    CardOut,
    ErrorOut,
    Page,
    PublicPackageOut,
    RedeemOut,
    TopUpOut,
)
from provisioner.schemas import (
    AccountRef,
    ActivationCreate,
    ActivationStatus,
    CardBatch,
    CardRedeem,
    DateTime,
    Ref,
    TopUp,
)
from provisioner.validation import MAX_INT

router = APIRouter(route_class=Route, tags=["activations"])


@router.post(
    "/activations",
    status_code=201,
    responses={
        200: {"model": ActivationOut, "description": "this caller's key used before for the "
              "same request: the first activation, and nothing charged"},
        402: {"model": ErrorOut, "description": "the payer (or an operator above it) "
              "cannot pay: nothing charged anywhere"},
    },
)  # fmt: skip
def create_activation(
    body: ActivationCreate,
    ctx: CtxDep,
    principal: PrincipalDep,
    response: Response,
) -> ActivationOut:
    """Activate in one transaction; the router/CoA work runs after it (see ``status``)."""
    key = body.idempotency_key
    if principal.role != "admin" and body.payer not in ("auto", "card"):
        raise Forbidden("only an admin chooses who pays")
    req = ActivationRequest(
        body.customer, body.package, key, body.payer, body.card_serial, body.card_pin
    )
    (_, created), shown = activation.run_and_view(
        ctx.factory,
        principal,
        req,
        lambda s, a: activations.view(s, principal, a),
    )
    if not created:
        response.status_code = 200
    assert shown is not None
    return shown


@router.get("/activations")
def list_activations(
    session: SessionDep,
    principal: PrincipalDep,
    paging: PagingDep,
    customer: Annotated[Ref | None, Query(description="a username, or id:N")] = None,
    status: Annotated[ActivationStatus | None, Query()] = None,
    since: Annotated[
        DateTime | None, Query(description="made at or after: ISO date/time (UTC if no zone)")
    ] = None,
) -> Page[ActivationRow]:
    """Activations, newest first, a page at a time, each as ``GET /activations/{id}``
    shows it, plus ``at``. Admin: all of them. Reseller: its customers'. Customer: its own."""
    return activations.page(
        session,
        principal,
        customer=customer,
        status=status,
        since=since,
        limit=paging.limit,
        offset=paging.offset,
    )


@router.get("/activations/{act_id}")
def get_activation(
    act_id: Annotated[int, Path(ge=1, le=MAX_INT)], session: SessionDep, principal: PrincipalDep
) -> ActivationOut:
    """An activation and its provisioning status: pending, applied, or failed with the reason."""
    return activations.get(session, principal, act_id)


@router.get("/balance")
def my_balance(session: SessionDep, principal: PrincipalDep, paging: PagingDep) -> BalanceOut:
    """The caller's own balance (reseller or customer) and a page of the ledger it sums,
    newest first."""
    return balances.mine(session, principal, limit=paging.limit, offset=paging.offset)


@router.get("/balances/{account}")
def balance(
    account: AccountRef, session: SessionDep, admin: AdminDep, paging: PagingDep
) -> BalanceOut:
    """Any account's balance and a page of its ledger, newest first."""
    return balances.of_account(session, admin, account, limit=paging.limit, offset=paging.offset)


@router.post("/topups", status_code=201)
def topup(body: TopUp, session: SessionDep, admin: AdminDep) -> TopUpOut:
    """Credit a balance (a top-up or a refund): one ledger row."""
    account = ledger.resolve(session, body.account)
    new = ledger.topup(
        session, admin.actor, account, body.amount, kind="refund" if body.refund else "topup"
    )
    return TopUpOut(account=account, balance=str(new))


@router.post("/cards", status_code=201)
@slow  # up to 10,000 cards in one transaction
def generate_cards(body: CardBatch, session: SessionDep, _admin: AdminDep) -> CardBatchOut:
    """A batch of recharge cards; the PINs are shown this once."""
    made = cards.generate(session, body.count, body.value, body.days, body.batch)
    return CardBatchOut(batch=body.batch, cards=[CardOut(serial=s, pin=p) for s, p in made])


@router.post("/cards/redeem")
def redeem_card(body: CardRedeem, session: SessionDep, principal: PrincipalDep) -> RedeemOut:
    """Top up a customer's balance with a card (once). Customers redeem for themselves."""
    if principal.role == "reseller":
        raise Forbidden("cards are redeemed by customers (or an admin for them)")
    if principal.role == "customer":
        target = access.own_customer(session, principal).username
    elif body.customer:
        target = body.customer
    else:
        raise ValidationError("an admin names the customer to credit", field="customer")
    new = cards.redeem(session, principal, target, body.serial, body.pin)
    return RedeemOut(customer=target, balance=str(new))


@router.get("/public/packages")
def public_packages(session: SessionDep, paging: PagingDep) -> Page[PublicPackageOut]:
    """The self-service listing (no token): public packages with price and duration."""
    return packages.public(session, limit=paging.limit, offset=paging.offset)
