"""Monthly invoices: issued ahead of each billing period, paid from the customer's balance
or recorded by an operator, and enforced after a grace period.

The cycle of a monthly customer, whose ``expires_at`` is the end of its paid period:

- an activation pays its own period: its invoice is written ``paid`` (``activation_paid``);
- ``invoice_days_ahead`` days before the paid period ends, the job issues the next
  period's invoice (``open``, due at the period's start, one per customer and period
  start: a second run finds it and issues nothing);
- whenever the customer's balance covers an open invoice, the job pays it from there;
- an open invoice keeps service ``invoice_grace_days`` past its due date (the customer's
  expiry moves to the grace's end); unpaid then, the customer is suspended (reason
  ``unpaid``) through ``effects``, exactly as an operator's suspension: RADIUS reject,
  Disconnect, the local-mode secret disabled;
- a payment extends the expiry to the period's end, and lifts a suspension this module
  made (never an operator's), at once.

The clock is an argument (``now``) everywhere, so tests drive months in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from provisioner import access, billing, effects, ledger
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.errors import Conflict, NotFound, PaymentRequired
from provisioner.models import (
    Activation,
    Billing,
    Customer,
    CustomerStatus,
    Invoice,
    MasterPackage,
    Package,
    Payment,
    ResellerPackage,
    utcnow,
)

OPEN, PAID, VOID = "open", "paid", "void"
STATUSES = (OPEN, PAID, VOID)
UNPAID = "unpaid"  # customers.suspended_reason
SYSTEM = "system:invoices"


@dataclass(frozen=True)
class RunResult:
    """What one run of the invoice job did."""

    issued: int
    paid: int
    suspended: int


def _open_invoice(session: Session, customer_id: int) -> Invoice | None:
    return session.scalar(
        select(Invoice)
        .where(Invoice.customer_id == customer_id, Invoice.status == OPEN)
        .order_by(Invoice.period_start)
        .limit(1)
    )


def price_for(session: Session, customer: Customer, package: Package) -> Decimal:
    """What the customer pays a period: the price its reseller's parent recommends for
    the package, if any, else the package's customer's price."""
    if customer.reseller_id is not None:
        recommended = session.scalar(
            select(ResellerPackage.customer_price).where(
                ResellerPackage.reseller_id == customer.reseller_id,
                ResellerPackage.package_id == package.id,
            )
        )
        if recommended is not None:
            return recommended
    return package.customer_price


# ---- activations -----------------------------------------------------------------------


def paid_through(session: Session, customer: Customer) -> None:
    """Before an activation prices a period: an expiry moved by an open invoice's grace
    is not paid time, so the customer's expiry goes back to that invoice's period start
    (the activation then pays that very period)."""
    inv = _open_invoice(session, customer.id)
    if inv is not None and customer.expires_at and customer.expires_at > inv.period_start:
        customer.expires_at = inv.period_start


def activation_paid(
    session: Session,
    customer: Customer,
    act: Activation,
    package: Package,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    """An activation paid the period ``start``–``end``: its invoice is that period's
    (``paid``; an open one issued for it is marked paid by the activation). Any other
    open invoice of the customer is void: the activation replaced that billing."""
    customer.suspended_reason = None  # the activation sets it active
    for inv in session.scalars(
        select(Invoice).where(Invoice.customer_id == customer.id, Invoice.status == OPEN)
    ):
        if inv.period_start != start:
            inv.status = VOID
    same = session.scalar(
        select(Invoice).where(Invoice.customer_id == customer.id, Invoice.period_start == start)
    )
    if same is not None:
        if same.status != PAID:
            same.status, same.paid_at, same.activation_id = PAID, now, act.id
            same.amount, same.package_id, same.period_end = act.price, package.id, end
        return
    session.add(
        Invoice(
            customer_id=customer.id, activation_id=act.id, package_id=package.id,
            amount=act.price, period_start=start, period_end=end, due_at=start,
            status=PAID, paid_at=now,
        )
    )  # fmt: skip


# ---- the job ---------------------------------------------------------------------------


def issue_due(session: Session, now: datetime) -> list[Invoice]:
    """Issue the next period's invoice of every active monthly customer whose paid period
    ends within ``invoice_days_ahead`` days and who has no open invoice; each is paid from
    the balance at once when it covers it, else the customer keeps service through the
    grace. Never two invoices for one period (a unique constraint holds it too)."""
    settings = effects.settings_of(session)
    ahead = now + timedelta(days=settings.invoice_days_ahead)
    grace = timedelta(days=settings.invoice_grace_days)
    has_open = (
        select(Invoice.id)
        .where(Invoice.customer_id == Customer.id, Invoice.status == OPEN)
        .exists()
    )
    due = session.scalars(
        select(Customer)
        .join(Package, Package.id == Customer.package_id)
        .join(MasterPackage, MasterPackage.id == Package.master_package_id)
        .where(
            Customer.status == CustomerStatus.active,
            MasterPackage.billing == Billing.monthly,
            Customer.expires_at.is_not(None),
            Customer.expires_at <= ahead,
            ~has_open,
        )
        .order_by(Customer.id)
    ).all()
    issued = []
    for c in due:
        assert c.expires_at is not None and c.package is not None
        start = c.expires_at
        taken = session.scalar(
            select(Invoice.id).where(Invoice.customer_id == c.id, Invoice.period_start == start)
        )
        if taken is not None:
            continue
        inv = Invoice(
            customer_id=c.id, package_id=c.package_id, amount=price_for(session, c, c.package),
            period_start=start, period_end=billing.add_month(start, c.billing_day),
            due_at=start, status=OPEN, created_at=now,
        )  # fmt: skip
        session.add(inv)
        session.flush()
        issued.append(inv)
        if not _pay_from_balance(session, inv, now) and grace:
            before = effects.customer_state(c)
            c.expires_at = start + grace
            session.flush()
            effects.customers_changed(session, [(before, effects.customer_state(c))])
    return issued


def collect(session: Session, now: datetime) -> int:
    """Pay every open invoice the customer's balance now covers; returns how many."""
    n = 0
    for inv in session.scalars(
        select(Invoice).where(Invoice.status == OPEN).order_by(Invoice.due_at, Invoice.id)
    ).all():
        n += _pay_from_balance(session, inv, now)
    return n


def enforce_grace(session: Session, now: datetime) -> list[str]:
    """Suspend every customer with an invoice still open ``invoice_grace_days`` after its
    due date (reason ``unpaid``; its expiry back to what it paid for), through the same
    path as an operator's suspension. Returns their usernames."""
    grace = timedelta(days=effects.settings_of(session).invoice_grace_days)
    changes, names = [], []
    overdue = session.scalars(
        select(Invoice)
        .where(Invoice.status == OPEN, Invoice.due_at <= now - grace)
        .order_by(Invoice.id)
    ).all()
    for inv in overdue:
        c = session.get(Customer, inv.customer_id)
        if c is None or c.status not in (CustomerStatus.active, CustomerStatus.expired):
            continue
        before = effects.customer_state(c)
        c.status = CustomerStatus.suspended
        c.suspended_reason = UNPAID
        c.expires_at = inv.period_start
        changes.append((before, c))
        names.append(c.username)
    session.flush()
    effects.customers_changed(session, [(b, effects.customer_state(c)) for b, c in changes])
    return names


def run(factory: sessionmaker[Session], now: datetime | None = None) -> RunResult:
    """One run of the invoice job, in one transaction: pay what balances cover, issue
    what is due, then suspend what is past its grace."""
    now = now or utcnow()
    with transaction(factory) as s:
        paid = collect(s, now)
        issued = issue_due(s, now)
        paid += sum(1 for inv in issued if inv.status == PAID)
        suspended = enforce_grace(s, now)
    return RunResult(issued=len(issued), paid=paid, suspended=len(suspended))


# ---- payments --------------------------------------------------------------------------


def invoice(session: Session, principal: Principal, invoice_id: int) -> Invoice:
    """An invoice of a customer this caller may see; 404 otherwise."""
    inv = session.get(Invoice, invoice_id) if 0 < invoice_id < 2**31 else None
    c = session.get(Customer, inv.customer_id) if inv else None
    if inv is None or c is None or not access.may_see(session, principal, c):
        raise NotFound(f"no invoice {invoice_id}")
    return inv


def pay(
    session: Session,
    principal: Principal,
    invoice_id: int,
    *,
    reference: str = "",
    now: datetime | None = None,
) -> Invoice:
    """Pay an open invoice in full, in the caller's transaction.

    admin: records money received (method ``admin``; no ledger row). The customer's
    reseller (or one above it): pays from its own balance (method ``reseller``, a ledger
    debit within its floor). The customer: from its balance (method ``balance``). A
    payment restores service at once (see the module's docstring).
    """
    now = now or utcnow()
    inv = invoice(session, principal, invoice_id)
    if inv.status != OPEN:
        raise Conflict(f"invoice {inv.id} is {inv.status}, not open", field="invoice")
    currency = effects.settings_of(session).currency
    if principal.role == "admin":
        method = "admin"
    else:
        method = "reseller" if principal.role == "reseller" else "balance"
        account = access.own_account(principal)
        done = ledger.debit(
            session, account, inv.amount, "invoice",
            reference=f"invoice {inv.id}" + (f" ({reference})" if reference else ""),
            actor=principal.actor,
        )  # fmt: skip
        if done is None:
            have = ledger.balance(session, account) - ledger.floor_of(session, account)
            raise PaymentRequired(
                f"insufficient balance: {account} has {have} {currency}, the invoice is "
                f"{inv.amount} {currency}",
                field="balance",
            )
    _settle(session, inv, method, principal.actor, reference, now)
    return inv


def _pay_from_balance(session: Session, inv: Invoice, now: datetime) -> bool:
    account = ledger.account_of("customer", inv.customer_id)
    if ledger.balance(session, account) < inv.amount:
        return False
    if inv.amount > 0:
        done = ledger.debit(
            session, account, inv.amount, "invoice", reference=f"invoice {inv.id}", actor=SYSTEM
        )
        if done is None:
            return False
    _settle(session, inv, "balance", SYSTEM, "", now)
    return True


def _settle(
    session: Session, inv: Invoice, method: str, actor: str, reference: str, now: datetime
) -> None:
    inv.status, inv.paid_at = PAID, now
    session.add(
        Payment(
            invoice_id=inv.id, amount=inv.amount, method=method, actor=actor,
            reference=reference, at=now,
        )
    )  # fmt: skip
    c = session.get(Customer, inv.customer_id)
    assert c is not None
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
