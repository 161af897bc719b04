"""Activation listings, newest first, for the CLI and the API.

Each row is ``activation.activation_view`` plus ``at``, when it was made. Who may see
which rows is the caller's business (``api.scope`` for the API; the CLI acts as admin):
this module only filters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import validation
from provisioner.activation import activation_view
from provisioner.errors import ValidationError
from provisioner.models import Activation, Customer

STATUSES = ("pending", "applied", "failed")


def list_activations(
    session: Session,
    *,
    customer_id: int | None = None,
    reseller_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """At most ``limit`` activations, newest first: of one customer, of one reseller's
    customers, in one status (pending, applied, failed), or all of them."""
    limit = validation.positive_int("limit", limit)
    q = select(Activation.id, Activation.created_at).order_by(Activation.id.desc()).limit(limit)
    if customer_id is not None:
        q = q.where(Activation.customer_id == customer_id)
    if reseller_id is not None:
        q = q.join(Customer, Customer.id == Activation.customer_id).where(
            Customer.reseller_id == reseller_id
        )
    if status is not None:
        if status not in STATUSES:
            raise ValidationError(f"must be one of {', '.join(STATUSES)}", field="status")
        q = q.where(Activation.status == status)
    rows = []
    for act_id, at in session.execute(q).all():
        view = activation_view(session, act_id)
        rows.append({"id": view["id"], "at": at.isoformat(timespec="seconds"), **view})
    return rows


__all__ = ["STATUSES", "list_activations"]
