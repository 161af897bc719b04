"""Customers. Admin: all of them. Reseller: its own (others' answer 404). Customer: only
``GET /customers/me``; everything else here is 403 for a customer token."""

from __future__ import annotations

from fastapi import APIRouter

from provisioner import access, registry
from provisioner.api.deps import CustomerDep, PrincipalDep, SessionDep, StaffDep
from provisioner.read import customers
from provisioner.read.models import CustomerOut, UsageOut
from provisioner.registry.customers import reseller_write
from provisioner.schemas import CustomerCreate, CustomerUpdate, Ref

router = APIRouter(prefix="/customers", tags=["customers"])


@router.get("")
def list_customers(session: SessionDep, staff: StaffDep) -> list[CustomerOut]:
    return customers.list_(session, staff)


@router.post("", status_code=201)
def create_customer(body: CustomerCreate, session: SessionDep, staff: StaffDep) -> CustomerOut:
    """Add a customer. A reseller's customer is its own and may only get a package
    assigned to that reseller."""
    data = reseller_write(session, staff, body.given())
    return customers.view(registry.create_customer(session, staff.actor, data))


# Declared before "/{username}" so that "me" is not taken for a username.
@router.get("/me")
def get_me(session: SessionDep, customer: CustomerDep) -> CustomerOut:
    """The calling customer's own record (customer tokens only)."""
    return customers.me(session, customer)


@router.get("/{username}")
def get_customer(username: Ref, session: SessionDep, staff: StaffDep) -> CustomerOut:
    return customers.get(session, staff, username)


@router.get("/{username}/usage")
def get_usage(username: Ref, session: SessionDep, principal: PrincipalDep) -> UsageOut:
    """Usage in the current billing cycle (fair usage): bytes, threshold, throttled."""
    return customers.usage(session, principal, username)


@router.patch("/{username}")
def update_customer(
    username: Ref, body: CustomerUpdate, session: SessionDep, staff: StaffDep
) -> CustomerOut:
    c = access.customer(session, staff, username)
    data = reseller_write(session, staff, body.given(), current=c)
    return customers.view(registry.update_customer(session, staff.actor, c.username, data))


@router.delete("/{username}", status_code=204)
def delete_customer(username: Ref, session: SessionDep, staff: StaffDep) -> None:
    c = access.customer(session, staff, username)
    registry.delete_customer(session, staff.actor, c.username)
