"""Routers: last sync and status, the sync history, a dry run that shows the plan as the
CLI prints it (in colour), Sync, and the bootstrap plan (the router's RADIUS side).

Dry runs and syncs talk to routers for seconds: they run through ``sync`` in short
transactions of their own, as the API's do, never inside a request's transaction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from provisioner import sync
from provisioner.auth import Principal
from provisioner.http_threads import slow
from provisioner.read import plans, routers
from provisioner.web.common import (
    AdminUser,
    check_csrf,
    ctx_of,
    flash,
    is_htmx,
    page,
    read,
    redirect,
)
from provisioner.web.plans import shown

router = APIRouter(prefix="/ui/routers", dependencies=[Depends(check_csrf)])


@router.get("")
def list_routers(request: Request, me: AdminUser) -> Response:
    rows = read(request, lambda s: routers.list_(s, me))
    return page(request, "admin/routers.html", me, routers=rows)


def _detail(request: Request, me: Principal, router_id: int, **context: Any) -> Response:
    ref = f"id:{router_id}"

    def load(s: Session) -> dict[str, Any]:
        status = {r.id: r for r in routers.list_(s, me)}
        r = routers.get(s, me, ref)
        return {"router": status.get(r.id, r), "runs": routers.runs(s, me, ref, limit=10).items}

    return page(request, "admin/router.html", me, **read(request, load), **context)


@router.get("/{router_id}")
def show_router(request: Request, me: AdminUser, router_id: int) -> Response:
    return _detail(request, me, router_id)


def _plan(request: Request, me: Principal, router_id: int, *, bootstrap: bool) -> Response:
    ctx = ctx_of(request)
    ids = sync.router_ids(ctx.factory, [f"id:{router_id}"])
    if bootstrap:
        found = [sync.sync_router(ctx.factory, ctx.settings, ids[0], dry_run=True, bootstrap=True)]
    else:
        found = sync.sync_many(ctx.factory, ctx.settings, ids, dry_run=True)
    out, text = shown([r.plan for r in found])
    title = "Bootstrap plan (the router's RADIUS side)" if bootstrap else "Dry run"
    if is_htmx(request):
        return page(request, "admin/_plan.html", me, plan=out, plan_html=text, plan_title=title)
    return _detail(request, me, router_id, plan=out, plan_html=text, plan_title=title)


@router.get("/{router_id}/plan")
@slow
def dry_run(request: Request, me: AdminUser, router_id: int) -> Response:
    """What a sync would change on the router; nothing is written."""
    return _plan(request, me, router_id, bootstrap=False)


@router.get("/{router_id}/bootstrap")
@slow
def bootstrap_plan(request: Request, me: AdminUser, router_id: int) -> Response:
    """What ``provisioner bootstrap`` would configure (/radius, /radius/incoming,
    /ppp/aaa); applying it stays with the CLI."""
    return _plan(request, me, router_id, bootstrap=True)


@router.post("/{router_id}/sync")
@slow
def sync_router(request: Request, me: AdminUser, router_id: int) -> Response:
    """Apply the registry to the router now (the run is recorded)."""
    ctx = ctx_of(request)
    ids = sync.router_ids(ctx.factory, [f"id:{router_id}"])
    results = plans.sync_results(sync.sync_many(ctx.factory, ctx.settings, ids, trigger="web"))
    r = results.results[0]
    text = f"Sync of {r.router}: {r.status}, {r.applied} of {r.planned} changes applied"
    flash(request, text + (f" ({r.error})" if r.error else "."), ok=r.status == "ok")
    return redirect(request, f"/ui/routers/{router_id}")
