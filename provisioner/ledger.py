"""Money: every balance change is a ledger row; a balance is the sum of its rows.

``lock`` serialises debits of one account: a row lock on PostgreSQL; on SQLite every
write transaction already holds the database's single write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.orm import Session

from provisioner import validation
from provisioner.errors import NotFound, ValidationError
from provisioner.models import Account, Customer, LedgerEntry, Reseller
from provisioner.types import CENT


def account_of(kind: str, id_: int) -> str:
    return f"{kind}:{id_}"


def lock(session: Session, account: str) -> None:
    if session.get(Account, account) is None:
        session.add(Account(account=account))
        session.flush()
    session.execute(select(Account).where(Account.account == account).with_for_update())


def balance(session: Session, account: str) -> Decimal:
    # The database adds integer minor units (CAST keeps the Money type's converter off the
    # sum); convert once, here.
    minor = cast(LedgerEntry.amount, BigInteger)
    total = session.scalar(
        select(func.coalesce(func.sum(minor), 0)).where(LedgerEntry.account == account)
    )
    return (Decimal(int(total or 0)) / 100).quantize(CENT)


def post(
    session: Session,
    account: str,
    amount: Decimal,
    kind: str,
    *,
    reference: str = "",
    activation_id: int | None = None,
    actor: str = "",
) -> LedgerEntry:
    row = LedgerEntry(
        account=account,
        amount=amount,
        kind=kind,
        reference=reference,
        activation_id=activation_id,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def _check_owner(session: Session, account: str) -> None:
    """Credit only an account someone owns: money in a mistyped one would be stranded."""
    kind, _, id_ = account.partition(":")
    model = {"reseller": Reseller, "customer": Customer}.get(kind)
    if model is None or not id_.isdigit():
        raise ValidationError(
            f"{account!r} is not an account: use reseller:ID or customer:ID", field="account"
        )
    if session.get(model, int(id_)) is None:
        raise NotFound(f"no {kind} with id {id_}", field="account")


def topup(
    session: Session,
    actor: str,
    account: str,
    amount: Any,
    kind: str = "topup",
    reference: str = "",
) -> Decimal:
    """Credit an account (admin top-up or refund); returns the new balance."""
    value = validation.price("amount", amount)
    if value == 0:
        raise ValidationError("must be greater than 0", field="amount")
    _check_owner(session, account)
    lock(session, account)
    post(session, account, value, kind, reference=reference, actor=actor)
    return balance(session, account)


def entries(session: Session, account: str) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.account == account).order_by(LedgerEntry.id)
        )
    )
