"""Plans (dry runs) and sync results as every face shows them: redacted first, always."""

from __future__ import annotations

from provisioner.planning.diff import redact
from provisioner.planning.plan import Plan
from provisioner.planning.render import render, summary_line
from provisioner.read.models import PlanOut, PlansOut, SyncOut, SyncResultOut
from provisioner.sync import RouterResult


def plans(plans: list[Plan], *, markup: bool = False) -> PlansOut:
    """Plans with the summary line and the text the CLI prints."""
    safe = [redact(p) for p in plans]
    return PlansOut(
        plans=[PlanOut.model_validate(p.to_dict()) for p in safe],
        summary=summary_line(safe),
        text=render(safe, markup=markup),
    )


def sync_results(results: list[RouterResult]) -> SyncOut:
    return SyncOut(
        results=[
            SyncResultOut(
                router=r.router,
                status=r.status,
                planned=len(r.plan.writes),
                applied=r.applied,
                conflicts=len(r.plan.conflicts),
                error=r.error,
                changes=list(r.applied_changes),
            )
            for r in results
        ],
        summary=summary_line([r.plan for r in results]),
    )
