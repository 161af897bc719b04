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

from sqlalchemy import insert as insert_
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, sessionmaker

from provisioner import access, audit, billing, cards, effects, events, ledger, sale
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.errors import Conflict, Forbidden, NotFound
from provisioner.models import (
    Account,
    Activation,
    AuditLog,
    Billing,
    Customer,
    CustomerStatus,
    Invoice,
    MasterPackage,
    Package,
    Payment,
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


CHUNK = 500  # invoices a transaction of the job issues or pays: one statement each step


def _due(session: Session, now: datetime, after: int) -> list[Any]:
    """The next ``CHUNK`` active monthly customers (by id, past ``after``) whose paid
    period ends within ``invoice_days_ahead`` days and who have no open invoice."""
    settings = effects.settings_of(session)
    ahead = now + timedelta(days=settings.invoice_days_ahead)
    has_open = (
        select(Invoice.id)
        .where(Invoice.customer_id == Customer.id, Invoice.status == OPEN)
        .exists()
    )
    return session.execute(
        select(Customer.id, Customer.package_id, Customer.reseller_id, Customer.expires_at,
               Customer.billing_day)
        .join(Package, Package.id == Customer.package_id)
        .join(MasterPackage, MasterPackage.id == Package.master_package_id)
        .where(
            Customer.id > after,
            Customer.status == CustomerStatus.active,
            MasterPackage.billing == Billing.monthly,
            Customer.expires_at.is_not(None),
            Customer.expires_at <= ahead,
            ~has_open,
        )
        .order_by(Customer.id)
        .limit(CHUNK)
    ).all()  # fmt: skip


def issue_due(session: Session, now: datetime, rows: list[Any], prices: dict[Any, Decimal]
              ) -> tuple[list[Any], int]:  # fmt: skip
    """Issue the next period's invoice of each of these due customers (``_due``): one
    statement, one per customer and period whoever issues it (a second run at once finds
    the unique key taken and issues nothing). Each is paid from the balance at once when
    it covers it (``pay_from_balances``), else the customer keeps service through the
    grace. Returns (the invoices issued, how many were paid)."""
    grace = timedelta(days=effects.settings_of(session).invoice_grace_days)
    values = []
    for r in rows:
        end, _day = billing.month_from(r.expires_at, r.billing_day)
        key = (r.reseller_id, r.package_id)
        if key not in prices:
            prices[key] = sale.customer_price_of(session, r.reseller_id, r.package_id)
        values.append(dict(
            customer_id=r.id, package_id=r.package_id, amount=prices[key],
            period_start=r.expires_at, period_end=end, due_at=r.expires_at, status=OPEN,
            created_at=now,
        ))  # fmt: skip
    if not values:
        return [], 0
    insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
    issued = session.execute(
        insert(Invoice).values(values).on_conflict_do_nothing().returning(*_ROW)
    ).all()
    owner = {r.id: r.reseller_id for r in rows}
    events.emit_many(session, [
        events.row("invoice.issued", invoice_body(r, OPEN, settings_currency(session)),
                   reseller_id=owner.get(r.customer_id), customer_id=r.customer_id)
        for r in issued
    ])  # fmt: skip
    paid = pay_from_balances(session, issued, now)
    if grace:
        waiting = [r for r in issued if r.id not in paid]
        customers = _customers(session, [r.customer_id for r in waiting])
        changes = []
        for r in waiting:
            c = customers[r.customer_id]
            before = effects.customer_state(c)
            c.expires_at = r.period_start + grace
            changes.append((before, c))
        session.flush()
        effects.customers_changed(session, [(b, effects.customer_state(c)) for b, c in changes])
    return issued, len(paid)


_ROW = (Invoice.id, Invoice.customer_id, Invoice.package_id, Invoice.amount,
        Invoice.period_start, Invoice.period_end)  # fmt: skip


def _customers(session: Session, ids: list[int], *, lock: bool = False) -> dict[int, Customer]:
    """These customers with what ``effects.customer_state`` reads, in one query;
    ``lock``: their rows locked, in id order (PostgreSQL)."""
    if not ids:
        return {}
    q = (
        select(Customer)
        .where(Customer.id.in_(ids))
        .options(
            joinedload(Customer.router),
            joinedload(Customer.package).joinedload(Package.master_package),
        )
        .order_by(Customer.id)
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(of=Customer.__table__)
    return {c.id: c for c in session.scalars(q).unique()}


def pay_from_balances(session: Session, invoices: list[Any], now: datetime) -> set[int]:
    """Pay from the customers' balances every one of these open invoices (rows of
    ``_ROW``) that its customer's balance covers, as one sale each (``sale.legs_of``: the
    customer pays the invoice's amount, its reseller is credited it and every operator
    up the chain pays its own price), in set statements: the accounts involved are
    locked, each sale is checked against their floors in order (a sale an operator above
    cannot pay is left open, as ``sale.pay`` refuses it), the invoices are marked paid by
    the guarded update (another run that paid one first keeps it), and only those get
    their payment, ledger rows and period. Returns the ids paid."""
    if not invoices:
        return set()
    settings = effects.settings_of(session)
    accounts = _accounts(session, {f"customer:{r.customer_id}" for r in invoices}, lock=False)
    covered = [r for r in invoices
               if accounts.get(f"customer:{r.customer_id}", (0, 0))[0] >= r.amount]  # fmt: skip
    if not covered:
        return set()
    # Locks in the order every sale takes them: the customer's row, its invoice, then the
    # accounts, customers' before operators' and each operator before its parent.
    customers = _customers(session, [r.customer_id for r in covered], lock=True)
    packages = {p.id: p for p in session.scalars(
        select(Package).where(Package.id.in_({r.package_id for r in covered})))}  # fmt: skip
    chains: dict[tuple[int, int], list[sale.Link]] = {}
    priced: list[tuple[Any, sale.Priced]] = []
    for r in covered:
        c, p = customers.get(r.customer_id), packages.get(r.package_id)
        if c is None or p is None:
            continue
        links: list[sale.Link] = []
        if c.reseller_id is not None:
            key = (c.reseller_id, p.id)
            if key not in chains:
                chains[key] = sale.chain(session, c.reseller_id, p.id)
            links = chains[key]
        sold = sale.Sold(p.name, p.operator_price, c.username, "invoice")
        try:
            legs = sale.legs_of(sold, f"customer:{c.id}", r.amount, links, settings.currency)
        except Conflict as exc:
            log.warning("invoice %s not paid from the balance: %s", r.id, exc)
            continue
        priced.append((r, legs))
    opened = set(session.scalars(  # another run, or a payment, may have paid some by now
        update(Invoice)
        .where(Invoice.id.in_([r.id for r, _ in priced]), Invoice.status == OPEN)
        .values(status=PAID, paid_at=now)
        .returning(Invoice.id)
        .execution_options(synchronize_session=False)
    ))  # fmt: skip
    priced = [(r, legs) for r, legs in priced if r.id in opened]
    # Every account these sales move, locked, then each sale checked against the floors
    # with the balances it leaves.
    height: dict[str, int] = {}
    for links in chains.values():
        for i, link in enumerate(links):
            height[ledger.account_of("reseller", link.id)] = len(links) - i
    touched = {leg.account for _, legs in priced for leg in legs.legs}
    held = _accounts(session, {a for a in touched if a.startswith("customer:")}, lock=True)
    for a in sorted(touched - set(held), key=lambda a: (-height.get(a, 0), a)):
        held.update(_accounts(session, {a}, lock=True))  # child before parent, as a sale
    running = {a: bal for a, (bal, _floor) in held.items()}
    payable = []
    for r, legs in priced:
        after = dict(running)
        ok = True
        for leg in legs.legs:
            bal = after.get(leg.account, Decimal("0.00")) - leg.amount
            if leg.amount > 0 and (leg.account not in held or bal < held[leg.account][1]):
                ok = False  # this payer (or one above it) cannot pay: left open
                break
            after[leg.account] = bal
        if ok:
            running = after
            payable.append((r, legs))
    paid = {r.id for r, _ in payable}
    unpaid = opened - paid
    if unpaid:  # marked above, cannot be paid: open again
        session.execute(
            update(Invoice).where(Invoice.id.in_(sorted(unpaid)))
            .values(status=OPEN, paid_at=None).execution_options(synchronize_session=False)
        )  # fmt: skip
    if not payable:
        return set()
    session.execute(insert_(Payment), [
        dict(invoice_id=r.id, amount=r.amount, method="balance", actor=SYSTEM, reference="",
             at=now) for r, _ in payable
    ])  # fmt: skip
    sale.pay_checked(session, [(r.id, legs) for r, legs in payable], actor=SYSTEM, now=now)
    events.emit_many(session, [
        events.row("invoice.paid", invoice_body(r, PAID, settings.currency),
                   reseller_id=customers[r.customer_id].reseller_id, customer_id=r.customer_id)
        for r, _legs in payable
    ])  # fmt: skip
    changes = []
    for r, _legs in payable:
        c = customers[r.customer_id]
        before = effects.customer_state(c)
        sale.settled(c, r.period_end, r.package_id, now)
        changes.append((before, c))
    session.flush()
    effects.customers_changed(
        session, [(b, a) for b, c in changes if (a := effects.customer_state(c)) != b]
    )
    return paid


Balances = dict[str, tuple[Decimal, Decimal]]  # account -> (balance, floor)


def _accounts(session: Session, names: set[str], *, lock: bool) -> Balances:
    """account → (balance, floor) of these accounts that exist. ``lock``: FOR UPDATE, in
    account order (PostgreSQL locks the rows as the sorted scan returns them; SQLite's
    BEGIN IMMEDIATE already holds its one writer's lock)."""
    out: Balances = {}
    ordered = sorted(names)
    for i in range(0, len(ordered), CHUNK):
        q = (
            select(Account.account, Account.balance, Account.floor)
            .where(Account.account.in_(ordered[i : i + CHUNK]))
            .order_by(Account.account)
        )
        if lock and session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        out.update({a: (b, f) for a, b, f in session.execute(q)})
    return out


def collect(session: Session, now: datetime, after: int) -> tuple[int, int]:
    """Pay the next ``CHUNK`` open invoices (by id, past ``after``) that the customers'
    balances now cover. Returns (the last id looked at, or 0 when none are left; paid)."""
    rows = session.execute(
        select(*_ROW).where(Invoice.status == OPEN, Invoice.id > after)
        .order_by(Invoice.id).limit(CHUNK)
    ).all()  # fmt: skip
    if not rows:
        return 0, 0
    return rows[-1].id, len(pay_from_balances(session, rows, now))


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
        events.emit(
            session, "invoice.overdue",
            invoice_body(inv, OPEN, effects.settings_of(session).currency) | {
                "customer": c.username, "due_at": inv.due_at.isoformat()},
            reseller_id=c.reseller_id, customer_id=c.id,
        )  # fmt: skip
        names.append(c.username)
    session.flush()
    effects.customers_changed(session, [(b, effects.customer_state(c)) for b, c in changes])
    return names


def run(factory: sessionmaker[Session], now: datetime | None = None) -> RunResult:
    """One run of the invoice job: pay what balances cover, issue what is due, then
    suspend what is past its grace. ``CHUNK`` invoices a transaction: a run over 100,000
    customers holds no lock for long, and one interrupted keeps what it committed (each
    invoice is issued once and paid once, so the next run goes on from there)."""
    now = now or utcnow()
    paid = issued = 0
    after = 0
    while True:
        with transaction(factory) as s:
            after, n = collect(s, now, after)
        paid += n
        if not after:
            break
    prices: dict[Any, Decimal] = {}  # the customer's price, by reseller and package
    while True:
        with transaction(factory) as s:
            rows = _due(s, now, after)
            made, n = issue_due(s, now, rows, prices)
        issued, paid = issued + len(made), paid + n
        if not rows:
            break
        after = rows[-1].id
    with transaction(factory) as s:
        suspended = enforce_grace(s, now)
    return RunResult(issued=issued, paid=paid, suspended=len(suspended))


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
    c = session.get(Customer, inv.customer_id)
    events.emit(
        session, "invoice.paid",
        invoice_body(inv, PAID, effects.settings_of(session).currency) | {"method": method},
        reseller_id=c.reseller_id if c else None, customer_id=inv.customer_id,
    )  # fmt: skip
    return inv


def settings_currency(session: Session) -> str:
    return effects.settings_of(session).currency


def invoice_body(r: Any, status: str, currency: str) -> dict[str, Any]:
    """invoice.*: the invoice (``r``: an Invoice, or a row of ``_ROW``)."""
    return {
        "invoice_id": r.id, "customer_id": r.customer_id, "package_id": r.package_id,
        "amount": str(r.amount), "currency": currency, "status": status,
        "period_start": r.period_start.isoformat(), "period_end": r.period_end.isoformat(),
    }  # fmt: skip


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
