"""Customers: search by name, filter by status, reseller or package, page through them;
add, edit, suspend."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import registry
from provisioner.auth import Principal
from provisioner.errors import ProvisionerError
from provisioner.http_threads import Route
from provisioner.read import customers
from provisioner.schemas import CUSTOMER_FIELDS, CustomerCreate, CustomerUpdate
from provisioner.web import customers as shared
from provisioner.web import formats
from provisioner.web.common import (
    AdminUser,
    Form,
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
from provisioner.web.forms import body, text_of

router = APIRouter(route_class=Route, prefix="/ui/customers", dependencies=[Depends(check_csrf)])
FIELDS = tuple(CUSTOMER_FIELDS)


@router.get("")
def list_customers(request: Request, me: AdminUser) -> Response:
    found = shared.search_context(request, me, "/ui/customers")
    if request.headers.get("HX-Target") == "customer-rows":
        return page(request, "_customer_rows.html", me, **found, edit_base="/ui/customers")
    return page(request, "admin/customers.html", me, **found, edit_base="/ui/customers")


@router.get(".csv")
def customers_csv(request: Request, me: AdminUser) -> Response:
    return shared.search_csv(request, me, "customers.csv")


def _form_page(request: Request, me: Principal, form: dict[str, str], **kw: Any) -> Response:
    return shared.form_page(request, me, form, area="/ui/customers", fields=FIELDS, **kw)


@router.get("/new")
def new_customer(request: Request, me: AdminUser) -> Response:
    return _form_page(request, me, {"customer_type": "pppoe"})


@router.post("/new")
def create_customer(request: Request, me: AdminUser, form: Form) -> Response:
    try:
        data = body(CustomerCreate, form, FIELDS)
        c = write(request, lambda s: registry.create_customer(s, me.actor, data))
    except ProvisionerError as exc:
        return _form_page(request, me, form, errors=errors_of(exc, FIELDS), status=status_for(exc))
    flash(request, f"Customer {c.username!r} added.")
    return redirect(request, f"/ui/customers/{c.id}")


@router.get("/{customer_id}")
def edit_customer(request: Request, me: AdminUser, customer_id: int) -> Response:
    c = read(request, lambda s: customers.get(s, me, f"id:{customer_id}"))
    form = text_of(c, FIELDS)
    form["expires_at"] = formats.local_input(form["expires_at"], zone_of(request))
    return _form_page(request, me, form, customer_id=customer_id)


@router.post("/{customer_id}")
def update_customer(request: Request, me: AdminUser, customer_id: int, form: Form) -> Response:
    ref = f"id:{customer_id}"

    def action(s: Session) -> str:
        current = text_of(customers.get(s, me, ref), FIELDS)
        # The date input speaks the configured zone; the registry, UTC.
        given = {**form}
        if "expires_at" in form:
            given["expires_at"] = formats.utc_of_local(
                form["expires_at"], zone_of(request), "expires_at", current=current["expires_at"]
            )
        data = body(CustomerUpdate, given, FIELDS, current=current)
        c = registry.update_customer(s, me.actor, ref, data)
        return f"Customer {c.username!r} saved." if data else "Nothing was changed."

    try:
        message = write(request, action)
    except ProvisionerError as exc:
        return _form_page(
            request, me, form, customer_id=customer_id, errors=errors_of(exc, FIELDS),
            status=status_for(exc),
        )  # fmt: skip
    flash(request, message)
    return redirect(request, f"/ui/customers/{customer_id}")


@router.post("/{customer_id}/suspend")
def suspend_customer(request: Request, me: AdminUser, customer_id: int) -> Response:
    """Cut the customer off now (its live session is ended); edit it to restore it."""
    ref = f"id:{customer_id}"
    c = write(
        request, lambda s: registry.update_customer(s, me.actor, ref, {"status": "suspended"})
    )
    flash(request, f"Customer {c.username!r} suspended.")
    return redirect(request, f"/ui/customers/{customer_id}")


@router.post("/{customer_id}/portal-password")
def reset_portal_password(request: Request, me: AdminUser, customer_id: int) -> Response:
    return shared.reset_portal_password(request, me, customer_id, "/ui/customers")
