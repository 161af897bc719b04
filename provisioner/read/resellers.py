"""Resellers as each caller may see them: an admin all of them; a reseller itself and the
operators below it (``access.reseller_filter``), with balances and packages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access, ledger
from provisioner.auth import Principal
from provisioner.models import Reseller, ResellerPackage
from provisioner.read import paging
from provisioner.read.models import AssignmentOut, Page, ResellerOut


def assignment_view(a: ResellerPackage) -> AssignmentOut:
    return AssignmentOut(
        package=a.package.name,
        price=None if a.price is None else str(a.price),
        effective_price=str(a.price if a.price is not None else a.package.operator_price),
        customer_price=None if a.customer_price is None else str(a.customer_price),
    )


def view(session: Session, r: Reseller) -> ResellerOut:
    parent = session.get(Reseller, r.parent_id) if r.parent_id is not None else None
    return ResellerOut(
        id=r.id,
        name=r.name,
        contact=r.contact,
        packages=[assignment_view(a) for a in r.assignments],
        parent=parent.name if parent is not None else None,
        may_have_subresellers=r.may_have_subresellers,
        billing=str(r.billing),
        credit_limit=str(r.credit_limit),
        balance=str(ledger.balance(session, ledger.account_of("reseller", r.id))),
    )


def list_(session: Session, principal: Principal) -> list[ResellerOut]:
    return page(session, principal, limit=None).items


def page(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> Page[ResellerOut]:
    """One page of the operators this caller may see, by name (balances of that page
    only); ``q``: the names that contain it."""
    principal.require("admin", "reseller")
    stmt = (
        select(Reseller)
        .where(*access.reseller_filter(session, principal), *paging.contains(Reseller.name, q))
        .order_by(Reseller.name)
    )
    return paging.page(session, stmt, lambda r: view(session, r), limit=limit, offset=offset)


def get(session: Session, principal: Principal, ref: str) -> ResellerOut:
    principal.require("admin", "reseller")
    return view(session, access.reseller(session, principal, ref))


def me(session: Session, principal: Principal) -> ResellerOut:
    principal.require("reseller")
    return view(session, access.own_reseller(session, principal))
