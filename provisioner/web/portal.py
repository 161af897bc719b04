"""The customer's self-service portal (``/portal``): its package, status, expiry, balance
and last activations; the public packages; buying or upgrading one with the balance or a
recharge card, and watching the activation go from pending to applied.

What a customer may buy, at what price, and that a suspended customer may look but not
buy, are ``activation``'s and ``access``'s rules, as for a customer's API token.
"""

from __future__ import annotations

import secrets as pysecrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import activation, users
from provisioner.activation import ActivationRequest
from provisioner.auth import Principal
from provisioner.errors import Forbidden, ProvisionerError, ValidationError
from provisioner.http_threads import Route
from provisioner.read import activations, balances, customers, packages
from provisioner.web.common import (
    LOGIN,
    CustomerUser,
    Form,
    check_csrf,
    ctx_of,
    customer,
    errors_of,
    flash,
    is_htmx,
    page,
    read,
    redirect,
    status_for,
    write,
    zone_of,
)
from provisioner.web.dashboard import usage_context

router = APIRouter(
    route_class=Route, prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)]
)
BUY_FIELDS = ("balance", "card", "card_serial", "card_pin")
PASSWORD_FIELDS = ("current", "password", "confirm")
FLASH = "portal_bought"


def buyer(request: Request) -> Principal:
    """The customer, when it may buy: a suspended one may only look (as with its token)."""
    me = customer(request)
    if me.read_only:
        raise Forbidden("this account is suspended; contact your provider")
    return me


Buyer = Annotated[Principal, Depends(buyer)]


@router.get("/")
def home(request: Request, me: CustomerUser) -> Response:
    def load(s: Session) -> dict[str, Any]:
        return {
            "customer": customers.me(s, me),
            "balance": balances.mine(s, me).balance,
            "recent": activations.list_(s, me, limit=5),
            **usage_context(s, me, f"id:{me.customer_id}", zone_of(request)),
        }

    return page(request, "portal/home.html", me, **read(request, load))


@router.get("/packages")
def package_list(request: Request, me: CustomerUser) -> Response:
    def load(s: Session) -> dict[str, Any]:
        return {"packages": packages.list_(s, me), "customer": customers.me(s, me)}

    return page(request, "portal/packages.html", me, **read(request, load))


def _buy_page(
    request: Request,
    me: Principal,
    package_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    def load(s: Session) -> dict[str, Any]:
        return {
            "package": packages.get(s, me, f"id:{package_id}"),
            "quote": activations.quote(s, me, f"id:{package_id}"),
            "customer": customers.me(s, me),
        }

    form = form or {"key": "portal-" + pysecrets.token_urlsafe(16)}
    return page(
        request, "portal/buy.html", me, status=status, form=form, errors=errors or {},
        **read(request, load),
    )  # fmt: skip


@router.get("/packages/{package_id}")
def buy_form(request: Request, me: CustomerUser, package_id: int) -> Response:
    return _buy_page(request, me, package_id)


@router.post("/packages/{package_id}/buy")
def buy(request: Request, me: Buyer, package_id: int, form: Form) -> Response:
    """Buy (or renew, or upgrade to) a public package from the balance or with a card.
    The form's key makes a second submit of the same form return the first activation."""
    by_card = form.get("method") == "card"
    req = ActivationRequest(
        customer=f"id:{me.customer_id}",
        package=f"id:{package_id}",
        idempotency_key=form.get("key", ""),
        payer="card" if by_card else "auto",
        card_serial=form.get("card_serial") if by_card else None,
        card_pin=form.get("card_pin") if by_card else None,
    )
    before = read(request, lambda s: balances.mine(s, me).balance)
    try:
        act_id, _created = activation.run_activation(ctx_of(request).factory, me, req)
    except ProvisionerError as exc:
        errors = errors_of(exc, BUY_FIELDS)
        if by_card and "card" not in errors and "balance" in errors:
            errors["card"] = errors.pop("balance")
        form = {k: v for k, v in form.items() if k != "card_pin"}
        return _buy_page(request, me, package_id, form=form, errors=errors, status=status_for(exc))
    after = read(request, lambda s: balances.mine(s, me).balance)
    request.session[FLASH] = {"id": act_id, "before": before, "after": after}
    return redirect(request, f"/portal/activations/{act_id}")


@router.get("/activations/{act_id}")
def activation_page(request: Request, me: CustomerUser, act_id: int) -> Response:
    a = read(request, lambda s: activations.get(s, me, act_id))
    flash = request.session.get(FLASH)
    bought = flash if isinstance(flash, dict) and flash.get("id") == act_id else None
    return page(
        request, "portal/activation.html", me, a=a, bought=bought,
        status_url=f"/portal/activations/{act_id}/status",
    )  # fmt: skip


@router.get("/activations/{act_id}/status")
def activation_status(request: Request, me: CustomerUser, act_id: int) -> Response:
    """The status line alone (htmx polls it while the activation is pending)."""
    a = read(request, lambda s: activations.get(s, me, act_id))
    if not is_htmx(request):
        return redirect(request, f"/portal/activations/{act_id}")
    return page(
        request, "_activation_status.html", me, a=a,
        status_url=f"/portal/activations/{act_id}/status",
    )  # fmt: skip


# ---- the portal password ---------------------------------------------------------------


@router.get("/password")
def password_form(request: Request, me: CustomerUser) -> Response:
    has = read(request, lambda s: users.has_portal_password(s, me.customer_id or 0))
    return page(request, "portal/password.html", me, has_portal_password=has)


@router.post("/password")
def set_password(request: Request, me: CustomerUser, form: Form) -> Response:
    """A portal password of the customer's own, apart from its PPPoE password (which then
    no longer opens the portal). This session carries on; any other one ends."""
    cid = me.customer_id or 0
    try:
        if form.get("password", "") != form.get("confirm", ""):
            raise ValidationError("does not match the new password", field="confirm")
        write(
            request,
            lambda s: users.set_portal_password(
                s, me.actor, cid, form.get("current", ""), form.get("password", "")
            ),
        )
    except ProvisionerError as exc:
        has = read(request, lambda s: users.has_portal_password(s, cid))
        return page(
            request, "portal/password.html", me, status=status_for(exc),
            errors=errors_of(exc, PASSWORD_FIELDS), has_portal_password=has,
        )  # fmt: skip
    request.session[LOGIN] = read(request, lambda s: users.customer_session(s, cid))
    flash(request, "Your portal password is set. Log in with it from now on.")
    return redirect(request, "/portal/")
