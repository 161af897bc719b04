"""The reseller's desk (``/ui/desk``): its own customers only (add, edit, search), an
activation or renewal from its assigned packages at its own operator price with its
balance before and after, and its ledger.

Another reseller's customer answers 404, exactly as through the API: every page reaches
customers through ``access`` with the reseller's ``Principal``, and what a reseller may
set on a customer is ``registry.customers.reseller_write``'s rule.
"""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import access, activation, registry
from provisioner.activation import ActivationRequest
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError
from provisioner.http_threads import Route
from provisioner.read import activations, balances, customers, packages, resellers
from provisioner.registry.customers import reseller_write
from provisioner.schemas import CustomerCreate, CustomerUpdate
from provisioner.web import customers as shared
from provisioner.web import formats
from provisioner.web.common import (
    Form,
    ResellerUser,
    check_csrf,
    ctx_of,
    errors_of,
    flash,
    is_htmx,
    page,
    read,
    redirect,
    status_for,
    write,
)
from provisioner.web.forms import body, text_of
from provisioner.web.lists import PAGE_SIZE, csv_response, number_of, paging

router = APIRouter(
    route_class=Route,
    prefix="/ui/desk",
    include_in_schema=False,
    dependencies=[Depends(check_csrf)],
)
FIELDS = ("username", "password", "customer_type", "router", "package", "static_ip", "mac_address")
ACTIVATE_FIELDS = ("package", "balance")
AREA = "/ui/desk/customers"
FLASH = "desk_activated"


@router.get("")
def desk(request: Request, me: ResellerUser) -> Response:
    found = shared.search_context(request, me, "/ui/desk")
    if request.headers.get("HX-Target") == "customer-rows":
        return page(request, "_customer_rows.html", me, **found, edit_base=AREA)

    def load(s: Session) -> dict[str, Any]:
        return {
            "reseller": resellers.me(s, me),
            "balance": balances.mine(s, me).balance,
            "packages": packages.list_(s, me),
        }

    return page(request, "desk/home.html", me, **found, **read(request, load), edit_base=AREA)


@router.get(".csv")
def customers_csv(request: Request, me: ResellerUser) -> Response:
    return shared.search_csv(request, me, "customers.csv")


@router.get("/customers")
def customer_list(request: Request, me: ResellerUser) -> Response:
    return redirect(request, "/ui/desk")


def _form_page(request: Request, me: Principal, form: dict[str, str], **kw: Any) -> Response:
    return shared.form_page(request, me, form, area=AREA, fields=FIELDS, **kw)


@router.get("/customers/new")
def new_customer(request: Request, me: ResellerUser) -> Response:
    return _form_page(request, me, {"customer_type": "pppoe"})


@router.post("/customers/new")
def create_customer(request: Request, me: ResellerUser, form: Form) -> Response:
    def action(s: Session) -> Any:
        data = reseller_write(s, me, body(CustomerCreate, form, FIELDS))
        return registry.create_customer(s, me.actor, data)

    try:
        c = write(request, action)
    except ProvisionerError as exc:
        return _form_page(request, me, form, errors=errors_of(exc, FIELDS), status=status_for(exc))
    flash(request, f"Customer {c.username!r} added.")
    return redirect(request, f"{AREA}/{c.id}")


@router.get("/customers/{customer_id}")
def edit_customer(request: Request, me: ResellerUser, customer_id: int) -> Response:
    c = read(request, lambda s: customers.get(s, me, f"id:{customer_id}"))
    return _form_page(request, me, text_of(c, FIELDS), customer_id=customer_id)


@router.post("/customers/{customer_id}")
def update_customer(request: Request, me: ResellerUser, customer_id: int, form: Form) -> Response:
    def action(s: Session) -> str:
        c = access.customer(s, me, f"id:{customer_id}")
        current = text_of(customers.view(c), FIELDS)
        data = reseller_write(s, me, body(CustomerUpdate, form, FIELDS, current=current), current=c)
        registry.update_customer(s, me.actor, c.username, data)
        return f"Customer {c.username!r} saved." if data else "Nothing was changed."

    read(request, lambda s: customers.get(s, me, f"id:{customer_id}"))  # 404: not its own
    try:
        message = write(request, action)
    except ProvisionerError as exc:
        return _form_page(
            request, me, form, customer_id=customer_id, errors=errors_of(exc, FIELDS),
            status=status_for(exc),
        )  # fmt: skip
    flash(request, message)
    return redirect(request, f"{AREA}/{customer_id}")


@router.post("/customers/{customer_id}/portal-password")
def reset_portal_password(request: Request, me: ResellerUser, customer_id: int) -> Response:
    return shared.reset_portal_password(request, me, customer_id, AREA)


# ---- activations -----------------------------------------------------------------------


def _activate_page(
    request: Request,
    me: Principal,
    customer_id: int,
    form: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    def load(s: Session) -> dict[str, Any]:
        c = customers.get(s, me, f"id:{customer_id}")
        offered = [p for p in packages.list_(s, me) if p.type == c.customer_type]
        chosen = form.get("package") or (
            c.package if any(p.name == c.package for p in offered) else ""
        )
        chosen = chosen or (offered[0].name if offered else "")
        quote = activations.quote(s, me, chosen) if chosen else None
        return {"customer": c, "offered": offered, "chosen": chosen, "quote": quote}

    found = read(request, load)
    settings = ctx_of(request).settings

    def money(value: object) -> str:
        return formats.money_text(value, settings)

    offered = found["offered"]
    form = {"key": "desk-" + pysecrets.token_urlsafe(16), **form, "package": found["chosen"]}
    return page(
        request, "desk/activate.html", me, status=status, form=form, errors=errors or {},
        package_choices=[(p.name, f"{p.name} — {money(p.operator_price)}") for p in offered],
        **found,
    )  # fmt: skip


@router.get("/customers/{customer_id}/activate")
def activate_form(
    request: Request, me: ResellerUser, customer_id: int, package: str = ""
) -> Response:
    return _activate_page(request, me, customer_id, {"package": package} if package else {})


@router.get("/quote")
def quote(request: Request, me: ResellerUser, package: str = "") -> Response:
    """The price and the balance after it, for the package chosen (htmx, as it changes)."""
    q = read(request, lambda s: activations.quote(s, me, package))
    return page(request, "desk/_quote.html", me, quote=q)


@router.post("/customers/{customer_id}/activate")
def activate(request: Request, me: ResellerUser, customer_id: int, form: Form) -> Response:
    """Activate or renew a package for the customer, paid from the reseller's balance at
    its own operator price, in one transaction (``activation``)."""
    read(request, lambda s: customers.get(s, me, f"id:{customer_id}"))  # 404: not its own
    if form.get("show"):  # without JavaScript: the price of the package chosen
        return _activate_page(request, me, customer_id, form)
    req = ActivationRequest(
        customer=f"id:{customer_id}",
        package=form.get("package", ""),
        idempotency_key=form.get("key", ""),
        payer="auto",
    )
    before = read(request, lambda s: balances.mine(s, me).balance)
    try:
        act_id, _created = activation.run_activation(ctx_of(request).factory, me, req)
    except ProvisionerError as exc:
        return _activate_page(
            request, me, customer_id, form, errors=errors_of(exc, ACTIVATE_FIELDS),
            status=status_for(exc),
        )  # fmt: skip
    after = read(request, lambda s: balances.mine(s, me).balance)
    request.session[FLASH] = {"id": act_id, "before": before, "after": after}
    return redirect(request, f"/ui/desk/activations/{act_id}")


@router.get("/activations/{act_id}")
def activation_page(request: Request, me: ResellerUser, act_id: int) -> Response:
    a = read(request, lambda s: activations.get(s, me, act_id))
    flash_data = request.session.get(FLASH)
    done = flash_data if isinstance(flash_data, dict) and flash_data.get("id") == act_id else None
    return page(
        request, "desk/activation.html", me, a=a, done=done,
        status_url=f"/ui/desk/activations/{act_id}/status",
    )  # fmt: skip


@router.get("/activations/{act_id}/status")
def activation_status(request: Request, me: ResellerUser, act_id: int) -> Response:
    a = read(request, lambda s: activations.get(s, me, act_id))
    if not is_htmx(request):
        return redirect(request, f"/ui/desk/activations/{act_id}")
    return page(
        request, "_activation_status.html", me, a=a,
        status_url=f"/ui/desk/activations/{act_id}/status",
    )  # fmt: skip


@router.get("/ledger")
def ledger_page(request: Request, me: ResellerUser) -> Response:
    """The reseller's ledger, newest first, 25 entries a page."""
    number = number_of(request)
    account = read(
        request, lambda s: balances.mine(s, me, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    )
    return page(
        request, "desk/ledger.html", me, account=account,
        **paging("/ui/desk/ledger", {}, number, account.entries.total),
    )  # fmt: skip


@router.get("/ledger.csv")
def ledger_csv(request: Request, me: ResellerUser) -> Response:
    account = read(request, lambda s: balances.mine(s, me, limit=None))
    return csv_response(
        "ledger.csv", ["when (UTC)", "amount", "kind", "reference"],
        ([e.at, e.amount, e.kind, e.reference] for e in account.entries.items),
    )  # fmt: skip
