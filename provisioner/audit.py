"""The audit log: every registry change, who made it, before and after; credentials are
never written, only that they changed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from provisioner.models import AuditLog

SECRET_FIELDS = {"password", "radius_secret", "portal_password_hash"}


def snapshot(obj: Any) -> dict[str, Any]:
    """A row as JSON-able data for the audit log, credentials redacted."""
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        v = getattr(obj, col.key)
        if col.key in SECRET_FIELDS:
            v = "(redacted)"
        elif isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, Decimal):
            v = str(v)
        elif hasattr(v, "value"):
            v = v.value
        out[col.key] = v
    return out


def secrets_of(obj: Any) -> dict[str, Any]:
    """The credentials of a row as they are now, to tell after a write whether they
    changed (kept in memory only; the audit log never holds them)."""
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key in SECRET_FIELDS}


def audit(
    session: Session,
    actor: str,
    action: str,
    obj: Any,
    before: dict[str, Any] | None,
    old_secrets: dict[str, Any] | None = None,
    *,
    reason: str = "",
) -> None:
    """An audit row. With ``old_secrets`` (``secrets_of`` before the write) a credential
    that changed reads "(changed)" after, so the log says it changed, never to what. A
    removal keeps its ``reason`` (the only thing it has "after")."""
    after = None if action == "delete" else snapshot(obj)
    if reason:
        after = {**(after or {}), "reason": reason}
    if after is not None and old_secrets:
        for key, old in old_secrets.items():
            if getattr(obj, key) != old:
                after[key] = "(changed)"
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            entity=obj.__tablename__,
            entity_id=obj.id,
            before=before,
            after=after,
        )
    )
