"""What every registry write shares: looking rows up, refusing unknown fields, the audit log.

Helpers flush, never commit: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner.errors import NotFound, ValidationError
from provisioner.models import AuditLog, LedgerEntry
from provisioner.refs import lookup

SECRET_FIELDS = {"password", "radius_secret"}


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
) -> None:
    """An audit row. With ``old_secrets`` (``secrets_of`` before the write) a credential
    that changed reads "(changed)" after, so the log says it changed, never to what."""
    after = None if action == "delete" else snapshot(obj)
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


def reject_unknown(data: dict[str, Any], allowed: list[str], entity: str) -> None:
    for key in data:
        if key in ("customer_type", "billing") and entity == "package":
            raise ValidationError(
                "is inherited from the master package and cannot be set on a package", field=key
            )
        if key not in allowed:
            raise ValidationError(f"unknown field for a {entity}", field=key)


def get_by_name(session: Session, model: Any, name: str, field: str = "name") -> Any:
    """The row ``name`` refers to (its name, or ``id:N``); 404 otherwise."""
    obj = lookup(session, model, name, field)
    if obj is None:
        raise NotFound(f"no {model.__tablename__.rstrip('s').replace('_', ' ')} named {name!r}")
    return obj


def money_history(session: Session, kind: str, id_: int) -> int:
    """Ledger entries of an account. An account with any is never deleted: a new row
    reusing the id (SQLite reuses the highest) would inherit its balance."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.account == f"{kind}:{id_}")
        )
        or 0
    )


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)
