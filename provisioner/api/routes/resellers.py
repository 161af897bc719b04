"""Resellers and their package assignments: admin only, except ``/resellers/me``."""

from __future__ import annotations

from fastapi import APIRouter

from provisioner import registry
from provisioner.api.deps import AdminDep, ResellerDep, SessionDep
from provisioner.read import resellers
from provisioner.read.models import AssignmentOut, ResellerOut
from provisioner.schemas import Assignment, Ref, ResellerCreate, ResellerUpdate

router = APIRouter(prefix="/resellers", tags=["resellers"])


@router.get("")
def list_resellers(session: SessionDep, admin: AdminDep) -> list[ResellerOut]:
    return resellers.list_(session, admin)


@router.post("", status_code=201)
def create_reseller(body: ResellerCreate, session: SessionDep, admin: AdminDep) -> ResellerOut:
    return resellers.view(registry.create_reseller(session, admin.actor, body.given()))


# Declared before "/{name}" so that "me" is not taken for a reseller's name.
@router.get("/me")
def get_me(session: SessionDep, reseller: ResellerDep) -> ResellerOut:
    """The calling reseller, with its packages and prices (reseller tokens only)."""
    return resellers.me(session, reseller)


@router.get("/{name}")
def get_reseller(name: Ref, session: SessionDep, admin: AdminDep) -> ResellerOut:
    return resellers.get(session, admin, name)


@router.patch("/{name}")
def update_reseller(
    name: Ref, body: ResellerUpdate, session: SessionDep, admin: AdminDep
) -> ResellerOut:
    return resellers.view(registry.update_reseller(session, admin.actor, name, body.given()))


@router.delete("/{name}", status_code=204)
def delete_reseller(name: Ref, session: SessionDep, admin: AdminDep) -> None:
    """Remove a reseller; 409 while it still has customers."""
    registry.delete_reseller(session, admin.actor, name)


@router.post("/{name}/packages")
def assign_package(
    name: Ref, body: Assignment, session: SessionDep, admin: AdminDep
) -> AssignmentOut:
    """Assign a package (or change the reseller's price for it); no price: the package's
    operator price applies."""
    a = registry.assign_package(session, admin.actor, name, body.package, body.price)
    return resellers.assignment_view(a)


@router.delete("/{name}/packages/{package:path}", status_code=204)
def unassign_package(name: Ref, package: Ref, session: SessionDep, admin: AdminDep) -> None:
    registry.unassign_package(session, admin.actor, name, package)
