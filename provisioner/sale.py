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

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from provisioner import access, effects, ledger
from provisioner.errors import Conflict, PaymentRequired
from provisioner.models import (
    Customer,
    CustomerStatus,
    Invoice,
    Package,
    Payment,
    Reseller,
    ResellerPackage,
)

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
class Links:
    """What every ledger row of one sale names: the activation or the invoice, and who."""

    activation_id: int | None
    invoice_id: int | None
    actor: str

    def debit(
        self, session: Session, account: str, amount: Decimal, kind: str, reference: str
    ) -> Decimal | None:
        return ledger.debit(
            session, account, amount, kind, reference=reference,
            activation_id=self.activation_id, invoice_id=self.invoice_id, actor=self.actor,
        )  # fmt: skip


def customer_price(session: Session, customer: Customer, package: Package) -> Decimal:
    """What the customer pays a period: its reseller's price for its customers (set by
    the reseller's parent), else the package's customer's price."""
    if customer.reseller_id is not None:
        set_for = session.scalar(
            select(ResellerPackage.customer_price).where(
                ResellerPackage.reseller_id == customer.reseller_id,
                ResellerPackage.package_id == package.id,
            )
        )
        if set_for is not None:
            return set_for
    return package.customer_price


def _assignment(session: Session, reseller_id: int, package: Package) -> ResellerPackage | None:
    return session.scalar(
        select(ResellerPackage).where(
            ResellerPackage.reseller_id == reseller_id, ResellerPackage.package_id == package.id
        )
    )


def operator_price(a: ResellerPackage | None, package: Package) -> Decimal:
    """What an operator pays for the package: its parent's price for it, else the
    package's operator price."""
    return a.price if a is not None and a.price is not None else package.operator_price


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
    """Move the money of one sale of ``package`` to ``customer``, paid by ``payer``
    (``admin``, ``reseller:N`` or ``customer:N``), in the caller's transaction.

    ``kind`` names the ledger rows (``activation``, ``invoice``); ``price_to_customer``:
    the customer's price already fixed (an invoice's amount), else today's."""
    settings = effects.settings_of(session)
    cp = price_to_customer if price_to_customer is not None else (
        customer_price(session, customer, package)
    )  # fmt: skip
    links = Links(activation_id, invoice_id, actor)
    if payer == ADMIN:
        return Charged(Decimal("0.00"), cp)
    who, _, number = payer.partition(":")
    if who == "customer":
        paid = links.debit(session, payer, cp, kind, package.name) if cp else 0
        if paid is None:
            have = ledger.balance(session, payer) - ledger.floor_of(session, payer)
            raise PaymentRequired(
                f"insufficient balance: {payer} has {have} {settings.currency}, "
                f"the package costs {cp} {settings.currency}",
                field="balance",
            )
        seller_id = customer.reseller_id
        if seller_id is not None and _assignment(session, seller_id, package) is None:
            seller_id = None  # a public package its reseller does not sell: the admin's sale
        if seller_id is not None:
            seller = ledger.account_of("reseller", seller_id)
            if cp > 0:
                ledger.credit(
                    session, seller, cp, "sale",
                    reference=f"{package.name} for {customer.username}, paid by the customer",
                    activation_id=activation_id, invoice_id=invoice_id, actor=actor,
                )  # fmt: skip
            _operators_pay(session, seller_id, package, customer, kind, cp, links)
        return Charged(cp, cp)
    if who != "reseller" or not number.isdigit():
        raise ValueError(f"no such payer {payer!r}")
    paid = _operators_pay(session, int(number), package, customer, kind, None, links)
    return Charged(paid, cp)


def _operators_pay(
    session: Session,
    seller_id: int,
    package: Package,
    customer: Customer,
    kind: str,
    collected: Decimal | None,
    links: Links,
) -> Decimal:
    """The seller and every operator above it pay their own price, child before parent;
    returns the seller's. ``collected``: what the customer paid the seller (None: cash
    the seller collected itself, at the customer's price it chose)."""
    currency = effects.settings_of(session).currency
    ops = access.chain(session, seller_id)
    below: Reseller | None = None
    paid_below = collected
    first_price = Decimal("0.00")
    for op in ops:
        a = _assignment(session, op.id, package)
        if a is None and below is not None:
            raise Conflict(
                f"package {package.name!r} is no longer given to reseller {op.name!r}, so "
                f"{below.name!r} cannot sell it",
                field="package",
            )
        price = operator_price(a, package)
        if below is None:
            first_price = price
            reference = package.name if collected is None else (
                f"{package.name} for {customer.username} (customer paid {collected}, "
                f"margin {collected - price})"
            )  # fmt: skip
        else:
            reference = (
                f"{package.name} for {customer.username} via {below.name} "
                f"(paid {paid_below}, margin {(paid_below or 0) - price})"
            )
        account = ledger.account_of("reseller", op.id)
        if price > 0 and links.debit(session, account, price, kind, reference) is None:
            if below is None and collected is None:
                have = ledger.balance(session, account) - ledger.floor_of(session, account)
                raise PaymentRequired(
                    f"insufficient balance: {account} has {have} {currency}, "
                    f"the package costs {price} {currency}",
                    field="balance",
                )
            raise PaymentRequired(
                f"refused up the chain: reseller {op.name!r} has not enough balance or "
                f"credit left to pay its {price} {currency} for it",
                field="balance",
            )
        below, paid_below = op, price
    return first_price


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
    follows (``settle``)."""
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
    customer = session.get(Customer, inv.customer_id)
    package = session.get(Package, inv.package_id) if inv.package_id is not None else None
    assert customer is not None
    if package is not None:
        charge(
            session, customer, package, payer, actor=actor, kind="invoice",
            invoice_id=inv.id, price_to_customer=inv.amount,
        )  # fmt: skip
    elif payer != ADMIN:
        raise Conflict(f"invoice {inv.id} names no package to pay for", field="invoice")
    settle(session, customer, inv, now)


def settle(session: Session, c: Customer, inv: Invoice, now: datetime) -> None:
    """A paid invoice's period: the expiry moves to its end, and a suspension the invoice
    job made (never an operator's) or an expiry is lifted, at once."""
    before = effects.customer_state(c)
    if c.status == CustomerStatus.active:
        if c.expires_at is None or c.expires_at < inv.period_end:
            c.expires_at = inv.period_end
    elif c.package_id == inv.package_id and (
        (c.status == CustomerStatus.suspended and c.suspended_reason == UNPAID)
        or c.status == CustomerStatus.expired
    ):
        c.expires_at = inv.period_end
        c.status = CustomerStatus.active if inv.period_end > now else CustomerStatus.expired
        c.suspended_reason = None
    session.flush()
    after = effects.customer_state(c)
    if after != before:
        effects.customers_changed(session, [(before, after)])

