"""Master packages (the technical spec): admin only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from provisioner import registry, views
from provisioner.api.deps import AdminDep, SessionDep, admin_only
from provisioner.api.schemas import MasterPackageCreate, MasterPackageUpdate
from provisioner.models import MasterPackage

router = APIRouter(
    prefix="/master-packages", tags=["master packages"], dependencies=[Depends(admin_only)]
)


@router.get("")
def list_masters(session: SessionDep, _admin: AdminDep) -> list[dict[str, Any]]:
    return [
        views.master(m) for m in session.scalars(select(MasterPackage).order_by(MasterPackage.name))
    ]


@router.post("", status_code=201)
def create_master(
    body: MasterPackageCreate, session: SessionDep, admin: AdminDep
) -> dict[str, Any]:
    return views.master(registry.create_master_package(session, admin.actor, body.given()))


@router.get("/{name}")
def get_master(name: str, session: SessionDep, _admin: AdminDep) -> dict[str, Any]:
    return views.master(registry.get_by_name(session, MasterPackage, name))


@router.patch("/{name}")
def update_master(
    name: str, body: MasterPackageUpdate, session: SessionDep, admin: AdminDep
) -> dict[str, Any]:
    """Change a master package; RADIUS follows in this transaction, routers soon after."""
    return views.master(registry.update_master_package(session, admin.actor, name, body.given()))


@router.delete("/{name}", status_code=204)
def delete_master(name: str, session: SessionDep, admin: AdminDep) -> None:
    """Remove a master package; 409 naming the packages and customers still using it."""
    registry.delete_master_package(session, admin.actor, name)
