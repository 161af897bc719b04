"""Customers. Admin: all of them. Reseller: its own (others' answer 404). Customer: only
``GET /customers/me``; everything else here is 403 for a customer token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from provisioner import registry, views
from provisioner.api import scope
from provisioner.api.deps import CustomerDep, SessionDep, StaffDep
from provisioner.api.schemas import CustomerCreate, CustomerUpdate

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("")
def list_customers(session: SessionDep, staff: StaffDep) -> list[dict[str, Any]]:
    return [views.customer(c) for c in scope.customers(session, staff)]


@router.post("", status_code=201)
def create_customer(body: CustomerCreate, session: SessionDep, staff: StaffDep) -> dict[str, Any]:
    """Add a customer. A reseller's customer is its own and may only get a package
    assigned to that reseller."""
    data = scope.customer_body(session, staff, body.given(), create=True)
    return views.customer(registry.create_customer(session, staff.actor, data))


# Declared before "/{username}" so that "me" is not taken for a username.
@router.get("/me")
def get_me(session: SessionDep, customer: CustomerDep) -> dict[str, Any]:
    """The calling customer's own record (customer tokens only)."""
    return views.customer(scope.own_customer(session, customer))


@router.get("/{username}")
def get_customer(username: str, session: SessionDep, staff: StaffDep) -> dict[str, Any]:
    return views.customer(scope.customer(session, staff, username))


@router.patch("/{username}")
def update_customer(
    username: str, body: CustomerUpdate, session: SessionDep, staff: StaffDep
) -> dict[str, Any]:
    c = scope.customer(session, staff, username)
    data = scope.customer_body(session, staff, body.given(), create=False, current=c)
    return views.customer(registry.update_customer(session, staff.actor, c.username, data))


@router.delete("/{username}", status_code=204)
def delete_customer(username: str, session: SessionDep, staff: StaffDep) -> None:
    c = scope.customer(session, staff, username)
    registry.delete_customer(session, staff.actor, c.username)
