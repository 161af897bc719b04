"""Money: every balance change is a ledger row (append-only, the record), and the
account's current balance moves with it in the same statement pair.

A debit is one guarded ``UPDATE … SET balance = balance - :price WHERE balance - :price
>= floor RETURNING balance``: it cannot take an account below its floor however many run
at once (each waits for the row, then re-checks), and it costs the same with a year of
history as with none. ``check`` proves balance = sum of the ledger for every account.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from provisioner import validation
from provisioner.errors import NotFound, ValidationError
from provisioner.models import Account, Customer, LedgerCheck, LedgerEntry, Reseller
from provisioner.refs import lookup, number
from provisioner.types import CENT, Money


def account_of(kind: str, id_: int) -> str:
    return f"{kind}:{id_}"


def ensure(session: Session, account: str) -> None:
    """The account's row exists (balance 0), made at most once even under concurrency."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(Account).values(account=account, balance=Decimal(0)).on_conflict_do_nothing()
    )


def set_floor(session: Session, account: str, floor: Decimal) -> None:
    """How low the account may go: 0 (prepaid) or minus a credit limit (postpaid). A
    balance already below a raised floor stays (nothing is taken back); it only stops
    further debits."""
    ensure(session, account)
    session.execute(update(Account).where(Account.account == account).values(floor=floor))


def floor_of(session: Session, account: str) -> Decimal:
    value = session.scalar(select(Account.floor).where(Account.account == account))
    return value if value is not None else Decimal("0.00")


def balance(session: Session, account: str) -> Decimal:
    """The account's current balance (0 for an account with no row yet)."""
    value = session.scalar(select(Account.balance).where(Account.account == account))
    return value if value is not None else Decimal("0.00")


def ledger_sum(session: Session, account: str) -> Decimal:
    """The sum of the account's ledger rows: what ``balance`` must always equal."""
    # The database adds integer minor units (CAST keeps the Money type's converter off the
    # sum); convert once, here.
    minor = cast(LedgerEntry.amount, BigInteger)
    total = session.scalar(
        select(func.coalesce(func.sum(minor), 0)).where(LedgerEntry.account == account)
    )
    return (Decimal(int(total or 0)) / 100).quantize(CENT)


def _entry(
    session: Session,
    account: str,
    amount: Decimal,
    kind: str,
    reference: str,
    activation_id: int | None,
    actor: str,
    invoice_id: int | None = None,
) -> None:
    session.execute(
        insert(LedgerEntry).values(
            account=account, amount=amount, kind=kind, reference=reference,
            activation_id=activation_id, invoice_id=invoice_id, created_by=actor,
        )
    )  # fmt: skip


def credit(
    session: Session,
    account: str,
    amount: Decimal,
    kind: str,
    *,
    reference: str = "",
    activation_id: int | None = None,
    invoice_id: int | None = None,
    actor: str = "",
) -> Decimal:
    """Add ``amount`` (> 0): a ledger row and the balance, together. Returns the balance."""
    ensure(session, account)
    new = session.scalar(
        update(Account)
        .where(Account.account == account)
        .values(balance=Account.balance + amount)
        .returning(Account.balance)
    )
    _entry(session, account, amount, kind, reference, activation_id, actor, invoice_id)
    assert new is not None
    return new


def debit(
    session: Session,
    account: str,
    amount: Decimal,
    kind: str,
    *,
    reference: str = "",
    activation_id: int | None = None,
    invoice_id: int | None = None,
    actor: str = "",
) -> Decimal | None:
    """Take ``amount`` (> 0) if the balance stays at or above the account's floor (0, or
    minus a postpaid operator's credit limit): a ledger row and the balance, together.
    Returns the new balance, or None (nothing written) when the account cannot pay."""
    new = session.scalar(
        update(Account)
        .where(Account.account == account, Account.balance - amount >= Account.floor)
        .values(balance=Account.balance - amount)
        .returning(Account.balance)
    )
    if new is None:
        return None
    _entry(session, account, -amount, kind, reference, activation_id, actor, invoice_id)
    return new


@dataclass(frozen=True)
class Mismatch:
    account: str
    balance: Decimal
    ledger: Decimal


def check(session: Session) -> list[Mismatch]:
    """Every account whose balance is not the sum of its ledger rows (none, always).

    One statement, so one snapshot: it runs beside live sales, and under PostgreSQL's
    READ COMMITTED two statements would each see their own, so a debit committed between
    the read of the sums and the read of the balances showed as a false mismatch."""
    sums = (
        select(LedgerEntry.account, func.sum(cast(LedgerEntry.amount, BigInteger)).label("total"))
        .group_by(LedgerEntry.account)
        .cte("sums")
    )
    total = type_coerce(func.coalesce(sums.c.total, 0), Money())  # minor units, as stored
    with_account = select(Account.account, Account.balance, total).outerjoin(
        sums, sums.c.account == Account.account
    )
    # Ledger rows with no account row at all: a balance of 0.
    without = select(sums.c.account, type_coerce(literal(0), Money()), total).where(
        ~exists().where(Account.account == sums.c.account)
    )
    out = [
        Mismatch(account, stored, summed)
        for account, stored, summed in session.execute(union_all(with_account, without))
        if stored != summed
    ]
    return sorted(out, key=lambda m: m.account)


SHOWN = 20  # mismatches named in a check's record; the CLI lists them all


def check_and_record(session: Session, by: str) -> list[Mismatch]:
    """``check``, and its outcome kept in ``ledger_checks`` (read by /metrics)."""
    bad = check(session)
    accounts = session.scalar(select(func.count()).select_from(Account)) or 0
    detail = "; ".join(f"{m.account}: balance {m.balance}, ledger {m.ledger}" for m in bad[:SHOWN])
    session.add(
        LedgerCheck(
            accounts=accounts, mismatches=len(bad), by=by,
            detail=detail + (f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""),
        )
    )  # fmt: skip
    return bad


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
    id_ = number(ref)
    if id_ is not None:
        owner = session.get(model, id_) if id_ < 2**31 else None
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
    return credit(session, account, value, kind, reference=reference, actor=actor)


def entries(session: Session, account: str) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry).where(LedgerEntry.account == account).order_by(LedgerEntry.id)
        )
    )
