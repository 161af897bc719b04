"""The audit log: every registry change, newest first. Admins only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import validation
from provisioner.auth import Principal
from provisioner.models import AuditLog
from provisioner.read.models import AuditOut


def list_(
    session: Session, principal: Principal, *, entity: str | None = None, limit: int = 50
) -> list[AuditOut]:
    principal.require("admin")
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(validation.positive_int("limit", limit))
    if entity:
        q = q.where(AuditLog.entity == entity)
    return [
        AuditOut(
            at=a.at.isoformat(timespec="seconds"),
            actor=a.actor,
            action=a.action,
            entity=a.entity,
            id=a.entity_id,
            before=a.before,
            after=a.after,
        )
        for a in session.scalars(q)
    ]
