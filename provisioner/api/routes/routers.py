"""Routers (NAS): admin only. Credentials are write-only: no response carries them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from provisioner import registry
from provisioner.api.deps import AdminDep, PagingDep, Search, SessionDep, admin_only
from provisioner.http_threads import Route
from provisioner.read import routers
from provisioner.read.models import Page, RouterOut, RouterStatusOut, SyncRunOut
from provisioner.schemas import Ref, RouterCreate, RouterUpdate

router = APIRouter(
    route_class=Route, prefix="/routers", tags=["routers"], dependencies=[Depends(admin_only)]
)


@router.get("")
def list_routers(
    session: SessionDep, admin: AdminDep, paging: PagingDep, q: Search = None
) -> Page[RouterStatusOut]:
    """Routers with their last sync (time, status, changes applied, error), by name, a
    page at a time; ``q``: names that contain it."""
    return routers.page(session, admin, q=q, limit=paging.limit, offset=paging.offset)


@router.post("", status_code=201)
def create_router(body: RouterCreate, session: SessionDep, admin: AdminDep) -> RouterOut:
    return routers.view(registry.create_router(session, admin.actor, body.given()))


@router.get("/{name}")
def get_router(name: Ref, session: SessionDep, admin: AdminDep) -> RouterOut:
    return routers.get(session, admin, name)


@router.get("/{name}/runs")
def get_runs(
    name: Ref,
    session: SessionDep,
    admin: AdminDep,
    paging: PagingDep,
) -> Page[SyncRunOut]:
    """The router's sync history, newest first, a page at a time, with the changes each
    run applied (passwords and secrets masked)."""
    return routers.runs(session, admin, name, paging.limit, paging.offset)


@router.patch("/{name}")
def update_router(name: Ref, body: RouterUpdate, session: SessionDep, admin: AdminDep) -> RouterOut:
    return routers.view(registry.update_router(session, admin.actor, name, body.given()))


@router.delete("/{name}", status_code=204)
def delete_router(name: Ref, session: SessionDep, admin: AdminDep) -> None:
    """Remove a router; 409 while it still serves customers."""
    registry.delete_router(session, admin.actor, name)
