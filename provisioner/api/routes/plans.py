"""Dry runs and syncs, for routers and the RADIUS tables: admin only.

Every plan is redacted before it leaves the process. Router diff and sync take no request
session: they read and write through ``sync`` in short transactions of their own and must
not hold one open while they wait on routers. A dead router is a plan with ``error`` set
(and a result with status ``unreachable``), never a failed request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from provisioner import radius_store, sync
from provisioner.api.deps import AdminDep, CtxDep, SessionDep, admin_only
from provisioner.api.schemas import SyncRequest
from provisioner.planning.diff import redact
from provisioner.planning.plan import Plan
from provisioner.planning.render import render, summary_line
from provisioner.state import options

router = APIRouter(tags=["plans"], dependencies=[Depends(admin_only)])


def plans_body(plans: list[Plan]) -> dict[str, Any]:
    """The CLI's ``--json`` shape plus the CLI's text: plans, summary line, rendering."""
    safe = [redact(p) for p in plans]
    return {
        "plans": [p.to_dict() for p in safe],
        "summary": summary_line(safe),
        "text": render(safe),
    }


@router.get("/diff")
def diff(
    ctx: CtxDep,
    _admin: AdminDep,
    routers: Annotated[list[str], Query(alias="router", description="default: all")] = [],  # noqa: B006
    adopt: Annotated[bool, Query(description="plan to take over unmarked objects")] = False,
) -> dict[str, Any]:
    """Dry run: what a sync would change on each router (nothing is written)."""
    ids = sync.router_ids(ctx.factory, routers)
    results = sync.sync_many(ctx.factory, ctx.settings, ids, dry_run=True, adopt=adopt)
    return plans_body([r.plan for r in results])


@router.post("/sync")
def sync_routers(body: SyncRequest, ctx: CtxDep, admin: AdminDep) -> dict[str, Any]:
    """Apply the registry to routers now; one result per router (each run is recorded)."""
    ids = sync.router_ids(ctx.factory, body.routers)
    results = sync.sync_many(ctx.factory, ctx.settings, ids, adopt=body.adopt, trigger="api")
    return {
        "results": [
            {
                "router": r.router,
                "status": r.status,
                "planned": len(r.plan.writes),
                "applied": r.applied,
                "conflicts": len(r.plan.conflicts),
                "error": r.error,
                "changes": r.applied_changes,
            }
            for r in results
        ],
        "summary": summary_line([r.plan for r in results]),
    }


@router.get("/radius/diff")
def radius_diff(session: SessionDep, ctx: CtxDep, _admin: AdminDep) -> dict[str, Any]:
    """What differs between the registry and the RADIUS tables."""
    return plans_body([radius_store.plan(session, options(ctx.settings))])


@router.post("/radius/sync")
def radius_sync(session: SessionDep, ctx: CtxDep, _admin: AdminDep) -> dict[str, Any]:
    """Repair the RADIUS tables (only rows this daemon owns), in this request's transaction."""
    plan = radius_store.plan(session, options(ctx.settings))
    written = radius_store.apply(session, plan)
    return {"written": written, **plans_body([plan])}
