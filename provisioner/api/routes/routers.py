"""Routers (NAS): admin only. Credentials are write-only: no response carries them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from provisioner import registry, views
from provisioner.api.deps import AdminDep, SessionDep, admin_only
from provisioner.api.schemas import RouterCreate, RouterUpdate
from provisioner.models import Router
from provisioner.status import router_rows, sync_runs

router = APIRouter(prefix="/routers", tags=["routers"], dependencies=[Depends(admin_only)])


@router.get("")
def list_routers(session: SessionDep, _admin: AdminDep) -> list[dict[str, Any]]:
    """Routers with their last sync (time, status, changes applied, error)."""
    return router_rows(session)


@router.post("", status_code=201)
def create_router(body: RouterCreate, session: SessionDep, admin: AdminDep) -> dict[str, Any]:
    return views.router(registry.create_router(session, admin.actor, body.given()))


@router.get("/{name}")
def get_router(name: str, session: SessionDep, _admin: AdminDep) -> dict[str, Any]:
    return views.router(registry.get_by_name(session, Router, name))


@router.get("/{name}/runs")
def get_runs(
    name: str,
    session: SessionDep,
    _admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[dict[str, Any]]:
    """The router's sync history, newest first, with the changes each run applied
    (passwords and secrets masked)."""
    return sync_runs(session, registry.get_by_name(session, Router, name), limit)


@router.patch("/{name}")
def update_router(
    name: str, body: RouterUpdate, session: SessionDep, admin: AdminDep
) -> dict[str, Any]:
    return views.router(registry.update_router(session, admin.actor, name, body.given()))


@router.delete("/{name}", status_code=204)
def delete_router(name: str, session: SessionDep, admin: AdminDep) -> None:
    """Remove a router; 409 while it still serves customers."""
    registry.delete_router(session, admin.actor, name)
