"""Dry runs and syncs, for routers and the RADIUS tables: admin only.

Every plan is redacted before it leaves the process (``read.plans``). Router diff and
sync take no request session: they read and write through ``sync`` in short transactions
of their own and must not hold one open while they wait on routers. A dead router is a
plan with ``error`` set (and a result with status ``unreachable``), never a failed request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from provisioner import radius_store, sync
from provisioner.api.deps import AdminDep, CtxDep, SessionDep, admin_only
from provisioner.http_threads import Route, slow
from provisioner.read import plans
from provisioner.read.models import PlansOut, RadiusSyncOut, SyncOut
from provisioner.schemas import Ref, SyncRequest
from provisioner.state import options

router = APIRouter(route_class=Route, tags=["plans"], dependencies=[Depends(admin_only)])


@router.get("/diff")
@slow
def diff(
    ctx: CtxDep,
    _admin: AdminDep,
    routers: Annotated[
        list[Ref], Query(alias="router", max_length=1000, description="default: all")
    ] = [],  # noqa: B006
    adopt: Annotated[bool, Query(description="plan to take over unmarked objects")] = False,
) -> PlansOut:
    """Dry run: what a sync would change on each router (nothing is written)."""
    ids = sync.router_ids(ctx.factory, routers)
    results = sync.sync_many(ctx.factory, ctx.settings, ids, dry_run=True, adopt=adopt)
    return plans.plans([r.plan for r in results])


@router.post("/sync")
@slow
def sync_routers(body: SyncRequest, ctx: CtxDep, _admin: AdminDep) -> SyncOut:
    """Apply the registry to routers now; one result per router (each run is recorded)."""
    ids = sync.router_ids(ctx.factory, body.routers)
    results = sync.sync_many(ctx.factory, ctx.settings, ids, adopt=body.adopt, trigger="api")
    return plans.sync_results(results)


@router.get("/radius/diff")
@slow
def radius_diff(session: SessionDep, ctx: CtxDep, _admin: AdminDep) -> PlansOut:
    """What differs between the registry and the RADIUS tables."""
    return plans.plans([radius_store.plan(session, options(ctx.settings))])


@router.post("/radius/sync")
@slow
def radius_sync(session: SessionDep, ctx: CtxDep, _admin: AdminDep) -> RadiusSyncOut:
    """Repair the RADIUS tables (only rows this daemon owns), in this request's transaction."""
    plan = radius_store.plan(session, options(ctx.settings))
    written = radius_store.apply(session, plan)
    return RadiusSyncOut(written=written, **plans.plans([plan]).model_dump())
