"""Invoices in all three faces: the admin's (``/ui/invoices``), the reseller's
(``/ui/desk/invoices``, its subtree's) and the customer's (``/portal/invoices``, its
own): lists with filters and paging, the invoice page and its print, paying.

Every payment is ``invoices.pay`` and every cancellation ``invoices.void``, as through
the API: an admin records money received, a reseller records cash it collected (paying
its own price from its balance), a customer pays from its balance or with a recharge
card, even while suspended as unpaid (service comes back at once); only an admin voids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import invoices
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError
from provisioner.http_threads import Route
from provisioner.read import invoices as read_invoices
from provisioner.read import resellers
from provisioner.read.models import Page
from provisioner.web import formats
from provisioner.web.common import (
    AdminUser,
    CustomerUser,
    Form,
    ResellerUser,
    check_csrf,
    errors_of,
    flash,
    page,
    read,
    redirect,
    status_for,
    write,
    zone_of,
)

router = APIRouter(route_class=Route, include_in_schema=False, dependencies=[Depends(check_csrf)])
PAGE_SIZE = 25
BASE = {"admin": "/ui/invoices", "reseller": "/ui/desk/invoices", "customer": "/portal/invoices"}
LAYOUT = {"admin": "admin/base.html", "reseller": "desk/base.html", "customer": "portal/base.html"}
PAY_FIELDS = ("reference", "balance", "card", "card_serial", "card_pin")
STATUSES = [("", "any status")] + [(s, s) for s in invoices.STATUSES]


def _day(text: str, zone: str, field: str) -> datetime | None:
    """A date input's day, from its local midnight (in UTC)."""
    if not text:
        return None
    value = formats.utc_of_local(text + ("T00:00" if "T" not in text else ""), zone, field)
    return formats.as_utc(value)


def _list(request: Request, me: Principal) -> Response:
    q = request.query_params
    keys = ("q", "status", "reseller", "due_from", "due_to")
    filters = {k: q.get(k, "").strip() for k in keys}
    if me.role != "admin":
        filters["reseller"] = ""
    if me.role == "customer":
        filters["q"] = ""
    try:
        number = max(1, int(q.get("page", "1")))
    except ValueError:
        number = 1
    zone = zone_of(request)
    errors: dict[str, str] = {}
    try:
        due_from = _day(filters["due_from"], zone, "due_from")
        due_to = _day(filters["due_to"], zone, "due_to")
    except ProvisionerError as exc:
        errors = errors_of(exc, keys)
        due_from = due_to = None

    def load(s: Session) -> dict[str, Any]:
        # The day "to" is part of the range: up to the next local midnight.
        before = due_to + timedelta(days=1) if due_to is not None else None
        found = read_invoices.page(
            s, me, q=filters["q"] or None, status=filters["status"] or None,
            reseller=filters["reseller"] or None, due_from=due_from, due_before=before,
            offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )  # fmt: skip
        out: dict[str, Any] = {"result": found}
        if me.role == "admin":
            out["reseller_choices"] = [("", "every reseller")] + [
                (r.name, r.name) for r in resellers.list_(s, me)
            ]
        return out

    try:
        found = read(request, load)
    except ProvisionerError as exc:
        errors = errors_of(exc, keys)
        found = {"result": Page[read_invoices.InvoiceRow](items=[], total=0, limit=1, offset=0)}
    total = found["result"].total
    base = BASE[me.role]

    def link(n: int) -> str:
        return f"{base}?{urlencode({**{k: v for k, v in filters.items() if v}, 'page': n})}"

    return page(
        request, "invoices.html", me, layout=LAYOUT[me.role], base=base, filters=filters,
        statuses=STATUSES, number=number, pages=max(1, -(-total // PAGE_SIZE)),
        prev_url=link(number - 1) if number > 1 else None,
        next_url=link(number + 1) if number * PAGE_SIZE < total else None,
        errors=errors, title="Invoices", **found,
    )  # fmt: skip


def _invoice_page(
    request: Request,
    me: Principal,
    invoice_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    def load(s: Session) -> Any:
        found = read_invoices.get(s, me, invoice_id)
        formats.load_names(request, s, [p.actor for p in found.payments])
        return found

    inv = read(request, load)
    return page(
        request, "invoice.html", me, status=status, layout=LAYOUT[me.role], base=BASE[me.role],
        inv=inv, form=form or {}, errors=errors or {}, title=f"Invoice {inv.id}",
    )  # fmt: skip


def _print(request: Request, me: Principal, invoice_id: int) -> Response:
    inv = read(request, lambda s: read_invoices.get(s, me, invoice_id))
    return page(request, "invoice_print.html", me, inv=inv, base=BASE[me.role])


def _pay(request: Request, me: Principal, invoice_id: int, form: dict[str, str]) -> Response:
    by_card = me.role == "customer" and form.get("method") == "card"

    def action(s: Session) -> Any:
        return invoices.pay(
            s, me, invoice_id, reference=form.get("reference", "")[:128],
            card_serial=form.get("card_serial") if by_card else None,
            card_pin=form.get("card_pin") if by_card else None,
        )  # fmt: skip

    try:
        write(request, action)
    except ProvisionerError as exc:
        errors = errors_of(exc, PAY_FIELDS)
        if "_" in errors and me.role == "customer":
            errors["card" if by_card else "balance"] = errors.pop("_")
        kept = {k: v for k, v in form.items() if k != "card_pin"}
        return _invoice_page(
            request, me, invoice_id, form=kept, errors=errors, status=status_for(exc)
        )
    flash(request, f"Invoice {invoice_id} is paid." + (
        " Your service is back on." if me.role == "customer" else ""
    ))  # fmt: skip
    return redirect(request, f"{BASE[me.role]}/{invoice_id}")


# ---- the admin -------------------------------------------------------------------------


@router.get("/ui/invoices")
def admin_list(request: Request, me: AdminUser) -> Response:
    return _list(request, me)


@router.get("/ui/invoices/{invoice_id}")
def admin_invoice(request: Request, me: AdminUser, invoice_id: int) -> Response:
    return _invoice_page(request, me, invoice_id)


@router.get("/ui/invoices/{invoice_id}/print")
def admin_print(request: Request, me: AdminUser, invoice_id: int) -> Response:
    return _print(request, me, invoice_id)


@router.post("/ui/invoices/{invoice_id}/pay")
def admin_pay(request: Request, me: AdminUser, invoice_id: int, form: Form) -> Response:
    return _pay(request, me, invoice_id, form)


@router.post("/ui/invoices/{invoice_id}/void")
def admin_void(request: Request, me: AdminUser, invoice_id: int, form: Form) -> Response:
    reason = form.get("reason", "")[:128]
    try:
        write(request, lambda s: invoices.void(s, me.actor, invoice_id, reason))
    except ProvisionerError as exc:
        return _invoice_page(
            request, me, invoice_id, form=form, errors=errors_of(exc, ("reason",)),
            status=status_for(exc),
        )  # fmt: skip
    flash(request, f"Invoice {invoice_id} is void.")
    return redirect(request, f"/ui/invoices/{invoice_id}")


# ---- the reseller ----------------------------------------------------------------------


@router.get("/ui/desk/invoices")
def desk_list(request: Request, me: ResellerUser) -> Response:
    return _list(request, me)


@router.get("/ui/desk/invoices/{invoice_id}")
def desk_invoice(request: Request, me: ResellerUser, invoice_id: int) -> Response:
    return _invoice_page(request, me, invoice_id)


@router.get("/ui/desk/invoices/{invoice_id}/print")
def desk_print(request: Request, me: ResellerUser, invoice_id: int) -> Response:
    return _print(request, me, invoice_id)


@router.post("/ui/desk/invoices/{invoice_id}/pay")
def desk_pay(request: Request, me: ResellerUser, invoice_id: int, form: Form) -> Response:
    return _pay(request, me, invoice_id, form)


# ---- the customer ----------------------------------------------------------------------


@router.get("/portal/invoices")
def portal_list(request: Request, me: CustomerUser) -> Response:
    return _list(request, me)


@router.get("/portal/invoices/{invoice_id}")
def portal_invoice(request: Request, me: CustomerUser, invoice_id: int) -> Response:
    return _invoice_page(request, me, invoice_id)


@router.get("/portal/invoices/{invoice_id}/print")
def portal_print(request: Request, me: CustomerUser, invoice_id: int) -> Response:
    return _print(request, me, invoice_id)


@router.post("/portal/invoices/{invoice_id}/pay")
def portal_pay(request: Request, me: CustomerUser, invoice_id: int, form: Form) -> Response:
    """Even while suspended as unpaid: paying is how it comes back (``invoices.pay``
    refuses an operator's suspension)."""
    return _pay(request, me, invoice_id, form)
