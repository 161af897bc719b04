"""Activations: who may buy what, payment, subscription, RADIUS rows and NAS work, all in
one transaction, so a crash loses nothing and charges nothing twice.

A repeated idempotency key returns the first activation and charges nothing. Who may
see the customer and the package is ``access``'s rule; what the change sets off (RADIUS,
routers, live sessions, the "other" adapter) is ``effects``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, joinedload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from provisioner import access, billing, cards, effects, events, invoices, ledger, metrics, sale
from provisioner.auth import Principal
from provisioner.db import transaction
from provisioner.errors import Conflict, Forbidden, NotFound, ProvisionerError, ValidationError
from provisioner.models import (
    Activation,
    Customer,
    CustomerStatus,
    CustomerType,
    Invoice,
    Package,
    ResellerPackage,
    utcnow,
)
from provisioner.radius_tables import radacct
from provisioner.refs import as_param, refers_to
from provisioner.registry import allocate_address, assign_prefix, uses_prefixes
from provisioner.state import master_spec, spec_of

T = TypeVar("T")
PAYERS = ("auto", "admin", "reseller", "customer", "card")


@dataclass(frozen=True)
class ActivationRequest:
    customer: str
    package: str
    idempotency_key: str
    payer: str = "auto"  # one of PAYERS
    card_serial: str | None = None
    card_pin: str | None = None


def period(
    customer: Customer, package: Package, now: datetime
) -> tuple[datetime, datetime, int | None]:
    """(start, end, billing day) of buying ``package`` now (see ``billing.period``): the
    period extends the current one when the customer is active on the same package."""
    m = package.master_package
    active = (
        customer.status == CustomerStatus.active
        and customer.expires_at is not None
        and customer.expires_at > now
    )
    return billing.period(
        billing=str(m.billing),
        duration_days=m.duration_days,
        now=now,
        current_expiry=customer.expires_at,
        extend=customer.package_id == package.id and active,
        billing_day=customer.billing_day,
    )


def _package_for(
    session: Session, principal: Principal, ref: str
) -> tuple[Package, ResellerPackage | None]:
    """The package ``ref`` as this caller may buy it (``access``), and for a reseller its
    assignment (its price), with a refusal that says which list it was looked for in."""
    try:
        if principal.role == "reseller":
            a = access.assignment(session, principal, ref)
            return a.package, a
        return access.package(session, principal, ref), None
    except NotFound:
        if principal.role == "reseller":
            raise NotFound(f"no package named {ref!r} is assigned to you") from None
        if principal.role == "customer":
            raise NotFound(f"no public package named {ref!r}") from None
        raise


def _payer(principal: Principal, req: ActivationRequest, customer: Customer) -> str:
    """Who pays this purchase (``sale.charge`` decides each price): a reseller itself, a
    customer from its balance, or for an admin whoever it names (no one: a grant)."""
    if principal.role == "reseller":
        return ledger.account_of("reseller", principal.reseller_id or 0)
    if principal.role == "customer":
        if customer.status == CustomerStatus.suspended:
            # A suspension is the operator's decision; buying must not lift it.
            raise Forbidden("this account is suspended; contact your provider")
        return ledger.account_of("customer", customer.id)
    if req.payer in ("customer", "card"):
        return ledger.account_of("customer", customer.id)
    if req.payer == "reseller":
        if customer.reseller_id is None:
            raise ValidationError("this customer has no reseller to charge", field="payer")
        return ledger.account_of("reseller", customer.reseller_id)
    return sale.ADMIN


def _replay(session: Session, principal: Principal, key: str) -> Activation | None:
    """The activation an earlier request with this key made, if the same caller made it.

    Keys are global, so another caller's key is refused: replaying its activation would
    show that caller's customer, package and price, and drop this request unnoticed."""
    prior = session.scalar(select(Activation).where(Activation.idempotency_key == key))
    if prior is not None and prior.requested_by != principal.actor:
        raise Conflict(
            "this idempotency key was already used by another caller; send a new key",
            field="idempotency_key",
        )
    return prior


def _same_request(session: Session, prior: Activation, req: ActivationRequest) -> None:
    """A replayed key must carry the request it was first used for, as payment APIs
    require: another customer, package or payer under an old key is refused, not
    silently answered with the first activation."""
    c = session.get(Customer, prior.customer_id)
    p = session.get(Package, prior.package_id)
    kind = {"card": "customer", "auto": None}.get(req.payer, req.payer)
    same = (
        c is not None
        and p is not None
        and refers_to(req.customer, c.username, c.id)
        and refers_to(req.package, p.name, p.id)
        and kind in (None, prior.payer.split(":")[0])
    )
    if not same:
        raise Conflict(
            f"this idempotency key was used for activation {prior.id} ({c.username if c else '?'}"
            f", {p.name if p else '?'}); a different request needs a new key",
            field="idempotency_key",
        )


@dataclass(frozen=True)
class Resolved:
    customer: Customer
    prior: Activation | None  # what an earlier request with this key made
    online: bool  # a live session in ``radacct``
    billed: bool  # an open invoice


def _resolve(session: Session, principal: Principal, ref: str, key: str) -> Resolved:
    """The customer ``ref`` as this caller may see it, with its router, package and
    master, the activation an earlier request with ``key`` made (if any), whether it
    has a live session (``radacct``) and whether it has an open invoice, in one query.
    PostgreSQL: the customer's row is locked by it, so two purchases for one customer at
    once (two keys) never both extend from the expiry they both read (SQLite's BEGIN
    IMMEDIATE already runs them one after the other). The customer's row comes before
    any account's, in every path."""
    by_id, value = as_param(ref)
    if value is None:
        by_id, value = True, -1  # names no row
    postgres = session.get_bind().dialect.name == "postgresql"
    row = session.execute(_RESOLVE[by_id, postgres], {"ref": value, "key": key}).unique().first()
    customer, prior = (row[0], row[1]) if row else (None, None)
    if prior is None and customer is None:
        prior = _replay(session, principal, key)  # a key whose customer is gone since
    elif prior is not None and prior.requested_by != principal.actor:
        _replay(session, principal, key)  # refused: another caller's key
    if prior is None and (customer is None or not access.may_see(session, principal, customer)):
        raise NotFound(f"no customer named {ref!r}")
    assert customer is not None or prior is not None
    return Resolved(customer, prior, bool(row and row[2]), bool(row and row[3]))  # type: ignore[arg-type]


def _resolve_statement(by_id: bool, lock: bool) -> Any:
    """``_resolve``'s query, built once per form (by id or name; locking on PostgreSQL)."""
    online = (
        exists()
        .where(radacct.c.username == Customer.username, radacct.c.acctstoptime.is_(None))
        .label("online")
    )
    billed = (
        exists()
        .where(Invoice.customer_id == Customer.id, Invoice.status == invoices.OPEN)
        .label("billed")
    )
    q = (
        select(Customer, Activation, online, billed)
        .outerjoin(Activation, Activation.idempotency_key == bindparam("key"))
        .where((Customer.id if by_id else Customer.username) == bindparam("ref"))
        .options(
            joinedload(Customer.router),
            joinedload(Customer.package).joinedload(Package.master_package),
        )
    )
    return q.with_for_update(of=Customer.__table__) if lock else q


_RESOLVE = {(i, lock): _resolve_statement(i, lock) for i in (True, False) for lock in (True, False)}


def _key(req: ActivationRequest) -> str:
    key = (req.idempotency_key or "").strip()
    if not key or len(key) > 128:
        raise ValidationError("is required (at most 128 characters)", field="idempotency_key")
    return key


def activate(
    session: Session, principal: Principal, req: ActivationRequest
) -> tuple[Activation, bool]:
    """Activate (or extend, or upgrade) in the caller's transaction.

    Returns (activation, created). A key seen before returns the first activation.
    """
    key = _key(req)
    found = _resolve(session, principal, req.customer, key)
    customer, prior, online = found.customer, found.prior, found.online
    if prior is not None:
        _same_request(session, prior, req)
        return prior, False
    if req.payer not in PAYERS:
        # Anything unrecognised would otherwise fall through to an admin's free grant.
        raise ValidationError(f"must be one of {', '.join(PAYERS)}", field="payer")
    package, _assigned = _package_for(session, principal, req.package)
    master = package.master_package
    if str(master.customer_type) != str(customer.customer_type):
        raise ValidationError(
            f"package {package.name!r} is for {master.customer_type} customers; "
            f"{customer.username} is a {customer.customer_type} customer",
            field="package",
        )
    payer = _payer(principal, req, customer)
    now = utcnow()
    if req.payer == "card" or req.card_serial:
        if principal.role == "reseller":
            raise Forbidden("resellers pay from their balance, not with recharge cards")
        # The card tops up the customer's balance; the debit below then pays from it.
        cards.redeem(
            session, principal, customer.username, req.card_serial or "", req.card_pin or ""
        )
    before = effects.customer_state(customer)
    open_invoices = invoices.paid_through(session, customer) if found.billed else []
    start, end, billing_day = period(customer, package, now)
    priced = sale.price(session, customer, package, payer, kind="activation")
    act = Activation(
        idempotency_key=key, customer_id=customer.id, package_id=package.id,
        payer=payer, price=priced.charged.paid, requested_by=principal.actor,
        starts_at=start, expires_at=end, status="pending",
    )  # fmt: skip
    session.add(act)
    old_master = customer.package.master_package if customer.package is not None else None
    customer.package = package
    customer.status = CustomerStatus.active
    customer.suspended_reason = None
    customer.expires_at = end
    customer.billing_day = billing_day
    if start <= now:  # a new cycle starts now: its fair usage starts from zero
        customer.throttled_until = None
    if customer.customer_type == CustomerType.static and not customer.static_ip:
        customer.static_ip = allocate_address(session, customer, master)
    session.flush()  # the activation and the customer in one unit of work
    set_committed_value(act, "customer", customer)  # what its view shows, kept: no re-read
    set_committed_value(act, "package", package)
    last: list[tuple[Any, dict[str, Any]]] = []  # sent with the money (``sale.pay``)
    if str(master.billing) == "monthly":
        last += invoices.activation_paid(
            session, customer, act, package, start, end, now, priced.charged.customer_price,
            open_invoices,
        )  # fmt: skip
    prefixes = uses_prefixes(old_master, master)
    if prefixes:  # else none to take or free: no lookup
        assign_prefix(session, customer)
    known = None
    if not prefixes:  # its RADIUS rows from what is in hand (a prefix is read with them)
        known = {customer.username: (spec_of(customer), master_spec(master))}
    queued = effects.customers_changed(
        session, [(before, effects.customer_state(customer))], activation_id=act.id,
        known=known, offline=frozenset() if online else frozenset({customer.username}),
        later=last,
    )  # fmt: skip
    if not queued:  # nothing left to do on a NAS (e.g. a RADIUS-mode PPPoE user)
        last.append((_APPLIED, {"act_id": act.id}))
        last.append(events.applied(act, customer, package))  # else outbox._after's
    # The money last: the payers' account rows are held from here to the commit only.
    sale.pay(session, priced, actor=principal.actor, activation_id=act.id, also=last)
    if not queued:
        set_committed_value(act, "status", "applied")
        act.work_known = []  # type: ignore[attr-defined]  # its view reads no outbox rows
    return act, True


_APPLIED = (
    update(Activation.__table__)
    .where(Activation.__table__.c.id == bindparam("act_id"))
    .values(status="applied")
)


def expire_due(factory: sessionmaker[Session], now: datetime | None = None) -> int:
    """Cut off every active customer whose subscription ran out; returns how many."""
    now = now or utcnow()
    with transaction(factory) as s:
        due = list(
            s.scalars(
                select(Customer).where(
                    Customer.status == CustomerStatus.active, Customer.expires_at < now
                )
            )
        )
        before = [effects.customer_state(c) for c in due]
        for c in due:
            c.status = CustomerStatus.expired
        s.flush()
        effects.customers_changed(s, zip(before, map(effects.customer_state, due), strict=True))
        return len(due)


def run_activation(
    factory: sessionmaker[Session], principal: Principal, req: ActivationRequest
) -> tuple[int, bool]:
    """One activation in its own transaction; a concurrent duplicate key returns the first."""
    (act_id, created), _ = run_and_view(factory, principal, req, None)
    return act_id, created


View = Callable[[Session, Activation], T]
RETRY_STATES = ("40P01", "40001")  # deadlock detected, serialization failure


def _sqlstate(exc: OperationalError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def run_and_view(
    factory: sessionmaker[Session],
    principal: Principal,
    req: ActivationRequest,
    view: View[T] | None,
) -> tuple[tuple[int, bool], T | None]:
    """``run_activation``, and ``view(session, activation)`` made in the same transaction
    (the API's answer costs no second session). Counted in ``metrics`` with its time, by
    outcome: created, replayed, or the error's class."""
    started = time.perf_counter()

    def attempt() -> tuple[Activation, bool, T | None]:
        with transaction(factory) as s:
            act, created = activate(s, principal, req)
            return act, created, (view(s, act) if view is not None else None)

    try:
        try:
            act, created, shown = attempt()
        except OperationalError as exc:
            # PostgreSQL chose this transaction to end a deadlock: do it afresh, once.
            if _sqlstate(exc) not in RETRY_STATES:
                raise
            act, created, shown = attempt()
        metrics.record_activation(
            "created" if created else "replayed", time.perf_counter() - started
        )
        return (act.id, created), shown
    except ProvisionerError as exc:
        metrics.record_activation(type(exc).__name__, time.perf_counter() - started)
        raise
    except IntegrityError:
        with transaction(factory) as s:  # a concurrent request with this key came first
            prior = _replay(s, principal, _key(req))
            if prior is None:
                raise
            _same_request(s, prior, req)
            return (prior.id, False), (view(s, prior) if view is not None else None)
