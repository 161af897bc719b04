"""Resellers and their package assignments: admin only, except ``/resellers/me``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from provisioner import registry, views
from provisioner.api import scope
from provisioner.api.deps import AdminDep, ResellerDep, SessionDep
from provisioner.api.schemas import Assignment, ResellerCreate, ResellerUpdate
from provisioner.models import Reseller

router = APIRouter(prefix="/resellers", tags=["resellers"])


@router.get("")
def list_resellers(session: SessionDep, _admin: AdminDep) -> list[dict[str, Any]]:
    return [views.reseller(r) for r in session.scalars(select(Reseller).order_by(Reseller.name))]


@router.post("", status_code=201)
def create_reseller(body: ResellerCreate, session: SessionDep, admin: AdminDep) -> dict[str, Any]:
    return views.reseller(registry.create_reseller(session, admin.actor, body.given()))


# Declared before "/{name}" so that "me" is not taken for a reseller's name.
@router.get("/me")
def get_me(session: SessionDep, reseller: ResellerDep) -> dict[str, Any]:
    """The calling reseller, with its packages and prices (reseller tokens only)."""
    return views.reseller(scope.own_reseller(session, reseller))


@router.get("/{name}")
def get_reseller(name: str, session: SessionDep, _admin: AdminDep) -> dict[str, Any]:
    return views.reseller(registry.get_by_name(session, Reseller, name))


@router.patch("/{name}")
def update_reseller(
    name: str, body: ResellerUpdate, session: SessionDep, admin: AdminDep
) -> dict[str, Any]:
    return views.reseller(registry.update_reseller(session, admin.actor, name, body.given()))


@router.delete("/{name}", status_code=204)
def delete_reseller(name: str, session: SessionDep, admin: AdminDep) -> None:
    """Remove a reseller; 409 while it still has customers."""
    registry.delete_reseller(session, admin.actor, name)


@router.post("/{name}/packages")
def assign_package(
    name: str, body: Assignment, session: SessionDep, admin: AdminDep
) -> dict[str, Any]:
    """Assign a package (or change the reseller's price for it); no price: the package's
    operator price applies."""
    a = registry.assign_package(session, admin.actor, name, body.package, body.price)
    return views.assignment(a)


@router.delete("/{name}/packages/{package:path}", status_code=204)
def unassign_package(name: str, package: str, session: SessionDep, admin: AdminDep) -> None:
    registry.unassign_package(session, admin.actor, name, package)
