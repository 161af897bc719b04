"""What each role may see and touch, in one place; routes stay thin.

- admin: everything.
- reseller: the packages assigned to it (at its own price) and its own customers.
- customer: the public packages, its own record and its own activations.

Rows outside a caller's scope answer 404 with the same message as rows that do not exist,
so a reseller or customer cannot probe for other resellers' packages or customers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import registry, views, views_activations
from provisioner.auth import Principal
from provisioner.errors import Forbidden, NotFound
from provisioner.models import (
    Customer,
    Package,
    Reseller,
    ResellerPackage,
    Visibility,
    utcnow,
)


def _no_package(ref: str) -> NotFound:
    return NotFound(f"no package named {ref!r}")


def _no_customer(ref: str) -> NotFound:
    return NotFound(f"no customer named {ref!r}")


def _matches(ref: str, name: str, id_: int) -> bool:
    """``get_by_name``'s rule: a name, or the numeric id."""
    return ref == name or (ref.isdigit() and int(ref) == id_)


def own_reseller(session: Session, principal: Principal) -> Reseller:
    r = session.get(Reseller, principal.reseller_id) if principal.reseller_id else None
    if r is None:
        raise NotFound("this token's reseller no longer exists")
    return r


def own_customer(session: Session, principal: Principal) -> Customer:
    c = session.get(Customer, principal.customer_id) if principal.customer_id else None
    if c is None:
        raise NotFound("this token's customer no longer exists")
    return c


def _assignments(session: Session, reseller_id: int) -> list[ResellerPackage]:
    return list(
        session.scalars(
            select(ResellerPackage)
            .join(Package, ResellerPackage.package_id == Package.id)
            .where(ResellerPackage.reseller_id == reseller_id)
            .order_by(Package.name)
        )
    )


def packages(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The package listing as this caller may see it."""
    if principal.role == "admin":
        return [views.package(p) for p in session.scalars(select(Package).order_by(Package.name))]
    if principal.role == "reseller":
        return [
            views.package(a.package, price=registry.reseller_price(a))
            for a in _assignments(session, own_reseller(session, principal).id)
        ]
    public = select(Package).where(Package.visibility == Visibility.public).order_by(Package.name)
    return [views.public_package(p) for p in session.scalars(public)]


def package(session: Session, principal: Principal, ref: str) -> dict[str, Any]:
    """One package as this caller may see it; 404 when it is outside the caller's scope."""
    if principal.role == "admin":
        return views.package(registry.get_by_name(session, Package, ref))
    if principal.role == "reseller":
        for a in _assignments(session, own_reseller(session, principal).id):
            if _matches(ref, a.package.name, a.package.id):
                return views.package(a.package, price=registry.reseller_price(a))
        raise _no_package(ref)
    try:
        p = registry.get_by_name(session, Package, ref)
    except NotFound:
        raise _no_package(ref) from None
    if p.visibility != Visibility.public:
        raise _no_package(ref)
    return views.public_package(p)


def customers(session: Session, principal: Principal) -> list[Customer]:
    q = select(Customer).order_by(Customer.username)
    if principal.role != "admin":
        q = q.where(Customer.reseller_id == own_reseller(session, principal).id)
    return list(session.scalars(q))


def customer(session: Session, principal: Principal, ref: str) -> Customer:
    """A customer this caller may manage; a reseller's view of others' customers is 404."""
    try:
        c: Customer = registry.get_by_name(session, Customer, ref, "username")
    except NotFound:
        raise _no_customer(ref) from None
    if principal.role != "admin" and c.reseller_id != own_reseller(session, principal).id:
        raise _no_customer(ref)
    return c


def customer_body(
    session: Session,
    principal: Principal,
    data: dict[str, Any],
    *,
    create: bool,
    current: Customer | None = None,
) -> dict[str, Any]:
    """A reseller's customer write, held to its scope.

    A new customer belongs to the reseller itself; naming another reseller (or none) is
    refused. The customer may only get a package assigned to the reseller, and the refusal
    reads the same whether or not the package exists. Service is what a reseller pays for
    with an activation: it may not set an expiry, set a customer active outside a paid
    period, or change the package within a paid period. Admin bodies pass through
    unchanged. ``current`` is the customer an update changes.
    """
    if principal.role == "admin":
        return data
    me = own_reseller(session, principal)
    paid = current is not None and current.expires_at is not None and current.expires_at > utcnow()
    if "expires_at" in data:
        raise Forbidden("the paid period is set by an activation", field="expires_at")
    if data.get("status") == "active" and not paid:
        raise Forbidden(
            "a customer is set active by an activation (or within its paid period)",
            field="status",
        )
    ref = data.get("package")
    if (
        ref
        and paid
        and current is not None
        and not (current.package and _matches(str(ref), current.package.name, current.package.id))
    ):
        # Even while suspended: it would be set active again on the dearer package.
        raise Forbidden(
            "within a paid period the package changes by an activation", field="package"
        )
    if "reseller" in data and not (
        data["reseller"] is not None and _matches(str(data["reseller"]), me.name, me.id)
    ):
        raise Forbidden("a reseller's customers belong to the reseller itself", field="reseller")
    if create or "reseller" in data:
        data = {**data, "reseller": me.name}
    ref = data.get("package")
    if ref and not any(
        _matches(str(ref), a.package.name, a.package.id) for a in _assignments(session, me.id)
    ):
        raise Forbidden(f"package {ref!r} is not assigned to you", field="package")
    return data


def activation_view(principal: Principal, view: dict[str, Any]) -> dict[str, Any]:
    """An activation as this caller may see it: a customer sees what it paid itself, not
    the price its reseller paid for it (an operator price, hidden from customers)."""
    if principal.role == "customer" and view["payer"] != f"customer:{principal.customer_id}":
        return {**view, "payer": str(view["payer"]).split(":")[0], "price": None}
    return view


def activations(
    session: Session,
    principal: Principal,
    *,
    customer_ref: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Activations newest first, as this caller may see them: an admin all of them, a
    reseller its customers', a customer its own. Naming a customer outside that scope
    answers 404, as for one that does not exist."""
    customer_id = reseller_id = None
    if principal.role == "customer":
        me = own_customer(session, principal)
        if customer_ref is not None and not _matches(customer_ref, me.username, me.id):
            raise _no_customer(customer_ref)
        customer_id = me.id
    else:
        if principal.role != "admin":
            reseller_id = own_reseller(session, principal).id
        if customer_ref is not None:
            customer_id = customer(session, principal, customer_ref).id
    rows = views_activations.list_activations(
        session, customer_id=customer_id, reseller_id=reseller_id, status=status, limit=limit
    )
    return [activation_view(principal, row) for row in rows]
