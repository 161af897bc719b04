"""What every registry write shares: refusing unknown fields, money history; looking rows
up (``refs``) and the audit log (``audit``) are re-exported from their own modules.

Helpers flush, never commit: the caller owns the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner import validation
from provisioner.audit import SECRET_FIELDS, audit, secrets_of, snapshot
from provisioner.errors import Conflict, ValidationError
from provisioner.models import LedgerEntry
from provisioner.refs import get_by_name
from provisioner.schemas import MAX_LENGTH


def reject_unknown(data: dict[str, Any], allowed: list[str], entity: str) -> None:
    """Refuse a field this entity does not have, and a string with NUL or longer than its
    field allows (``schemas.MAX_LENGTH``: the API's bounds, for the CLI and the web too)."""
    for key, value in data.items():
        if key in ("customer_type", "billing") and entity == "package":
            raise ValidationError(
                "is inherited from the master package and cannot be set on a package", field=key
            )
        if key not in allowed:
            raise ValidationError(f"unknown field for a {entity}", field=key)
        validation.text(key, value, MAX_LENGTH.get(key))


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


__all__ = [
    "SECRET_FIELDS", "audit", "count", "get_by_name", "money_history", "reject_unknown",
    "secrets_of", "snapshot",
]  # fmt: skip


def refuse_lookalike(session: Session, model: Any, obj: Any, noun: str) -> None:
    """409 when ``obj``'s name looks like (``validation.skeleton``) another ``model``'s:
    "Nоrth" (a Cyrillic о) beside "North" would be topped up, assigned and sold in its
    place by anyone reading the name."""
    mine = validation.skeleton(obj.name)
    for other_id, other in session.execute(select(model.id, model.name).where(model.id != obj.id)):
        if other != obj.name and validation.skeleton(other) == mine:
            raise Conflict(
                f"{obj.name!r} looks like the {noun} {other!r} (id:{other_id}): choose a "
                "name people can tell apart",
                field="name",
            )
