"""Resellers with the packages each may sell: admins see all, a reseller itself."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access
from provisioner.auth import Principal
from provisioner.models import Reseller, ResellerPackage
from provisioner.read.models import AssignmentOut, ResellerOut
from provisioner.registry.common import get_by_name


def assignment_view(a: ResellerPackage) -> AssignmentOut:
    return AssignmentOut(
        package=a.package.name,
        price=None if a.price is None else str(a.price),
        effective_price=str(a.price if a.price is not None else a.package.operator_price),
    )


def view(r: Reseller) -> ResellerOut:
    return ResellerOut(
        id=r.id,
        name=r.name,
        contact=r.contact,
        packages=[assignment_view(a) for a in r.assignments],
    )


def list_(session: Session, principal: Principal) -> list[ResellerOut]:
    principal.require("admin")
    return [view(r) for r in session.scalars(select(Reseller).order_by(Reseller.name))]


def get(session: Session, principal: Principal, ref: str) -> ResellerOut:
    principal.require("admin")
    return view(get_by_name(session, Reseller, ref))


def me(session: Session, principal: Principal) -> ResellerOut:
    principal.require("reseller")
    return view(access.own_reseller(session, principal))
