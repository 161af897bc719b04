"""One sale: every way a customer gets a period of a package moves money here, and only here.

An operator's activation, an admin's, a portal purchase with the balance or a recharge
card, an invoice paid from the balance (by the job or at once) and an invoice payment an
operator records are all one sale (README, "Who pays for a period"):

- **the customer** pays the customer's price (its reseller's price for its customers,
  else the package's). That money is its reseller's takings: the reseller is credited
  it (``sale``) and then pays as below, so it keeps its margin;
- **each operator** from the one that sold the period up to the one under the admin pays
  its own price for the package (the price its parent gives it; the package's operator
  price by default), child before parent, each debit one guarded ``UPDATE`` that cannot
  take its account below its floor; each ledger row says what the one below paid and the
  margin kept;
- **the admin** moves no money: a grant, or cash it records as received.

Exactly once is the writing statement's: an activation's idempotency key is unique, and
an invoice is paid by ``UPDATE invoices SET status = 'paid' … WHERE status = 'open'``
(a second payment, concurrent or later, changes no row and is refused) with one payment
row per invoice (a unique index).

The caller owns the transaction: any refusal (a payer that cannot pay, a parent without
the package) raises, and the caller's rollback leaves nothing charged anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, insert, literal_column, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from provisioner import effects, ledger
from provisioner.batch import Batch
from provisioner.errors import Conflict, PaymentRequired
from provisioner.models import (
    Account,
    Customer,
    CustomerStatus,
    Invoice,
    LedgerEntry,
    Package,
    Payment,
    Reseller,
    ResellerPackage,
    utcnow,
)

ZERO = Decimal("0.00")
ADMIN = "admin"  # the payer of a grant, or of cash the admin received
OPEN, PAID, VOID = "open", "paid", "void"  # invoices.status
UNPAID = "unpaid"  # customers.suspended_reason set by the invoice job


@dataclass(frozen=True)
class Charged:
    """What a sale charged: the payer's own price (0 for the admin) and the customer's
    price of the period (what every customer-facing amount shows)."""

    paid: Decimal
    customer_price: Decimal


@dataclass(frozen=True)
class Leg:
    """One account's part in a sale: a debit (``amount`` > 0, never below the account's
    floor) or a credit (< 0: a customer's payment to its reseller), its ledger row's
    ``kind`` and ``reference``, and what to tell the caller when it cannot pay."""

    account: str
    amount: Decimal
    kind: str
    reference: str
    refusal: str = ""


@dataclass(frozen=True)
class Priced:
    """A sale priced (reads only): its legs in order, child before parent, and what it
    charged (``Charged``). A leg's ``refusal`` is empty for the payer itself (its
    balance is named when it cannot pay)."""

    legs: tuple[Leg, ...]
    charged: Charged


def customer_price(session: Session, customer: Customer, package: Package) -> Decimal:
    """What the customer pays a period: its reseller's price for its customers (set by
    the reseller's parent), else the package's customer's price."""
    return customer_price_of(session, customer.reseller_id, package.id, package.customer_price)


def customer_price_of(
    session: Session, reseller_id: int | None, package_id: int, default: Decimal | None = None
) -> Decimal:
    """``customer_price`` by ids (``default``: the package's, when the caller has it)."""
    if reseller_id is not None:
        set_for = session.scalar(
            select(ResellerPackage.customer_price).where(
                ResellerPackage.reseller_id == reseller_id,
                ResellerPackage.package_id == package_id,
            )
        )
        if set_for is not None:
            return set_for
    if default is None:
        default = session.scalar(select(Package.customer_price).where(Package.id == package_id))
    assert default is not None
    return default


def operator_price(a: ResellerPackage | None, package: Package) -> Decimal:
    """What an operator pays for the package: its parent's price for it, else the
    package's operator price."""
    return a.price if a is not None and a.price is not None else package.operator_price


@dataclass(frozen=True)
class Link:
    """One operator of a chain, with its assignment of the package (None: not given)."""

    id: int
    name: str
    given: bool
    price: Decimal | None
    customer_price: Decimal | None


def chain_statement(seller: Any = None, package: Any = None) -> Any:
    """The chain's query: ``seller`` and ``package`` are the ids' expressions (bound
    parameters ``seller`` and ``package`` unless given, e.g. a subquery by name)."""
    r, rp = Reseller.__table__, ResellerPackage.__table__
    seller = bindparam("seller") if seller is None else seller
    package = bindparam("package") if package is None else package
    up = (
        select(r.c.id, r.c.name, r.c.parent_id, literal_column("0").label("depth"))
        .where(r.c.id == seller)
        .cte("chain", recursive=True)
    )
    up = up.union_all(
        select(r.c.id, r.c.name, r.c.parent_id, up.c.depth + literal_column("1")).where(
            # A cycle is refused when parents are set; the constants are written, not bound
            # (one plan for every chain).
            r.c.id == up.c.parent_id,
            up.c.depth < literal_column("64"),
        )
    )
    return (
        select(
            up.c.id,
            up.c.name,
            rp.c.id.label("given"),
            rp.c.price,
            rp.c.customer_price,
            up.c.depth,
        )  # fmt: skip
        .select_from(up)
        .outerjoin(rp, and_(rp.c.reseller_id == up.c.id, rp.c.package_id == package))
        .order_by(up.c.depth)
    )


_CHAIN = chain_statement()  # built once: every sale of a reseller's customer reads it


def chain(session: Session, seller_id: int, package_id: int) -> list[Link]:
    """The seller and every operator above it, child first, each with its assignment of
    the package: one recursive query."""
    return links_of(session.execute(_CHAIN, {"seller": seller_id, "package": package_id}))


def links_of(rows: Any) -> list[Link]:
    """``chain_statement``'s rows as links."""
    return [Link(x.id, x.name, x.given is not None, x.price, x.customer_price) for x in rows]


def price(
    session: Session,
    customer: Customer,
    package: Package,
    payer: str,
    *,
    kind: str,
    price_to_customer: Decimal | None = None,
    links: list[Link] | None = None,
) -> Priced:
    """Price one sale of ``package`` to ``customer``, paid by ``payer`` (``admin``,
    ``reseller:N`` or ``customer:N``): every leg, by the rule in the module's docstring.
    Reads only; a parent without the package refuses it (409).

    ``kind`` names the ledger rows (``activation``, ``invoice``); ``price_to_customer``:
    the customer's price already fixed (an invoice's amount), else today's; ``links``:
    the seller's chain read already (``chain_statement``)."""
    who, _, number = payer.partition(":")
    if who not in ("customer", "reseller", ADMIN) or (who != ADMIN and not number.isdigit()):
        raise ValueError(f"no such payer {payer!r}")
    seller_id = int(number) if who == "reseller" else customer.reseller_id
    if seller_id is None:
        links = []
    elif links is None:
        links = chain(session, seller_id, package.id)
    cp = price_to_customer
    if cp is None:
        if links and links[0].id == customer.reseller_id:  # known already: no lookup
            cp = links[0].customer_price if links[0].given else None
            cp = cp if cp is not None else package.customer_price
        else:
            cp = customer_price(session, customer, package)
    sold = Sold(package.name, package.operator_price, customer.username, kind)
    return legs_of(sold, payer, cp, links, effects.settings_of(session).currency)


@dataclass(frozen=True)
class Sold:
    """What a sale's ledger rows name and its operators' default price."""

    package: str
    operator_price: Decimal
    username: str
    kind: str  # activation | invoice


def legs_of(sold: Sold, payer: str, cp: Decimal, links: list[Link], currency: str) -> Priced:
    """The legs of one sale (pure): ``cp`` the customer's price, ``links`` the chain from
    the seller up (``chain``). Raises Conflict when a parent no longer has the package."""
    who = payer.partition(":")[0]
    if who == ADMIN:
        return Priced((), Charged(Decimal("0.00"), cp))
    if who == "reseller":
        ops = _operators(sold, links, None, currency)
        return Priced(tuple(ops), Charged(ops[0].amount if ops else Decimal("0.00"), cp))
    legs: list[Leg] = []
    if cp > 0:
        legs.append(Leg(payer, cp, sold.kind, sold.package))
    if links and links[0].given:  # else a public package its reseller does not sell:
        if cp > 0:  # the admin's sale
            legs.append(Leg(
                ledger.account_of("reseller", links[0].id), -cp, "sale",
                f"{sold.package} for {sold.username}, paid by the customer",
            ))  # fmt: skip
        legs += _operators(sold, links, cp, currency)
    return Priced(tuple(legs), Charged(cp, cp))


def _operators(
    sold: Sold, links: list[Link], collected: Decimal | None, currency: str
) -> list[Leg]:
    """The seller and every operator above it, each at its own price, child before
    parent. ``collected``: what the customer paid the seller (None: cash the seller
    collected itself, at the customer's price it chose)."""
    legs: list[Leg] = []
    below: Link | None = None
    paid_below = collected
    for op in links:
        if not op.given and below is not None:
            raise Conflict(
                f"package {sold.package!r} is no longer given to reseller {op.name!r}, so "
                f"{below.name!r} cannot sell it",
                field="package",
            )
        cost = op.price if op.given and op.price is not None else sold.operator_price
        account = ledger.account_of("reseller", op.id)
        if below is None:
            reference = sold.package if collected is None else (
                f"{sold.package} for {sold.username} (customer paid {collected}, "
                f"margin {collected - cost})"
            )  # fmt: skip
        else:
            reference = (
                f"{sold.package} for {sold.username} via {below.name} "
                f"(paid {paid_below}, margin {(paid_below or 0) - cost})"
            )
        refusal = "" if below is None and collected is None else (
            f"refused up the chain: reseller {op.name!r} has not enough balance or "
            f"credit left to pay its {cost} {currency} for it"
        )  # fmt: skip
        legs.append(Leg(account, cost, sold.kind, reference, refusal))
        below, paid_below = op, cost
    return legs


def pay(
    session: Session,
    priced: Priced,
    *,
    actor: str,
    activation_id: int | None = None,
    invoice_id: int | None = None,
    also: Sequence[tuple[Any, dict[str, Any]]] = (),
    commit: bool = False,
) -> None:
    """Write a priced sale's legs: each debit a guarded update, each with its ledger row,
    all in one round trip on PostgreSQL (``batch``), with the caller's ``also``
    statements first. The caller writes the rest of its transaction first: an operator's
    account row, shared by all its sales, is then held only from these debits to the
    commit. Raises PaymentRequired (the first leg that could not pay) and the caller's
    rollback undoes every leg.

    ``commit``: these are the last writes of the caller's transaction, and on PostgreSQL
    its COMMIT goes in the same round trip, so the operators' account rows are held for
    no round trip at all. A debit that cannot pay then fails the transaction in the
    database itself (``provisioner_guard``, migration 0012) and ``Unpaid`` is raised:
    the caller, its transaction rolled back, says why (``refusal``)."""
    if not priced.legs and not also:
        return
    session.flush()
    now = utcnow()
    conn = session.connection()
    w = Batch(conn)
    in_db = commit and w.pipelined
    for stmt, params in also:
        w.add(stmt, params)
    legs = [(n, leg) for n, leg in enumerate(priced.legs) if leg.amount != 0]
    # The ledger rows before the balances: the account rows are then held from the
    # debits to the commit only (and the rows go with ``also``'s INSERTs, ``batch``).
    for _, leg in legs:
        w.add(
            _ENTRY,
            dict(
                account=leg.account, amount=-leg.amount, kind=leg.kind, reference=leg.reference,
                activation_id=activation_id, invoice_id=invoice_id, created_by=actor,
                created_at=now,
            ),
        )  # fmt: skip
    ensure = _ENSURE[conn.dialect.name]
    checked: list[tuple[int, Leg]] = []
    for n, leg in legs:
        if leg.amount < 0:  # a credit: the account's row may not exist yet
            w.add(ensure, {"account": leg.account, "balance": ZERO, "floor": ZERO})
            w.add(_CREDIT, {"payer": leg.account, "price": -leg.amount})
        elif in_db:
            w.add(_DEBITED, {"payer": leg.account, "price": leg.amount}, guarded=f"leg {n}")
        else:
            checked.append((w.add(_DEBIT, {"payer": leg.account, "price": leg.amount}), leg))
    if in_db:
        w.add(_COMMIT, {})
    try:
        done = w.run()
    except DBAPIError as exc:
        said = str(exc.orig)
        if getattr(exc.orig, "sqlstate", None) == GUARD_STATE and _GUARD in said:
            raise Unpaid(priced.legs[int(said.split(_GUARD, 1)[1].split()[0])]) from exc
        raise
    for i, leg in checked:
        if not done[i][1]:
            raise PaymentRequired(refusal(session, leg), field="balance")


class Unpaid(Exception):
    """``pay(commit=True)``: this leg could not pay, and the transaction was rolled back
    in the database. The caller says why in a transaction of its own (``refusal``)."""

    def __init__(self, leg: Leg) -> None:
        super().__init__(leg.account)
        self.leg = leg


def refusal(session: Session, leg: Leg) -> str:
    """Why ``leg`` could not pay: an operator's refusal up the chain, else the payer's
    own (``_insufficient``)."""
    return leg.refusal or _insufficient(session, leg)


def _insufficient(session: Session, leg: Leg) -> str:
    """The payer's own refusal: what it has (above its floor) against the price."""
    currency = effects.settings_of(session).currency
    have = ledger.balance(session, leg.account) - ledger.floor_of(session, leg.account)
    return (
        f"insufficient balance: {leg.account} has {have} {currency}, "
        f"the package costs {leg.amount} {currency}"
    )


def pay_checked(
    session: Session, sales: Sequence[tuple[int, Priced]], *, actor: str, now: datetime
) -> None:
    """Write many priced sales of invoices (``invoice_id``, its legs) that the caller has
    checked against the floors with the accounts locked (the invoice job): one balance
    update per account (still guarded: it raises rather than go below a floor) and every
    ledger row in one statement."""
    delta: dict[str, Decimal] = {}
    credited: set[str] = set()
    entries = []
    for invoice_id, priced in sales:
        for leg in priced.legs:
            delta[leg.account] = delta.get(leg.account, ZERO) - leg.amount
            if leg.amount < 0:
                credited.add(leg.account)
            entries.append(dict(
                account=leg.account, amount=-leg.amount, kind=leg.kind, reference=leg.reference,
                activation_id=None, invoice_id=invoice_id, created_by=actor, created_at=now,
            ))  # fmt: skip
    if not entries:
        return
    for account in sorted(credited):  # a reseller credited a sale may have no row yet
        ledger.ensure(session, account)
    moved = session.execute(_MOVE, [{"acc": a, "delta": d} for a, d in delta.items()])
    if moved.rowcount != len(delta):  # type: ignore[attr-defined]  # the caller's check
        raise RuntimeError("an account would go below its floor: the sales were not checked")
    session.execute(_ENTRY, entries)


def charge(
    session: Session,
    customer: Customer,
    package: Package,
    payer: str,
    *,
    actor: str,
    kind: str,
    activation_id: int | None = None,
    invoice_id: int | None = None,
    price_to_customer: Decimal | None = None,
) -> Charged:
    """``price`` and ``pay`` at once, in the caller's transaction."""
    priced = price(
        session, customer, package, payer, kind=kind, price_to_customer=price_to_customer
    )
    pay(session, priced, actor=actor, activation_id=activation_id, invoice_id=invoice_id)
    return priced.charged


_acc = Account.__table__
_MONEY = _acc.c.balance.type
_DEBITED = (
    update(_acc)
    .where(
        _acc.c.account == bindparam("payer"),
        _acc.c.balance - bindparam("price", type_=_MONEY) >= _acc.c.floor,
    )
    .values(balance=_acc.c.balance - bindparam("price", type_=_MONEY))
)
_DEBIT = _DEBITED.returning(_acc.c.balance)
GUARD_STATE = "P0001"  # PL/pgSQL's RAISE EXCEPTION
_GUARD = "provisioner guard: leg "  # a guarded debit (``batch``) that changed no row
_COMMIT = text("COMMIT")
_CREDIT = (
    update(_acc)
    .where(_acc.c.account == bindparam("payer"))
    .values(balance=_acc.c.balance + bindparam("price", type_=_MONEY))
    .returning(_acc.c.balance)
)
_ENSURE = {
    d.__name__.rsplit(".", 1)[-1]: d.insert(_acc).on_conflict_do_nothing()
    for d in (postgresql, sqlite)
}
_ENTRY = insert(LedgerEntry.__table__)
_MOVE = (
    update(_acc)
    .where(
        _acc.c.account == bindparam("acc"),
        _acc.c.balance + bindparam("delta", type_=_MONEY) >= _acc.c.floor,
    )
    .values(balance=_acc.c.balance + bindparam("delta", type_=_MONEY))
)


# ---- invoices ----------------------------------------------------------------------------


def pay_invoice(
    session: Session,
    inv: Invoice,
    payer: str,
    *,
    method: str,
    actor: str,
    reference: str,
    now: datetime,
) -> None:
    """Pay an open invoice in full as one sale, in the caller's transaction: the guarded
    update marks it paid (or refuses: paid or voided already, by anyone, at any time),
    the payment row is written, the money moves (``charge``), and the customer's period
    follows (``settle``). The customer's row is locked first, as every sale takes it."""
    customer = session.get(
        Customer, inv.customer_id,
        with_for_update=session.get_bind().dialect.name == "postgresql",
    )  # fmt: skip
    marked = session.execute(
        update(Invoice)
        .where(Invoice.id == inv.id, Invoice.status == OPEN)
        .values(status=PAID, paid_at=now)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(inv)
        raise Conflict(f"invoice {inv.id} is {inv.status}, not open", field="invoice")
    session.refresh(inv)
    session.add(
        Payment(
            invoice_id=inv.id, amount=inv.amount, method=method, actor=actor,
            reference=reference, at=now,
        )
    )  # fmt: skip
    package = session.get(Package, inv.package_id) if inv.package_id is not None else None
    assert customer is not None
    if package is not None:
        charge(
            session, customer, package, payer, actor=actor, kind="invoice",
            invoice_id=inv.id, price_to_customer=inv.amount,
        )  # fmt: skip
    elif payer != ADMIN and inv.amount > 0:  # no package to price: its amount, as billed
        leg = Leg(payer, inv.amount, "invoice", f"invoice {inv.id}")
        pay(session, Priced((leg,), Charged(inv.amount, inv.amount)), actor=actor,
            invoice_id=inv.id)  # fmt: skip
    settle(session, customer, inv, now)


def settle(session: Session, c: Customer, inv: Invoice, now: datetime) -> None:
    """A paid invoice's period: the expiry moves to its end, and a suspension the invoice
    job made (never an operator's) or an expiry is lifted, at once."""
    before = effects.customer_state(c)
    settled(c, inv.period_end, inv.package_id, now)
    session.flush()
    after = effects.customer_state(c)
    if after != before:
        effects.customers_changed(session, [(before, after)])


def settled(c: Customer, period_end: datetime, package_id: int | None, now: datetime) -> None:
    """``settle``'s change of the customer (pure; the caller tells ``effects``)."""
    if c.status == CustomerStatus.active:
        if c.expires_at is None or c.expires_at < period_end:
            c.expires_at = period_end
    elif c.package_id == package_id and (
        (c.status == CustomerStatus.suspended and c.suspended_reason == UNPAID)
        or c.status == CustomerStatus.expired
    ):
        c.expires_at = period_end
        c.status = CustomerStatus.active if period_end > now else CustomerStatus.expired
        c.suspended_reason = None
