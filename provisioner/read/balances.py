"""Balances and the ledger rows they sum: the caller's own, or (admins) any account's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access, ledger
from provisioner.auth import Principal
from provisioner.models import LedgerEntry
from provisioner.read import paging
from provisioner.read.models import BalanceOut, LedgerEntryOut


def _entry(e: LedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut(
        at=e.created_at.isoformat(), amount=str(e.amount), kind=e.kind, reference=e.reference
    )


def of_account(
    session: Session,
    principal: Principal,
    account: str,
    *,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> BalanceOut:
    """An account's balance and one page of its ledger, newest first: the caller's own;
    for a reseller, those of the operators and customers below it; for an admin, any
    (``ledger.resolve`` forms). The balance is of every row, whatever the page."""
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
        entries=paging.page(
            session,
            select(LedgerEntry)
            .where(LedgerEntry.account == account)
            .order_by(LedgerEntry.id.desc()),
            _entry,
            limit=limit,
            offset=offset,
        ),
    )


def mine(
    session: Session,
    principal: Principal,
    *,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> BalanceOut:
    """The caller's own balance (a reseller's or a customer's) and a page of its ledger."""
    return of_account(session, principal, access.own_account(principal), limit=limit, offset=offset)
