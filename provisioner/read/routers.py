"""Routers with their last sync, and each router's sync history: admins only."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner.auth import Principal
from provisioner.models import Router, SyncRun
from provisioner.read import paging
from provisioner.read.models import Page, RouterOut, RouterStatusOut, SyncRunOut
from provisioner.registry.common import get_by_name


def _iso(d: object) -> str | None:
    return d.isoformat(timespec="seconds") if d is not None else None  # type: ignore[attr-defined]


def view(r: Router) -> RouterOut:
    """A router without its credentials."""
    return RouterOut(
        id=r.id,
        name=r.name,
        host=r.host,
        api_port=r.api_port,
        api_tls=r.api_tls,
        username=r.username,
        customer_types=r.customer_types,
        mode=str(r.mode),
        coa_port=r.coa_port,
        enabled=r.enabled,
    )


def list_(session: Session, principal: Principal) -> list[RouterStatusOut]:
    """Routers with their last sync (time, status, changes applied, error)."""
    return page(session, principal, limit=None).items


def page(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> Page[RouterStatusOut]:
    """One page of the routers by name, each with its last sync; ``q``: the names that
    contain it."""
    principal.require("admin")
    latest = (
        select(SyncRun.router_id, func.max(SyncRun.id).label("run_id"))
        .group_by(SyncRun.router_id)
        .subquery()
    )
    stmt = (
        select(Router, SyncRun)
        .outerjoin(latest, latest.c.router_id == Router.id)
        .outerjoin(SyncRun, SyncRun.id == latest.c.run_id)
        .where(*paging.contains(Router.name, q))
        .order_by(Router.name)
    )

    def row(found: tuple[Router, SyncRun | None]) -> RouterStatusOut:
        r, run = found
        return RouterStatusOut(
            **view(r).model_dump(),
            last_sync=_iso(run.started_at) if run else None,
            last_status=run.status if run else "never synced",
            last_applied=run.changes_applied if run else None,
            last_error=run.error if run else None,
        )

    return paging.page(session, stmt, row, limit=limit, offset=offset, rows=True)


def get(session: Session, principal: Principal, ref: str) -> RouterOut:
    principal.require("admin")
    return view(get_by_name(session, Router, ref))


def runs(
    session: Session, principal: Principal, ref: str, limit: int = 20, offset: int = 0
) -> Page[SyncRunOut]:
    """A router's recorded syncs, newest first (dry runs are not recorded): when, why
    (``trigger``), the outcome, changes planned and applied, the error, and the applied
    changes themselves. Those are stored redacted by ``sync``, so no secret is in them."""
    principal.require("admin")
    router = get_by_name(session, Router, ref)
    q = select(SyncRun).where(SyncRun.router_id == router.id).order_by(SyncRun.id.desc())
    return paging.page(
        session,
        q,
        lambda run: SyncRunOut(
            id=run.id,
            started_at=_iso(run.started_at) or "",
            finished_at=_iso(run.finished_at),
            trigger=run.trigger,
            status=run.status,
            planned=run.changes_planned,
            applied=run.changes_applied,
            error=run.error,
            changes=list(run.applied or []),
        ),
        limit=limit,
        offset=offset,
    )


def names(session: Session, principal: Principal) -> list[str]:
    """The names of the routers a customer may be put on (the enabled ones), for the
    staff who place customers: admins and resellers. A name only: no address, port or
    credential."""
    principal.require("admin", "reseller")
    return list(
        session.scalars(select(Router.name).where(Router.enabled.is_(True)).order_by(Router.name))
    )
