"""Who may see what: one rule per entity, for every face (API, CLI, web) and for activation.

- admin: everything.
- reseller: the packages assigned to it (at its own price), its own customers, their
  activations, its own balance.
- customer: the public packages, itself, its own activations and balance.

A row outside a caller's scope answers 404 with the same message as a row that does not
exist, so nobody can probe for other resellers' packages or customers. Each function here
resolves a reference and checks scope in one step, so what is checked is what is used. A
reference is a name, or explicitly ``id:N`` (``registry.common.refers_to``): never a guess.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CTE, ColumnElement, Select, bindparam, literal_column, select
from sqlalchemy.orm import Session, joinedload

from provisioner.auth import Principal
from provisioner.errors import Forbidden, NotFound
from provisioner.models import (
    Activation,
    Customer,
    MasterPackage,
    Package,
    Reseller,
    ResellerPackage,
    Visibility,
)
from provisioner.refs import as_param, lookup

# ---- the caller itself -----------------------------------------------------------------


def own_reseller(session: Session, principal: Principal) -> Reseller:
    r = session.get(Reseller, principal.reseller_id) if principal.reseller_id else None
    if r is None or principal.role != "reseller":
        raise NotFound("this token's reseller no longer exists")
    return r


def own_customer(session: Session, principal: Principal) -> Customer:
    c = session.get(Customer, principal.customer_id) if principal.customer_id else None
    if c is None or principal.role != "customer":
        raise NotFound("this token's customer no longer exists")
    return c


def own_account(principal: Principal) -> str:
    """The caller's own ledger account (resellers and customers have one; admins do not)."""
    if principal.role == "reseller":
        return f"reseller:{principal.reseller_id or 0}"
    if principal.role == "customer":
        return f"customer:{principal.customer_id or 0}"
    raise Forbidden("an admin has no balance; use GET /balances/{account}")


# ---- customers -------------------------------------------------------------------------


def subtree(reseller_id: int) -> Select[tuple[int]]:
    """The ids of a reseller and every operator below it, to any depth (one recursive
    query, usable as a subquery: ``Customer.reseller_id.in_(subtree(me))``)."""
    tree = _tree(reseller_id)
    return select(tree.c.id)


def _tree(reseller_id: int) -> CTE:
    tree = select(Reseller.id).where(Reseller.id == reseller_id).cte("tree", recursive=True)
    return tree.union_all(select(Reseller.id).where(Reseller.parent_id == tree.c.id))


def customer_filter(session: Session, principal: Principal) -> list[ColumnElement[bool]]:
    """The customers this caller may see, as WHERE clauses on ``Customer``: a reseller's
    own and those of every sub-reseller below it."""
    if principal.role == "admin":
        return []
    if principal.role == "reseller":
        return [Customer.reseller_id.in_(subtree(own_reseller(session, principal).id))]
    return [Customer.id == own_customer(session, principal).id]


def may_see(session: Session, principal: Principal, c: Customer) -> bool:
    """The rule itself: may this caller see (and act for) this customer?"""
    if principal.role == "admin":
        return True
    if principal.role == "reseller":
        if c.reseller_id is not None and c.reseller_id == principal.reseller_id:
            return True  # its own customer: no lookup (its token was checked just now)
        me = own_reseller(session, principal).id
        return c.reseller_id == me or (
            c.reseller_id is not None and in_subtree(session, me, c.reseller_id)
        )
    return principal.role == "customer" and c.id == own_customer(session, principal).id


def in_subtree(session: Session, root: int, reseller_id: int) -> bool:
    tree = _tree(root)
    return session.scalar(select(tree.c.id).where(tree.c.id == reseller_id)) is not None


# ---- resellers -------------------------------------------------------------------------


def reseller(session: Session, principal: Principal, ref: str, *, manage: bool = False) -> Reseller:
    """The reseller ``ref`` as this caller may see it: an admin any; a reseller the
    operators below it (with ``manage``: only its direct sub-resellers, whose packages,
    prices and settlements it sets). 404 otherwise, as for one that does not exist."""
    r = lookup(session, Reseller, ref)
    if isinstance(r, Reseller):
        if principal.role == "admin":
            return r
        if principal.role == "reseller":
            me = own_reseller(session, principal).id
            if r.parent_id == me or (
                not manage and r.id != me and in_subtree(session, me, r.id)
            ):
                return r
    raise NotFound(f"no reseller named {ref!r}")


def reseller_filter(session: Session, principal: Principal) -> list[ColumnElement[bool]]:
    """The resellers this caller may see: all (admin), or those below it (reseller)."""
    if principal.role == "admin":
        return []
    me = own_reseller(session, principal).id
    return [Reseller.id.in_(subtree(me)), Reseller.id != me]


def chain(session: Session, reseller_id: int) -> list[Reseller]:
    """The operator and every parent above it, up to the one under the admin."""
    out: list[Reseller] = []
    r = session.get(Reseller, reseller_id)
    while r is not None and len(out) < 64:  # a cycle is refused when parents are set
        out.append(r)
        r = session.get(Reseller, r.parent_id) if r.parent_id is not None else None
    return out


def customer(session: Session, principal: Principal, ref: str) -> Customer:
    """The customer ``ref`` (username, or id:N) if this caller may see it; 404 otherwise."""
    c = lookup(session, Customer, ref, "username")
    if not isinstance(c, Customer) or not may_see(session, principal, c):
        raise NotFound(f"no customer named {ref!r}")
    return c


# ---- packages --------------------------------------------------------------------------


def assignments(session: Session, reseller_id: int) -> list[ResellerPackage]:
    """A reseller's packages, by package name."""
    return list(
        session.scalars(
            select(ResellerPackage)
            .join(Package, ResellerPackage.package_id == Package.id)
            .where(ResellerPackage.reseller_id == reseller_id)
            .order_by(Package.name)
        )
    )


def assignment(session: Session, principal: Principal, ref: str) -> ResellerPackage:
    """The calling reseller's package ``ref`` (a name, or ``id:N``, among its own), with
    its package and master loaded in the same query; 404 otherwise."""
    if principal.role != "reseller" or not principal.reseller_id:
        own_reseller(session, principal)  # refuses
    by_id, value = as_param(ref)
    a = None
    if value is not None:
        a = session.scalar(_ASSIGNMENT[by_id], {"reseller": principal.reseller_id, "ref": value})
    if a is None:
        raise NotFound(f"no package named {ref!r}")
    return a


def _assignment_statement(by_id: bool) -> Any:
    """``assignment``'s query, built once per form of reference (an activation's path)."""
    return (
        select(ResellerPackage)
        .join(Package, ResellerPackage.package_id == Package.id)
        .where(
            ResellerPackage.reseller_id == bindparam("reseller"),
            (Package.id if by_id else Package.name) == bindparam("ref"),
        )
        .options(joinedload(ResellerPackage.package).joinedload(Package.master_package))
    )


_ASSIGNMENT = {by_id: _assignment_statement(by_id) for by_id in (True, False)}


def package_statement(role: str, by_id: bool, ref: str = "ref") -> Any:
    """``package`` as one Core statement (an activation reads it with the rest at once):
    the package ``ref`` (bound ``ref`` unless named otherwise: a name, or an id) with its
    master's columns (``p_*``, ``m_*``), if a caller of ``role`` may buy it: a reseller
    (bound ``me``) among its assignments, a customer a public one, an admin any."""
    p, m, rp = Package.__table__, MasterPackage.__table__, ResellerPackage.__table__
    q = (
        select(*[c.label(f"p_{c.key}") for c in p.c], *[c.label(f"m_{c.key}") for c in m.c])
        .select_from(p)
        .join(m, m.c.id == p.c.master_package_id)
        .where((p.c.id if by_id else p.c.name) == bindparam(ref))
    )
    if role == "reseller":
        q = q.join(rp, (rp.c.package_id == p.c.id) & (rp.c.reseller_id == bindparam("me")))
    elif role != "admin":
        # Written, not bound: PostgreSQL plans the statement once for every package.
        q = q.where(p.c.visibility == literal_column(f"'{Visibility.public.value}'"))
    return q


def packages_filter(session: Session, principal: Principal) -> list[ColumnElement[bool]]:
    """Packages this caller may see (resellers: see ``assignments`` for their prices)."""
    if principal.role == "admin":
        return []
    if principal.role == "reseller":
        mine = select(ResellerPackage.package_id).where(
            ResellerPackage.reseller_id == own_reseller(session, principal).id
        )
        return [Package.id.in_(mine)]
    return [Package.visibility == Visibility.public]


def package(session: Session, principal: Principal, ref: str) -> Package:
    """The package ``ref`` if this caller may see (and so buy) it; 404 otherwise."""
    if principal.role == "reseller":
        return assignment(session, principal, ref).package
    p = lookup(session, Package, ref)
    if not isinstance(p, Package) or (
        principal.role != "admin" and p.visibility != Visibility.public
    ):
        raise NotFound(f"no package named {ref!r}")
    return p


# ---- activations -----------------------------------------------------------------------


def activation(session: Session, principal: Principal, act_id: int) -> Activation:
    """An activation of a customer this caller may see; 404 otherwise."""
    a = session.get(Activation, act_id)
    c = session.get(Customer, a.customer_id) if a else None
    if a is None or c is None or not may_see(session, principal, c):
        raise NotFound(f"no activation {act_id}")
    return a
