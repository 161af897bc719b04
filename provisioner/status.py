"""Read models for operators: routers with their last sync."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner import views
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
