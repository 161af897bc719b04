"""Resellers: the operator tree. The admin manages every reseller; a reseller allowed to
have sub-resellers creates them under itself, gives them packages from its own list at
its prices and records their settlements; it sees the operators below it, never a
sibling's or its parent's (404, as for one that does not exist)."""

from __future__ import annotations

from fastapi import APIRouter

from provisioner import access, registry
from provisioner.api.deps import PagingDep, ResellerDep, Search, SessionDep, StaffDep
from provisioner.http_threads import Route
from provisioner.read import balances, resellers
from provisioner.read.models import AssignmentOut, BalanceOut, Page, ResellerOut, TopUpOut
from provisioner.registry.resellers import operator_write, settle
from provisioner.schemas import Assignment, Ref, ResellerCreate, ResellerUpdate, Settlement

router = APIRouter(route_class=Route, prefix="/resellers", tags=["resellers"])


@router.get("")
def list_resellers(
    session: SessionDep, staff: StaffDep, paging: PagingDep, q: Search = None
) -> Page[ResellerOut]:
    """Admin: every reseller. Reseller: the operators below it. By name, a page at a
    time; ``q``: names that contain it."""
    return resellers.page(session, staff, q=q, limit=paging.limit, offset=paging.offset)


@router.post("", status_code=201)
def create_reseller(body: ResellerCreate, session: SessionDep, staff: StaffDep) -> ResellerOut:
    """Admin: a reseller anywhere in the tree. Reseller (if allowed): a sub-reseller."""
    data = operator_write(session, staff, body.given(), current=None)
    return resellers.view(session, registry.create_reseller(session, staff.actor, data))


# Declared before "/{name}" so that "me" is not taken for a reseller's name.
@router.get("/me")
def get_me(session: SessionDep, reseller: ResellerDep) -> ResellerOut:
    """The calling reseller, with its packages and prices (reseller tokens only)."""
    return resellers.me(session, reseller)


@router.get("/{name}")
def get_reseller(name: Ref, session: SessionDep, staff: StaffDep) -> ResellerOut:
    return resellers.get(session, staff, name)


@router.patch("/{name}")
def update_reseller(
    name: Ref, body: ResellerUpdate, session: SessionDep, staff: StaffDep
) -> ResellerOut:
    r = access.reseller(session, staff, name, manage=True)
    data = operator_write(session, staff, body.given(), current=r)
    return resellers.view(
        session, registry.update_reseller(session, staff.actor, f"id:{r.id}", data)
    )


@router.delete("/{name}", status_code=204)
def delete_reseller(name: Ref, session: SessionDep, staff: StaffDep) -> None:
    """Remove a reseller; 409 while it still has customers or money history."""
    r = access.reseller(session, staff, name, manage=True)
    registry.delete_reseller(session, staff.actor, f"id:{r.id}")


@router.post("/{name}/packages")
def assign_package(
    name: Ref, body: Assignment, session: SessionDep, staff: StaffDep
) -> AssignmentOut:
    """Give a package (or change its price): what the reseller pays its parent, and the
    customer's price recommended. A sub-reseller gets only its parent's packages."""
    r = access.reseller(session, staff, name, manage=True)
    a = registry.assign_package(
        session, staff.actor, f"id:{r.id}", body.package, body.price, body.customer_price
    )
    return resellers.assignment_view(a)


@router.delete("/{name}/packages/{package:path}", status_code=204)
def unassign_package(name: Ref, package: Ref, session: SessionDep, staff: StaffDep) -> None:
    r = access.reseller(session, staff, name, manage=True)
    registry.unassign_package(session, staff.actor, f"id:{r.id}", package)


@router.post("/{name}/settlements", status_code=201)
def record_settlement(
    name: Ref, body: Settlement, session: SessionDep, staff: StaffDep
) -> TopUpOut:
    """A payment from this operator to its parent (the caller): it reduces what a
    postpaid operator owes, or tops up a prepaid one. Audited."""
    r = access.reseller(session, staff, name, manage=True)
    new = settle(session, staff.actor, r, body.amount, body.reference)
    return TopUpOut(account=f"reseller:{r.id}", balance=str(new))


@router.get("/{name}/ledger")
def reseller_ledger(
    name: Ref, session: SessionDep, staff: StaffDep, paging: PagingDep
) -> BalanceOut:
    """The operator's balance and a page of its ledger, newest first (its settlements
    among them)."""
    r = access.reseller(session, staff, name)
    return balances.of_account(
        session, staff, f"reseller:{r.id}", limit=paging.limit, offset=paging.offset
    )
