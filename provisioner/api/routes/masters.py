"""Master packages (the technical spec): admin only."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from provisioner import registry
from provisioner.api.deps import AdminDep, PagingDep, Search, SessionDep, admin_only
from provisioner.http_threads import Route
from provisioner.read import masters
from provisioner.read.models import MasterOut, Page
from provisioner.schemas import MasterPackageCreate, MasterPackageUpdate, Ref

router = APIRouter(
    route_class=Route,
    prefix="/master-packages", tags=["master packages"], dependencies=[Depends(admin_only)]
)


@router.get("")
def list_masters(
    session: SessionDep, admin: AdminDep, paging: PagingDep, q: Search = None
) -> Page[MasterOut]:
    """Master packages by name, a page at a time; ``q``: names that contain it."""
    return masters.page(session, admin, q=q, limit=paging.limit, offset=paging.offset)


@router.post("", status_code=201)
def create_master(body: MasterPackageCreate, session: SessionDep, admin: AdminDep) -> MasterOut:
    return masters.view(registry.create_master_package(session, admin.actor, body.given()))


@router.get("/{name}")
def get_master(name: Ref, session: SessionDep, admin: AdminDep) -> MasterOut:
    return masters.get(session, admin, name)


@router.patch("/{name}")
def update_master(
    name: Ref, body: MasterPackageUpdate, session: SessionDep, admin: AdminDep
) -> MasterOut:
    """Change a master package; RADIUS follows in this transaction, routers soon after."""
    return masters.view(registry.update_master_package(session, admin.actor, name, body.given()))


@router.delete("/{name}", status_code=204)
def delete_master(name: Ref, session: SessionDep, admin: AdminDep) -> None:
    """Remove a master package; 409 naming the packages and customers still using it."""
    registry.delete_master_package(session, admin.actor, name)
