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
from provisioner.refs import lookup
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


def resolve(session: Session, account: str) -> str:
    """The ledger key (``reseller:ID`` / ``customer:ID``) of an account someone owns.

    ``reseller:North Net`` and ``customer:rahim`` name the owner; an all-digit part is the
    id itself (the key ``balance`` shows). Money in a mistyped account would be stranded,
    so an account nobody owns is refused.
    """
    kind, _, ref = str(account).partition(":")
    model: Any = {"reseller": Reseller, "customer": Customer}.get(kind)
    if model is None or not ref:
        raise ValidationError(
            f"{account!r} is not an account: use reseller:NAME, customer:USERNAME, "
            "reseller:ID or customer:ID",
            field="account",
        )
    if ref.isdigit():
        owner = session.get(model, int(ref)) if int(ref) < 2**31 else None
    else:
        owner = lookup(session, model, ref, "username" if kind == "customer" else "name")
    if owner is None:
        raise NotFound(f"no {kind} {ref!r}", field="account")
    return account_of(kind, owner.id)


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
    account = resolve(session, account)
    lock(session, account)
    post(session, account, value, kind, reference=reference, actor=actor)
    return balance(session, account)


def entries(session: Session, account: str) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.account == account).order_by(LedgerEntry.id)
        )
    )
