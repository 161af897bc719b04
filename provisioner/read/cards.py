"""Recharge card batches as an admin sees them: value, size, how many were redeemed.
Never a PIN (only their keyed hashes are stored; PINs are shown once, at generation)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner.auth import Principal
from provisioner.models import RechargeCard
from provisioner.read.models import CardBatchSummaryOut


def batches(session: Session, principal: Principal) -> list[CardBatchSummaryOut]:
    """Each batch (name and value) with its card count, cards redeemed and latest expiry,
    newest first."""
    principal.require("admin")
    rows = session.execute(
        select(
            RechargeCard.batch,
            RechargeCard.value,
            func.count(),
            func.count(RechargeCard.redeemed_at),
            func.max(RechargeCard.expires_at),
            func.max(RechargeCard.id),
        )
        .group_by(RechargeCard.batch, RechargeCard.value)
        .order_by(func.max(RechargeCard.id).desc())
    )
    return [
        CardBatchSummaryOut(
            batch=batch,
            value=str(value),
            cards=int(n),
            redeemed=int(used),
            expires_at=str(expires)[:10],
        )
        for batch, value, n, used, expires, _ in rows
    ]
