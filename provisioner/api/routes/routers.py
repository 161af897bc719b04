"""Routers (NAS): admin only. Credentials are write-only: no response carries them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from provisioner import registry
from provisioner.api.deps import AdminDep, SessionDep, admin_only
from provisioner.read import routers
from provisioner.read.models import RouterOut, RouterStatusOut, SyncRunOut
from provisioner.schemas import Ref, RouterCreate, RouterUpdate

router = APIRouter(prefix="/routers", tags=["routers"], dependencies=[Depends(admin_only)])


@router.get("")
def list_routers(session: SessionDep, admin: AdminDep) -> list[RouterStatusOut]:
    """Routers with their last sync (time, status, changes applied, error)."""
    return routers.list_(session, admin)


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
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[SyncRunOut]:
    """The router's sync history, newest first, with the changes each run applied
    (passwords and secrets masked)."""
    return routers.runs(session, admin, name, limit)


@router.patch("/{name}")
def update_router(name: Ref, body: RouterUpdate, session: SessionDep, admin: AdminDep) -> RouterOut:
    return routers.view(registry.update_router(session, admin.actor, name, body.given()))


@router.delete("/{name}", status_code=204)
def delete_router(name: Ref, session: SessionDep, admin: AdminDep) -> None:
    """Remove a router; 409 while it still serves customers."""
    registry.delete_router(session, admin.actor, name)
