"""Read models for operators: routers with their last sync, and each router's sync history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner import validation, views
from provisioner.models import Router, SyncRun


def router_rows(session: Session) -> list[dict[str, Any]]:
    latest = (
        select(SyncRun.router_id, func.max(SyncRun.id).label("run_id"))
        .group_by(SyncRun.router_id)
        .subquery()
    )
    runs = {
        r.router_id: r
        for r in session.scalars(select(SyncRun).join(latest, SyncRun.id == latest.c.run_id))
    }
    rows = []
    for r in session.scalars(select(Router).order_by(Router.name)):
        run = runs.get(r.id)
        rows.append(
            {
                **views.router(r),
                "last_sync": run.started_at.isoformat(timespec="seconds") if run else None,
                "last_status": run.status if run else "never synced",
                "last_applied": run.changes_applied if run else None,
                "last_error": run.error if run else None,
            }
        )
    return rows


def sync_runs(session: Session, router: Router, limit: int = 20) -> list[dict[str, Any]]:
    """A router's recorded syncs, newest first (dry runs are not recorded): when, why
    (``trigger``), the outcome, changes planned and applied, the error, and the applied
    changes themselves. Those are stored redacted by ``sync``, so no secret is in them."""
    limit = validation.positive_int("limit", limit)
    q = (
        select(SyncRun)
        .where(SyncRun.router_id == router.id)
        .order_by(SyncRun.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": run.id,
            "started_at": run.started_at.isoformat(timespec="seconds"),
            "finished_at": run.finished_at.isoformat(timespec="seconds")
            if run.finished_at
            else None,
            "trigger": run.trigger,
            "status": run.status,
            "planned": run.changes_planned,
            "applied": run.changes_applied,
            "error": run.error,
            "changes": list(run.applied or []),
        }
        for run in session.scalars(q)
    ]
