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

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from provisioner import access, audit, billing, cards, effects, ledger, sale
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.errors import Conflict, Forbidden, NotFound, PaymentRequired
from provisioner.models import (
    Activation,
    AuditLog,
    Billing,
    Customer,
    CustomerStatus,
    Invoice,
    MasterPackage,
    Package,
    utcnow,
)
from provisioner.sale import OPEN, PAID, UNPAID, VOID

log = logging.getLogger(__name__)
STATUSES = (OPEN, PAID, VOID)
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


# ---- activations -----------------------------------------------------------------------


def paid_through(session: Session, customer: Customer) -> list[Invoice]:
    """Before an activation prices a period: an expiry moved by an open invoice's grace
    is not paid time, so the customer's expiry goes back to that invoice's period start
    (the activation then pays that very period). Returns the customer's open invoices."""
    found = list(
        session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer.id, Invoice.status == OPEN)
            .order_by(Invoice.period_start)
        )
    )
    inv = found[0] if found else None
    if inv is not None and customer.expires_at and customer.expires_at > inv.period_start:
        customer.expires_at = inv.period_start
    return found


def activation_paid(
    session: Session,
    customer: Customer,
    act: Activation,
    package: Package,
    start: datetime,
    end: datetime,
    now: datetime,
    amount: Decimal,
    open_invoices: list[Invoice],
) -> list[tuple[Any, dict[str, Any]]]:
    """An activation paid the period ``start``–``end``: its invoice is that period's
    (``paid``; an open one issued for it is marked paid by the activation). Any other
    open invoice of the customer is void: the activation replaced that billing. ``amount``
    is the customer's price of the period, whoever paid it (an operator's own price is
    never on a customer's invoice).

    Returns the statement that writes the period's invoice, for the caller to send with
    the rest of its writes (one per customer and period: an invoice the job issued and
    paid for it already stays as it is)."""
    customer.suspended_reason = None  # the activation sets it active
    for inv in open_invoices:
        if inv.period_start != start:
            inv.status = VOID
    values = dict(
        customer_id=customer.id, activation_id=act.id, package_id=package.id, amount=amount,
        period_start=start, period_end=end, due_at=start, status=PAID, paid_at=now,
        created_at=now,
    )  # fmt: skip
    return [(_PAID_INVOICE[session.get_bind().dialect.name], values)]


def _paid_invoice(dialect: Any) -> Any:
    """INSERT the period's paid invoice, or mark the one issued for it paid."""
    stmt = dialect.insert(Invoice.__table__)
    keep = ("activation_id", "package_id", "amount", "period_end", "status", "paid_at")
    return stmt.on_conflict_do_update(
        index_elements=["customer_id", "period_start"],
        set_={k: stmt.excluded[k] for k in keep},
        where=Invoice.__table__.c.status != PAID,
    )


_PAID_INVOICE = {"postgresql": _paid_invoice(postgresql), "sqlite": _paid_invoice(sqlite)}


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
    insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
    for c in due:
        assert c.expires_at is not None and c.package is not None
        start = c.expires_at
        end, _day = billing.month_from(start, c.billing_day)
        # One per customer and period, whoever issues it: a second run at once (the
        # scheduler's beside a CLI run) finds the unique key taken and issues nothing.
        new_id = session.scalar(
            insert(Invoice)
            .values(
                customer_id=c.id, package_id=c.package_id,
                amount=sale.customer_price(session, c, c.package), period_start=start,
                period_end=end, due_at=start, status=OPEN, created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(Invoice.id)
        )  # fmt: skip
        if new_id is None:
            continue
        inv = session.get(Invoice, new_id)
        assert inv is not None
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
    card_serial: str | None = None,
    card_pin: str | None = None,
    now: datetime | None = None,
) -> Invoice:
    """Pay an open invoice in full, in the caller's transaction, as one sale (``sale``).

    admin: records money it received (method ``admin``; no ledger row). An operator of
    the customer (its reseller, or one above it): cash it collected, so it and every
    operator above it pay their own price for the package (method ``reseller``). The
    customer: from its balance, topped up first by a recharge card if it gives one
    (method ``balance``), even while suspended as unpaid. A payment restores service at
    once; a second payment of the same invoice is refused (409), never a second debit.
    """
    now = now or utcnow()
    inv = invoice(session, principal, invoice_id)
    if inv.status != OPEN:  # the common refusal, early; the guarded update is the rule
        raise Conflict(f"invoice {inv.id} is {inv.status}, not open", field="invoice")
    if principal.role == "customer":
        me = access.own_customer(session, principal)
        if me.status == CustomerStatus.suspended and me.suspended_reason != UNPAID:
            # An operator's suspension is its decision; paying must not look like a way back.
            raise Forbidden("this account is suspended; contact your provider")
    if card_serial or card_pin:
        if principal.role == "reseller":
            raise Forbidden("resellers pay from their balance, not with recharge cards")
        customer = session.get(Customer, inv.customer_id)
        assert customer is not None
        cards.redeem(session, principal, customer.username, card_serial or "", card_pin or "")
        payer, method = ledger.account_of("customer", inv.customer_id), "balance"
    elif principal.role == "admin":
        payer, method = sale.ADMIN, "admin"
    elif principal.role == "reseller":
        payer, method = access.own_account(principal), "reseller"
    else:
        payer, method = access.own_account(principal), "balance"
    with session.begin_nested():  # a refusal leaves nothing of it, whatever the caller does
        sale.pay_invoice(
            session, inv, payer, method=method, actor=principal.actor, reference=reference,
            now=now,
        )  # fmt: skip
    return inv


def _pay_from_balance(session: Session, inv: Invoice, now: datetime) -> bool:
    """The job's payment from the customer's balance, when it covers the invoice. A sale
    refused (the balance spent meanwhile, an operator above out of credit, another run
    paid it first) is undone alone and leaves the invoice open."""
    account = ledger.account_of("customer", inv.customer_id)
    if ledger.balance(session, account) < inv.amount:
        return False
    try:
        with session.begin_nested():
            sale.pay_invoice(
                session, inv, account, method="balance", actor=SYSTEM, reference="", now=now
            )
    except (Conflict, PaymentRequired) as exc:
        log.warning("invoice %s not paid from the balance: %s", inv.id, exc)
        session.refresh(inv)
        return False
    return True


def void(session: Session, actor: str, invoice_id: int, reason: str = "") -> Invoice:
    """Cancel an open invoice (admin; audited). Nothing was paid on it, so nothing is
    lost: the customer keeps only what it paid for (an expiry the grace moved goes back
    to the period's start), and a suspension for not paying it becomes an expiry."""
    inv = session.get(Invoice, invoice_id) if 0 < invoice_id < 2**31 else None
    if inv is None:
        raise NotFound(f"no invoice {invoice_id}")
    before = audit.snapshot(inv)
    marked = session.execute(
        update(Invoice)
        .where(Invoice.id == inv.id, Invoice.status == OPEN)
        .values(status=VOID)
        .execution_options(synchronize_session=False)
    )
    session.refresh(inv)
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"invoice {inv.id} is {inv.status}, not open", field="invoice")
    c = session.get(Customer, inv.customer_id)
    assert c is not None
    was = effects.customer_state(c)
    if c.expires_at is not None and c.expires_at > inv.period_start:
        c.expires_at = inv.period_start
    suspended_for_it = c.status == CustomerStatus.suspended and c.suspended_reason == UNPAID
    if suspended_for_it and _open_invoice(session, c.id) is None:
        c.status, c.suspended_reason = CustomerStatus.expired, None
    session.flush()
    after = audit.snapshot(inv) | ({"reason": reason} if reason else {})
    session.add(
        AuditLog(actor=actor, action="void", entity="invoices", entity_id=inv.id,
                 before=before, after=after)
    )  # fmt: skip
    now_state = effects.customer_state(c)
    if now_state != was:
        effects.customers_changed(session, [(was, now_state)])
    return inv
