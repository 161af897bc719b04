"""The audit log: every registry change, newest first. Admins only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.auth import Principal
from provisioner.models import AuditLog
from provisioner.read import paging
from provisioner.read.models import AuditOut, Page


def list_(
    session: Session, principal: Principal, *, entity: str | None = None, limit: int = 50
) -> list[AuditOut]:
    return page(session, principal, entity=entity, limit=limit).items


def page(
    session: Session,
    principal: Principal,
    *,
    entity: str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> Page[AuditOut]:
    """One page of the audit log, newest first; ``entity``: one table's rows only."""
    principal.require("admin")
    q = select(AuditLog).order_by(AuditLog.id.desc())
    if entity:
        q = q.where(AuditLog.entity == entity)
    return paging.page(
        session,
        q,
        lambda a: AuditOut(
            at=a.at.isoformat(timespec="seconds"),
            actor=a.actor,
            action=a.action,
            entity=a.entity,
            id=a.entity_id,
            before=a.before,
            after=a.after,
        ),
        limit=limit,
        offset=offset,
    )
