"""Resellers and the packages each may sell (at its own operator price, if set)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import validation
from provisioner.errors import Conflict, NotFound
from provisioner.models import Customer, Package, Reseller, ResellerPackage
from provisioner.registry.common import (
    audit,
    get_by_name,
    money_history,
    reject_unknown,
    snapshot,
)
from provisioner.schemas import RESELLER_FIELDS


def _check_name(session: Session, r: Reseller) -> None:
    if session.scalar(select(Reseller).where(Reseller.name == r.name, Reseller.id != r.id)):
        raise Conflict(f"a reseller named {r.name!r} exists", field="name")


def create_reseller(session: Session, actor: str, data: dict[str, Any]) -> Reseller:
    reject_unknown(data, RESELLER_FIELDS, "reseller")
    r = Reseller(
        name=validation.display_name("name", data.get("name")),
        contact=str(data.get("contact") or ""),
    )
    _check_name(session, r)
    session.add(r)
    session.flush()
    audit(session, actor, "create", r, None)
    return r


def update_reseller(session: Session, actor: str, ref: str, data: dict[str, Any]) -> Reseller:
    reject_unknown(data, RESELLER_FIELDS, "reseller")
    r = get_by_name(session, Reseller, ref)
    before = snapshot(r)
    with session.no_autoflush:  # the clash check must run before the UPDATE does
        if "name" in data:
            r.name = validation.display_name("name", data["name"])
            _check_name(session, r)
        if "contact" in data:
            r.contact = str(data["contact"] or "")
    session.flush()
    audit(session, actor, "update", r, before)
    return r


def delete_reseller(session: Session, actor: str, ref: str) -> None:
    r = get_by_name(session, Reseller, ref)
    users = list(session.scalars(select(Customer.username).where(Customer.reseller_id == r.id)))
    if users:
        raise Conflict(f"reseller {r.name!r} still has customers {', '.join(users[:20])}")
    history = money_history(session, "reseller", r.id)
    if history:
        raise Conflict(
            f"reseller {r.name!r} has {history} ledger entries, which are kept; unassign "
            "its packages instead"
        )
    audit(session, actor, "delete", r, snapshot(r))
    session.delete(r)
    session.flush()


def _assignment(session: Session, r: Reseller, p: Package) -> ResellerPackage | None:
    return session.scalar(
        select(ResellerPackage).where(
            ResellerPackage.reseller_id == r.id, ResellerPackage.package_id == p.id
        )
    )


def assign_package(
    session: Session, actor: str, reseller: str, package: str, price: Any = None
) -> ResellerPackage:
    """Let a reseller sell a package, at ``price`` or (None) the package's operator price."""
    r = get_by_name(session, Reseller, reseller)
    p = get_by_name(session, Package, package)
    a = _assignment(session, r, p)
    before = snapshot(a) if a else None
    if a is None:
        a = ResellerPackage(reseller=r, package=p)
        session.add(a)
    a.price = None if price in (None, "") else validation.price("price", price)
    session.flush()
    audit(session, actor, "update" if before else "create", a, before)
    return a


def unassign_package(session: Session, actor: str, reseller: str, package: str) -> None:
    r = get_by_name(session, Reseller, reseller)
    p = get_by_name(session, Package, package)
    a = _assignment(session, r, p)
    if a is None:
        raise NotFound(f"package {p.name!r} is not assigned to reseller {r.name!r}")
    audit(session, actor, "delete", a, snapshot(a))
    session.delete(a)
    session.flush()


def reseller_price(a: ResellerPackage) -> Decimal:
    """What the reseller pays for the package: its own price, else the operator price."""
    return a.price if a.price is not None else a.package.operator_price
