"""Balances and the ledger rows they sum: the caller's own, or (admins) any account's."""

from __future__ import annotations

from sqlalchemy.orm import Session

from provisioner import access, ledger
from provisioner.auth import Principal
from provisioner.read.models import BalanceOut, LedgerEntryOut


def of_account(session: Session, principal: Principal, account: str) -> BalanceOut:
    """An account's balance: the caller's own; for a reseller, those of the operators and
    customers below it; for an admin, any (``ledger.resolve`` forms)."""
    if principal.role == "admin":
        account = ledger.resolve(session, account)
    elif account != access.own_account(principal):
        principal.require("admin", "reseller")
        account = ledger.resolve(session, account)
        kind, _, id_ = account.partition(":")
        if kind == "reseller":
            access.reseller(session, principal, f"id:{id_}")
        else:
            access.customer(session, principal, f"id:{id_}")
    return BalanceOut(
        account=account,
        balance=str(ledger.balance(session, account)),
        entries=[
            LedgerEntryOut(
                at=e.created_at.isoformat(),
                amount=str(e.amount),
                kind=e.kind,
                reference=e.reference,
            )
            for e in ledger.entries(session, account)
        ],
    )


def mine(session: Session, principal: Principal) -> BalanceOut:
    """The caller's own balance (a reseller's or a customer's)."""
    return of_account(session, principal, access.own_account(principal))
