"""Packages as each caller may see them: admins all (at the operator price), resellers
their assigned ones (at their own price), customers the public ones (no operator price)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access
from provisioner.auth import Principal
from provisioner.errors import ValidationError
from provisioner.models import Billing, CustomerType, MasterPackage, Package, Visibility
from provisioner.rates import format_rate
from provisioner.read import paging
from provisioner.read.models import PackageOut, Page, PublicPackageOut
from provisioner.registry.resellers import reseller_price
from provisioner.state import master_spec


def view(p: Package, *, price: Decimal | None = None) -> PackageOut:
    """The seed's columns; ``price`` is a reseller's own operator price when it has one."""
    m = p.master_package
    return PackageOut(
        id=p.id,
        name=p.name,
        master_package=m.name,
        customer_price=str(p.customer_price),
        operator_price=str(price if price is not None else p.operator_price),
        type=str(m.customer_type),
        billing=str(m.billing),
        visibility=str(p.visibility),
        duration_days=m.duration_days if str(m.billing) == "daily" else None,
        rate_limit=master_spec(m).rate.render(),
    )


def public_view(p: Package) -> PublicPackageOut:
    m = p.master_package
    return PublicPackageOut(
        id=p.id,
        name=p.name,
        price=str(p.customer_price),
        type=str(m.customer_type),
        billing=str(m.billing),
        duration_days=m.duration_days if str(m.billing) == "daily" else None,
        download=format_rate(m.rate_down),
        upload=format_rate(m.rate_up),
    )


def list_(session: Session, principal: Principal) -> list[PackageOut] | list[PublicPackageOut]:
    """The package listing as this caller may see it."""
    return page(session, principal, limit=None).items  # type: ignore[return-value]


def page(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    customer_type: str | None = None,
    billing: str | None = None,
    visibility: str | None = None,
    master: str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> Page[PackageOut] | Page[PublicPackageOut]:
    """One page of the package listing as this caller may see it, by name; ``q``: the
    names that contain it (any case); ``customer_type``, ``billing`` (the master's),
    ``visibility`` and ``master`` (its name): those only."""
    if principal.role == "reseller":
        mine = access.assignments(session, access.own_reseller(session, principal).id)
        needle = (q or "").strip().lower()
        shown = [
            view(a.package, price=reseller_price(a))
            for a in mine
            if needle in a.package.name.lower()
            and (not customer_type or str(a.package.master_package.customer_type) == customer_type)
            and (not billing or str(a.package.master_package.billing) == billing)
            and (not visibility or str(a.package.visibility) == visibility)
            and (not master or a.package.master_package.name == master)
        ]
        return paging.of(shown, limit=limit, offset=offset)
    where = [*access.packages_filter(session, principal), *paging.contains(Package.name, q)]
    if customer_type or billing or master:
        spec = select(MasterPackage.id)
        if customer_type:
            spec = spec.where(
                MasterPackage.customer_type == _choice(CustomerType, customer_type, "customer_type")
            )
        if billing:
            spec = spec.where(MasterPackage.billing == _choice(Billing, billing, "billing"))
        if master:
            spec = spec.where(MasterPackage.name == master)
        where.append(Package.master_package_id.in_(spec))
    if visibility:
        where.append(Package.visibility == _choice(Visibility, visibility, "visibility"))
    stmt = select(Package).where(*where).order_by(Package.name)
    if principal.role == "admin":
        return paging.page(session, stmt, view, limit=limit, offset=offset)
    return paging.page(session, stmt, public_view, limit=limit, offset=offset)


def _choice(kind: Any, value: str, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(k) for k in kind)
        raise ValidationError(f"must be one of {choices}", field=field) from None


def get(session: Session, principal: Principal, ref: str) -> PackageOut | PublicPackageOut:
    """One package under the listing's rules; one outside the caller's view is 404."""
    if principal.role == "reseller":
        a = access.assignment(session, principal, ref)
        return view(a.package, price=reseller_price(a))
    p = access.package(session, principal, ref)
    return view(p) if principal.role == "admin" else public_view(p)


def public(
    session: Session, *, limit: int | None = None, offset: int = 0
) -> Page[PublicPackageOut]:
    """The self-service listing, for anyone (no caller)."""
    q = select(Package).where(Package.visibility == Visibility.public).order_by(Package.name)
    return paging.page(session, q, public_view, limit=limit, offset=offset)


def as_reseller(session: Session, principal: Principal, reseller_ref: str) -> list[PackageOut]:
    """An admin's look at one reseller's list, at its prices."""
    from provisioner.models import Reseller
    from provisioner.registry.common import get_by_name

    principal.require("admin")
    r = get_by_name(session, Reseller, reseller_ref)
    return [view(a.package, price=reseller_price(a)) for a in access.assignments(session, r.id)]
