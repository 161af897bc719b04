"""Customers as each caller may see them (``access.customer_filter``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access
from provisioner.auth import Principal
from provisioner.models import Customer, Reseller
from provisioner.read.models import CustomerOut
from provisioner.registry.common import get_by_name


def view(c: Customer) -> CustomerOut:
    """A customer without its password."""
    return CustomerOut(
        id=c.id,
        username=c.username,
        customer_type=str(c.customer_type),
        router=c.router.name if c.router else None,
        package=c.package.name if c.package else None,
        reseller=c.reseller.name if c.reseller else None,
        static_ip=c.static_ip,
        mac_address=c.mac_address,
        status=str(c.status),
        expires_at=c.expires_at.isoformat() if c.expires_at else None,
        billing_day=c.billing_day,
    )


def list_(
    session: Session, principal: Principal, *, reseller: str | None = None
) -> list[CustomerOut]:
    """Customers by username; ``reseller`` narrows an admin's list to one reseller's."""
    q = select(Customer).where(*access.customer_filter(session, principal))
    if reseller is not None:
        principal.require("admin")
        q = q.where(Customer.reseller_id == get_by_name(session, Reseller, reseller).id)
    return [view(c) for c in session.scalars(q.order_by(Customer.username))]


def get(session: Session, principal: Principal, ref: str) -> CustomerOut:
    return view(access.customer(session, principal, ref))


def me(session: Session, principal: Principal) -> CustomerOut:
    principal.require("customer")
    return view(access.own_customer(session, principal))
