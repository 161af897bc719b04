"""Activations: who may buy what, payment, subscription, RADIUS rows and NAS work, all in
one transaction, so a crash loses nothing and charges nothing twice.

A repeated idempotency key returns the first activation and charges nothing. Who may
see the customer and the package is ``access``'s rule; what the change sets off (RADIUS,
routers, live sessions, the "other" adapter) is ``effects``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import product
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    null,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from provisioner import (
    access,
    billing,
    cards,
    effects,
    events,
    invoices,
    ledger,
    metrics,
    radius_store,
    sale,
)
from provisioner.auth import Principal
from provisioner.batch import Batch
from provisioner.db import reading, transaction
from provisioner.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    ProvisionerError,
    ValidationError,
)
from provisioner.models import (
    Activation,
    Customer,
    CustomerStatus,
    CustomerType,
    Invoice,
    Ipv6Prefix,
    MasterPackage,
    Package,
    Router,
    utcnow,
)
from provisioner.planning.radius_diff import ObservedRow
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


_c, _rt, _p, _m, _a, _inv = (
    t.__table__ for t in (Customer, Router, Package, MasterPackage, Activation, Invoice)
)
_cp, _cm = _p.alias("cur_package"), _m.alias("cur_master")
_v6 = Ipv6Prefix.__table__


def _labelled(t: Any, prefix: str) -> list[Any]:
    return [c.label(f"{prefix}{c.key}") for c in t.c]


def _resolve_statement(by_id: bool, lock: bool, once: bool = False) -> Any:
    """The customer ``ref`` (by id or name) with its router's mode, its package and
    master now (``c_*``, ``p_*``, ``m_*``), the id of the activation an earlier request
    with ``key`` made (``a_id``), whether it has a live session (``radacct``) and an open
    invoice, and its delegated IPv6 prefix if any (``v6_*``). PostgreSQL (``lock``): the
    customer's row is locked by it, so two purchases for one customer at once (two keys)
    never both extend from the expiry they both read (SQLite's BEGIN IMMEDIATE already
    runs them one after the other). The customer's row comes before any account's, in
    every path; and it takes the activation's id from its sequence (``next_id``), which
    the writes sent with the money refer to.

    Its constants are written as such, not bound: PostgreSQL then plans it as well once
    for every customer (a generic plan) and keeps that plan for the connection, where a
    bound 'open' made it plan the statement afresh at each run (0.25 ms, against 0.09 ms
    to run it)."""
    online = exists().where(radacct.c.username == _c.c.username, radacct.c.acctstoptime.is_(None))
    billed = exists().where(
        _inv.c.customer_id == _c.c.id, _inv.c.status == literal_column(f"'{invoices.OPEN}'")
    )
    next_id: Any = func.nextval(func.pg_get_serial_sequence("activations", "id"))
    if once:  # however many rows it answers (``_read_statement``)
        next_id = select(next_id).scalar_subquery()
    q = (
        select(
            *_labelled(_c, "c_"),
            _rt.c.mode.label("router_mode"),
            *_labelled(_cp, "p_"),
            *_labelled(_cm, "m_"),
            _a.c.id.label("a_id"),
            online.label("online"),
            billed.label("billed"),
            (next_id if lock else null()).label("next_id"),
            _v6.c.prefix.label("v6_prefix"),
            _v6.c.pool_name.label("v6_pool_name"),
        )  # fmt: skip
        .select_from(_c)
        .outerjoin(_rt, _rt.c.id == _c.c.router_id)
        .outerjoin(_v6, _v6.c.customer_id == _c.c.id)
        .outerjoin(_cp, _cp.c.id == _c.c.package_id)
        .outerjoin(_cm, _cm.c.id == _cp.c.master_package_id)
        .outerjoin(_a, _a.c.idempotency_key == bindparam("key"))
        .where((_c.c.id if by_id else _c.c.username) == bindparam("ref"))
    )
    return q.with_for_update(of=_c) if lock else q


def _chain_read(seller_given: bool, customer_by_id: bool, package_by_id: bool) -> Any:
    """``sale.chain_statement`` read with the customer: the seller is the calling
    reseller (``seller``) or else the customer's reseller, the package by id or name."""
    seller = (
        bindparam("seller")
        if seller_given
        else select(_c.c.reseller_id)
        .where((_c.c.id if customer_by_id else _c.c.username) == bindparam("ref"))
        .scalar_subquery()
    )
    package = (
        bindparam("package")
        if package_by_id
        else select(_p.c.id).where(_p.c.name == bindparam("package")).scalar_subquery()
    )
    return sale.chain_statement(seller, package)


def _read_statement(by_id: bool, lock: bool, role: str, package_by_id: bool) -> Any:
    """``_resolve_statement`` with the package as a caller of ``role`` may buy it
    (``access.package_statement``: ``np_*``, ``nm_*``; bound ``package`` and, for a
    reseller, ``me``) and the seller's chain (``ch_*``, one row per operator, child
    first; the calling reseller is the seller, bound ``seller``, else the customer's
    reseller): all an activation reads of the registry, in one statement. A customer with
    no chain answers one row, its ``ch_*`` NULL; no such customer, no row. The
    activation's id is taken once (``next_id``), however many rows."""
    base = _resolve_statement(by_id, lock, once=True)
    pkg = access.package_statement(role, package_by_id, ref="package").subquery("np")
    # Ordered once, outside (``order_by``): the chain's own order would be a second sort.
    chain = _chain_read(role == "reseller", by_id, package_by_id).order_by(None).subquery("ch")
    return (
        base.add_columns(
            *[c.label(f"n{c.key}") for c in pkg.c], *[c.label(f"ch_{c.key}") for c in chain.c]
        )
        .outerjoin(pkg, true())
        .outerjoin(chain, true())
        .order_by(chain.c.depth)
    )


# Built once: a statement made per call costs more Python than its round trip.
_RESOLVE = {(i, lock): _resolve_statement(i, lock) for i in (True, False) for lock in (True, False)}
_READ = {
    (i, lock, role, p): _read_statement(i, lock, role, p)
    for i, lock, p in product((True, False), repeat=3)
    for role in ("admin", "reseller", "customer")
}
_ADD_ACTIVATION = insert(_a)
_ADD_ACTIVATION_ID = insert(_a).returning(_a.c.id)
_SET_CUSTOMER = (
    update(_c)
    .where(_c.c.id == bindparam("cid"))
    .values(
        package_id=bindparam("new_package"),
        status=bindparam("new_status"),
        suspended_reason=bindparam("new_reason"),
        expires_at=bindparam("new_expires"),
        billing_day=bindparam("new_billing_day"),
        throttled_until=bindparam("new_throttled"),
        static_ip=bindparam("new_static_ip"),
    )  # fmt: skip
)
_QUEUED_SYNC = {"kind": effects.SYNC_ROUTER, "status": "pending", "attempts": 0, "error": None}
_APPLIED = update(_a).where(_a.c.id == bindparam("act_id")).values(status="applied")


@dataclass(frozen=True)
class _Read:
    """What one activation reads, at once (one round trip on PostgreSQL)."""

    customer: Any  # ``_READ``'s (or ``_RESOLVE``'s) first row; None: no such customer
    package: Any  # the same row if the package is one this caller may buy (``np_*``)
    chain: list[sale.Link]  # the seller's chain, child first
    observed: list[ObservedRow] | None  # the user's RADIUS rows (None: not read)
    next_id: int | None  # the activation's id (PostgreSQL; SQLite: its insert's)


def _read(conn: Connection, principal: Principal, req: ActivationRequest, key: str) -> _Read:
    by_id, ref = as_param(req.customer)
    if ref is None:
        by_id, ref = True, -1  # names no row
    pkg_by_id, pkg = as_param(req.package)
    pg = conn.dialect.name == "postgresql"
    w = Batch(conn)
    users = None
    if pkg is None:  # names no package: the customer alone
        read = w.add(_RESOLVE[by_id, pg], {"ref": ref, "key": key})
    else:
        role = principal.role if principal.role in ("admin", "reseller") else "customer"
        params: dict[str, Any] = {"ref": ref, "key": key, "package": pkg}
        if role == "reseller":
            params["me"] = params["seller"] = principal.reseller_id or -1
        read = w.add(_READ[by_id, pg, role, pkg_by_id], params)
    if not by_id:
        users = w.add(radius_store.USER_ROWS, {"username": ref})
    out = w.run()
    rows = out[read][1]
    first = rows[0] if rows else None
    return _Read(
        customer=first,
        package=first
        if pkg is not None and first is not None and first.np_id is not None
        else None,
        chain=[
            sale.Link(r.ch_id, r.ch_name, r.ch_given is not None, r.ch_price, r.ch_customer_price)
            for r in rows
            if pkg is not None and r.ch_id is not None
        ],
        observed=radius_store.observed_from(out[users][1], ref) if users is not None else None,
        next_id=first.next_id if first is not None else None,
    )


_PARTS = {
    prefix: [(f"{prefix}{c.key}", c.key) for c in t.c]
    for prefix, t in (("c_", _c), ("p_", _p), ("m_", _m), ("np_", _p), ("nm_", _m))
}


def _part(row: Any, prefix: str) -> SimpleNamespace | None:
    """One table's columns of a joined row under their own names (None: no such row):
    what ``effects``, ``state`` and ``events`` read of a customer, package or master."""
    if getattr(row, f"{prefix}id") is None:
        return None
    return SimpleNamespace(**{key: getattr(row, label) for label, key in _PARTS[prefix]})


def _package_of(row: Any, new: bool = False) -> SimpleNamespace | None:
    """The customer's package now (``p_*``, ``m_*``), or the one it buys (``new``)."""
    package = _part(row, "np_" if new else "p_")
    if package is not None:
        package.master_package = _part(row, "nm_" if new else "m_")
    return package


def _customer_of(row: Any) -> SimpleNamespace:
    customer = _part(row, "c_")
    assert customer is not None
    customer.router = SimpleNamespace(mode=row.router_mode) if row.router_mode else None
    customer.package = _package_of(row)
    return customer


def _refused_package(principal: Principal, ref: str) -> NotFound:
    if principal.role == "reseller":
        return NotFound(f"no package named {ref!r} is assigned to you")
    if principal.role == "customer":
        return NotFound(f"no public package named {ref!r}")
    return NotFound(f"no package named {ref!r}")


def _key(req: ActivationRequest) -> str:
    key = (req.idempotency_key or "").strip()
    if not key or len(key) > 128:
        raise ValidationError("is required (at most 128 characters)", field="idempotency_key")
    return key


def activate(
    session: Session, principal: Principal, req: ActivationRequest, *, commit: bool = False
) -> tuple[Any, bool]:
    """Activate (or extend, or upgrade) in the caller's transaction.

    Returns (activation, created). A key seen before returns the first activation.

    Every case takes this path: what it needs is read at once (``_read``: the customer,
    the package as this caller may buy it, the seller's chain, the user's RADIUS rows),
    the rules decide on those rows, and the writes go out together with the money
    (``sale.pay``), so the payers' account rows are held from their debits to the commit
    only. A case with more to do (a card, an address or a prefix to allocate, an open
    invoice, live sessions or a router to tell) does it on the way.

    ``commit``: the activation is all of the caller's transaction, whose COMMIT may then
    go with the money (``sale.pay``; ``sale.Unpaid`` when a payer cannot pay).
    """
    key = _key(req)
    conn = session.connection()
    read = _read(conn, principal, req, key)
    row = read.customer
    if row is None or row.a_id is not None:
        prior = _replay(session, principal, key)  # another caller's key is refused
        if prior is not None:
            _same_request(session, prior, req)
            return prior, False
    if row is None:
        raise NotFound(f"no customer named {req.customer!r}")
    customer: Any = _customer_of(row)
    if not access.may_see(session, principal, customer):
        raise NotFound(f"no customer named {req.customer!r}")
    if req.payer not in PAYERS:
        # Anything unrecognised would otherwise fall through to an admin's free grant.
        raise ValidationError(f"must be one of {', '.join(PAYERS)}", field="payer")
    if principal.role == "reseller" and not principal.reseller_id:
        access.own_reseller(session, principal)  # refuses
    package: Any = _package_of(read.package, new=True) if read.package is not None else None
    if package is None:
        raise _refused_package(principal, req.package)
    master = package.master_package
    if str(master.customer_type) != str(customer.customer_type):
        raise ValidationError(
            f"package {package.name!r} is for {master.customer_type} customers; "
            f"{customer.username} is a {customer.customer_type} customer",
            field="package",
        )
    payer = _payer(principal, req, customer)
    now = utcnow()
    old_master = customer.package.master_package if customer.package is not None else None
    # The work it may queue as ORM rows (CoA to a live session, an "other" action) names
    # the activation: it is written first then. Else it goes with the money, at the end,
    # and so do its routers' syncs (``effects``'s rows in ``last``).
    may_queue = row.online or str(customer.customer_type) == "other"  # the master's is the same
    if req.payer == "card" or req.card_serial:
        if principal.role == "reseller":
            raise Forbidden("resellers pay from their balance, not with recharge cards")
        # The card tops up the customer's balance; the debit below then pays from it.
        cards.redeem(
            session, principal, customer.username, req.card_serial or "", req.card_pin or ""
        )
    before = effects.customer_state(customer)
    open_invoices = invoices.paid_through(session, customer) if row.billed else []
    start, end, billing_day = period(customer, package, now)
    priced = sale.price(session, customer, package, payer, kind="activation", links=read.chain)
    customer.package, customer.package_id = package, package.id
    customer.status = CustomerStatus.active
    customer.suspended_reason = None
    customer.expires_at = end
    customer.billing_day = billing_day
    if start <= now:  # a new cycle starts now: its fair usage starts from zero
        customer.throttled_until = None
    if customer.customer_type == CustomerType.static and not customer.static_ip:
        customer.static_ip = allocate_address(session, customer, master)
    after = effects.customer_state(customer)
    act: Any = SimpleNamespace(
        id=read.next_id, idempotency_key=key, customer_id=customer.id, package_id=package.id,
        payer=payer, price=priced.charged.paid, requested_by=principal.actor, starts_at=start,
        expires_at=end, status="pending", error=None, created_at=now,
    )  # fmt: skip
    values = {k: v for k, v in vars(act).items() if k != "id" or v is not None}
    act.customer, act.package = customer, package  # what its view shows: no re-read
    writes: list[tuple[Any, dict[str, Any]]] = [
        (_SET_CUSTOMER, dict(
            cid=customer.id, new_package=package.id, new_status=customer.status,
            new_reason=None, new_expires=end, new_billing_day=billing_day,
            new_throttled=customer.throttled_until, new_static_ip=customer.static_ip,
        )),
        (_ADD_ACTIVATION, values),
    ]  # fmt: skip
    if act.id is None:  # SQLite: its id is its insert's (no round trips to save)
        act.id = conn.execute(_ADD_ACTIVATION_ID, values).scalar_one()
        conn.execute(*writes[0])
        writes = []
    elif may_queue:
        w = Batch(conn)
        for stmt, params in writes:
            w.add(stmt, params)
        w.run()
        writes = []
    last = list(writes)  # sent with the money (``sale.pay``)
    if str(master.billing) == "monthly":
        last += invoices.activation_paid(
            session, customer, act, package, start, end, now, priced.charged.customer_price,
            open_invoices,
        )  # fmt: skip
    spec = spec_of(customer)
    if uses_prefixes(old_master, master):  # else none to take or free: no lookup
        held = (  # read with the customer
            SimpleNamespace(prefix=row.v6_prefix, pool_name=row.v6_pool_name)
            if row.v6_prefix is not None
            else None
        )
        spec = replace(spec, delegated_prefix=assign_prefix(session, customer, held))
    # Its RADIUS rows from what is in hand: nothing of it is read again.
    known = {customer.username: (spec, master_spec(master))}
    queued = effects.customers_changed(
        session, [(before, after)], activation_id=act.id, known=known,
        offline=frozenset() if row.online else frozenset({customer.username}), later=last,
        observed=read.observed,
    )  # fmt: skip
    if not queued:  # nothing left to do on a NAS (e.g. a RADIUS-mode PPPoE user)
        act.status = "applied"
        if writes:
            values["status"] = "applied"  # its row goes in ``last``: written applied
        else:
            last.append((_APPLIED, {"act_id": act.id}))
        last.append(events.applied(act, customer, package))  # else outbox._after's
    # The money last: the payers' account rows are held from here to the commit only.
    sale.pay(session, priced, actor=principal.actor, activation_id=act.id, also=last, commit=commit)
    if not may_queue:  # what it queued is its routers' syncs: its view reads none back
        act.work_known = [_QUEUED_SYNC] * queued
    return act, True


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
        try:
            with transaction(factory) as s:
                act, created = activate(s, principal, req, commit=True)
                return act, created, (view(s, act) if view is not None else None)
        except sale.Unpaid as unpaid:  # rolled back: say why from what is there now
            with reading(factory) as s:
                raise PaymentRequired(sale.refusal(s, unpaid.leg), field="balance") from None

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
