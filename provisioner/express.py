"""The express lane of activation: the common purchase in a handful of statements.

A reseller renewing or starting one of its own customers on a package it was given is
most of an ISP's activations, and they come in bursts (month start, evenings).
``activation.activate`` handles every case through ORM objects (about 30 statements);
this lane handles that one case with SQLAlchemy Core statements built once, sent in two
batches (``batch``: one round trip each on PostgreSQL), and leaves everything else to it:

    reads    customer, package, its price, master, payer's parent, router mode, an earlier
             use of the key, the customer's invoices and open sessions (one joined
             query), and the user's RADIUS rows (one UNION ALL)
    writes   the customer (guarded by what was read), activation, invoice (monthly), the
             user's RADIUS rows, a router's sync, and last the debits (guarded UPDATE …
             RETURNING) and ledger rows of the payer and of its parent (a sub-reseller's
             sale): the reseller's account row, which all its sales share, is locked
             only from its debit to the commit; when the lane is its whole transaction
             (``activation.express_and_view``), the COMMIT goes with them on PostgreSQL

It gives up (returns None, having written nothing) whenever the case is not that one: a
replayed key, an ``id:N`` reference, a sub-reseller's customer (bought by its parent), a
chain of more than two payers or a parent without the package, a package change, a
static customer without an address, IPv6 prefixes, an open invoice, live sessions to
tell, RADIUS groups not ours. ``activate`` then runs in the same transaction and answers
exactly as it always did (its refusals included). What this lane writes is the same rows
``activate`` writes: ``tests/test_express.py`` runs both over the same cases and
compares every table. A caller that runs the lane alone (``activation.express_and_view``)
may ask for the plain replay too (this caller's key, this customer and package): the
resolve has read that already, and the general path would read it all again.

A customer row changed between the read and the write (a concurrent activation of the
same customer), or a payer that cannot pay, raises ``Redo``: the caller rolls back and
runs ``activate`` afresh (which then refuses with its own message). With the COMMIT in the
writes' round trip those two guards fail the transaction in PostgreSQL itself
(``provisioner_guard``, migration 0012), so nothing of it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from provisioner import billing, effects, radius_store, sessions
from provisioner.auth import Principal
from provisioner.batch import Batch
from provisioner.invoices import OPEN, PAID
from provisioner.mapping.radius import customer_rows
from provisioner.models import (
    Account,
    Activation,
    Customer,
    CustomerStatus,
    Invoice,
    LedgerEntry,
    MasterPackage,
    Outbox,
    Package,
    Reseller,
    ResellerPackage,
    Router,
    utcnow,
)
from provisioner.planning.radius_diff import ObservedRow, diff_rows, radius_plan
from provisioner.radius_tables import radacct
from provisioner.refs import id_of
from provisioner.snapshots import CustomerSpec
from provisioner.state import master_spec, options

_c = Customer.__table__
_p = Package.__table__
_rp = ResellerPackage.__table__
_m = MasterPackage.__table__
_r = Reseller.__table__
_rt = Router.__table__
_a = Activation.__table__
_inv = Invoice.__table__
_acc = Account.__table__
_led = LedgerEntry.__table__
_out = Outbox.__table__


class Redo(Exception):
    """Undo this lane's writes and let the general path do it: the customer changed
    between the read and the write, or a payer cannot pay."""


@dataclass(frozen=True)
class Made:
    """What the API shows of an activation this lane made, known without a re-read."""

    activation: Activation  # transient: its columns, not attached to the session
    customer: str
    package: str
    # Kinds of its pending outbox rows; None: a replay, whose first activation this lane
    # read (``activate(replays=True)``) and whose outbox rows may have moved on since.
    work: tuple[str, ...] | None


_old = _p.alias("old_package")
_par = _r.alias("parent")  # the payer's parent, which pays its own price in the same go
_prp = _rp.alias("parent_assignment")
_prior = _a.alias("prior")  # an earlier use of the key
# Built once: a statement made per call costs more Python than its round trip.
_RESOLVE = (
    select(
        _c.c.id,
        _c.c.username,
        _c.c.password,
        _c.c.customer_type,
        _c.c.status,
        _c.c.router_id,
        _c.c.static_ip,
        _c.c.mac_address,
        _c.c.expires_at,
        _c.c.billing_day,
        _c.c.throttled_until,
        _c.c.suspended_reason,
        _c.c.package_id,
        _old.c.master_package_id.label("old_master_id"),
        _p.c.id.label("new_package_id"),
        _p.c.name.label("new_package_name"),
        _p.c.operator_price,
        _rp.c.price,
        _r.c.name.label("payer_name"),
        _r.c.parent_id,
        _par.c.parent_id.label("grandparent_id"),
        _prp.c.id.label("parent_assignment"),
        _prp.c.price.label("parent_price"),
        _rt.c.mode.label("router_mode"),
        *[col.label(f"m_{col.name}") for col in _m.c],
        *[col.label(f"prior_{col.name}") for col in _prior.c],
        select(func.count())
        .where(_inv.c.customer_id == _c.c.id, _inv.c.status == OPEN)
        .scalar_subquery()
        .label("open_invoices"),
        select(func.max(_inv.c.period_start))
        .where(_inv.c.customer_id == _c.c.id)
        .scalar_subquery()
        .label("last_period"),
        exists()
        .where(radacct.c.username == _c.c.username, radacct.c.acctstoptime.is_(None))
        .label("online"),
    )
    .select_from(_c)
    .join(_r, _r.c.id == bindparam("rid"))
    .join(_rp, _rp.c.reseller_id == bindparam("rid"))
    .join(_p, and_(_p.c.id == _rp.c.package_id, _p.c.name == bindparam("package")))
    .join(_m, _m.c.id == _p.c.master_package_id)
    .outerjoin(_par, _par.c.id == _r.c.parent_id)
    .outerjoin(_prp, and_(_prp.c.reseller_id == _par.c.id, _prp.c.package_id == _p.c.id))
    .outerjoin(_old, _old.c.id == _c.c.package_id)
    .outerjoin(_rt, _rt.c.id == _c.c.router_id)
    .outerjoin(_prior, _prior.c.idempotency_key == bindparam("key"))  # a unique key
    .where(_c.c.username == bindparam("username"), _c.c.reseller_id == bindparam("rid"))
)
# PostgreSQL plans a prepared statement afresh at every execution while it judges a
# custom plan better: for the resolve (nine tables, four subqueries, every one found by
# key) that planning cost more of its CPU than the rest of the activation together
# (``bench/README.md``). Its plan does not depend on the values: plan it once.
_GENERIC_PLANS = text("SET LOCAL plan_cache_mode = force_generic_plan")
# A lane that is all of its transaction (``commit``) runs on the API worker's few lane
# threads (``api.shortcut``): a row lock held elsewhere for long (an admin's open
# transaction) must not hold them. It gives up instead, and the general path waits.
LOCK_WAITED = "55P03"  # lock_not_available
# Both for a lane alone, in one statement; its transaction ends with its writes, so no
# RESET is needed (its writes, found by key, plan as well generic as custom).
_ALONE = text(
    "SELECT set_config('lock_timeout', '1s', true),"
    " set_config('plan_cache_mode', 'force_generic_plan', true)"
)
_PLANS_AS_BEFORE = text("RESET plan_cache_mode")
_MONEY = _acc.c.balance.type
_DEBIT_ROW = (
    update(_acc)
    .where(
        _acc.c.account == bindparam("payer"),
        _acc.c.balance - bindparam("price", type_=_MONEY) >= _acc.c.floor,
    )
    .values(balance=_acc.c.balance - bindparam("price", type_=_MONEY))
)
_DEBIT = _DEBIT_ROW.returning(_acc.c.balance)
_ADD_ACTIVATION = insert(_a).returning(_a.c.id)
# Rows that name the activation find it by its key: every write goes out together
# (``batch``), before the activation's id is known.
_THIS = select(_a.c.id).where(_a.c.idempotency_key == bindparam("act_key")).scalar_subquery()
_ADD_LEDGER = insert(_led).values(activation_id=_THIS)
_ADD_INVOICE = insert(_inv).values(activation_id=_THIS)
_ADD_OUTBOX = insert(_out).values(activation_id=_THIS)
_SET_CUSTOMER = (
    update(_c)
    .where(
        _c.c.id == bindparam("cid"),
        _c.c.status == bindparam("was_status", type_=_c.c.status.type),
        _c.c.package_id.is_not_distinct_from(bindparam("was_package", type_=_c.c.package_id.type)),
        _c.c.expires_at.is_not_distinct_from(bindparam("was_expires", type_=_c.c.expires_at.type)),
        _c.c.throttled_until.is_not_distinct_from(
            bindparam("was_throttled", type_=_c.c.throttled_until.type)
        ),
    )
    .values(
        package_id=bindparam("new_package"),
        status=bindparam("new_status"),
        expires_at=bindparam("new_expires"),
        billing_day=bindparam("new_billing_day"),
        throttled_until=bindparam("new_throttled"),
        suspended_reason=bindparam("new_reason"),
    )
)


def _guarded(stmt: Any, what: str) -> Any:
    """PostgreSQL: the UPDATE ``stmt`` as a statement that fails the transaction (migration
    0012's ``provisioner_guard``) unless it changed exactly one row."""
    done = stmt.returning(literal_column("1")).cte("done")
    ok = func.provisioner_guard(func.count() == 1, literal(what)).label("ok")
    return select(ok).select_from(done)


GUARD_STATE = "P0001"  # PL/pgSQL's RAISE EXCEPTION
_GUARD = "provisioner guard: "
_COMMIT = text("COMMIT")
# With the COMMIT in the same round trip (``activate(commit=True)``, PostgreSQL).
_SET_CUSTOMER_OR_FAIL = _guarded(_SET_CUSTOMER, "the customer changed")
_DEBIT_OR_FAIL = _guarded(_DEBIT_ROW, "the payer cannot pay")


class _Master:
    """A joined row's ``m_*`` columns under the master package's own names (what
    ``state.master_spec`` reads)."""

    def __init__(self, row: Any) -> None:
        self._row = row

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, f"m_{name}")


def _pays(w: Batch, account: str, price: Decimal, reference: str, key: str, actor: str,
          now: datetime, guarded: bool) -> tuple[int, ...]:  # fmt: skip
    """Queue the debit of ``account`` (never below its floor) and its ledger row; the
    debit's place in the batch's answer, which has no row when it could not pay (unless
    ``guarded``: then it fails the transaction instead)."""
    debit = w.add(_DEBIT_OR_FAIL if guarded else _DEBIT, {"payer": account, "price": price})
    w.add(
        _ADD_LEDGER,
        dict(
            account=account, amount=-price, kind="activation", reference=reference,
            act_key=key, created_by=actor, created_at=now,
        ),
    )  # fmt: skip
    return (debit,)


def _parent_pays(w: Batch, row: Any, package: str, paid: Decimal, key: str, actor: str,
                 now: datetime, guarded: bool) -> tuple[int, ...]:  # fmt: skip
    """The payer's parent pays its own price for the package, as ``activation._parents_pay``
    records it."""
    price = row.parent_price if row.parent_price is not None else row.operator_price
    reference = (
        f"{package} for {row.username} via {row.payer_name} (paid {paid}, margin {paid - price})"
    )
    return _pays(w, f"reseller:{row.parent_id}", price, reference, key, actor, now, guarded)


def _resolve(conn: Connection, rid: int, username: str, package: str, key: str,
             alone: bool = False) -> tuple[Any, list[ObservedRow]]:  # fmt: skip
    """The joined row (None: not this lane's customer or package) and the user's RADIUS
    rows, read together (one round trip on PostgreSQL). ``alone``: the lane is all of
    the transaction, which then waits for no lock long."""
    w = Batch(conn)
    if w.pipelined:
        w.add(_ALONE if alone else _GENERIC_PLANS, {})
    resolved = w.add(_RESOLVE, {"rid": rid, "username": username, "package": package, "key": key})
    w.add(radius_store.USER_ROWS, {"username": username})
    if w.pipelined and not alone:
        w.add(_PLANS_AS_BEFORE, {})  # for the rest of the transaction (``activate``'s too)
    (_, rows), (_, radius) = w.run()[resolved : resolved + 2]
    if len(rows) > 1:
        raise RuntimeError(f"express: {len(rows)} rows resolve {username!r}, {package!r}")
    return (rows[0] if rows else None), radius_store.observed_from(radius, username)


def activate(session: Session, principal: Principal, key: str, customer: str, package: str,
             payer: str, commit: bool = False,
             replays: bool = False) -> Made | None:  # fmt: skip
    """The express activation, in the caller's transaction, or None (nothing written)
    when the case is not this lane's (see the module docstring). ``commit``: the lane is
    all of the transaction, and on PostgreSQL its COMMIT goes with the writes (the
    reseller's account row is then held for no round trip at all). ``replays``: a key
    this caller used before for this same customer and package is answered with the
    first activation, ``work`` None (any other earlier use is the general path's: its
    refusals)."""
    if principal.role != "reseller" or payer != "auto" or principal.reseller_id is None:
        return None
    if id_of(customer) is not None or id_of(package) is not None:
        return None
    rid = principal.reseller_id
    conn = session.connection()
    row, observed = _resolve(conn, rid, customer, package, key, alone=commit)
    if row is None:
        return None
    if row.prior_id is not None:
        same = (
            row.prior_requested_by == principal.actor
            and row.prior_customer_id == row.id
            and row.prior_package_id == row.new_package_id
        )
        if not (replays and same):
            return None
        first = Activation(**{c.key: getattr(row, f"prior_{c.name}") for c in _a.c})
        return Made(first, row.username, row.new_package_name, None)
    if row.parent_id is not None and (
        row.grandparent_id is not None or row.parent_assignment is None
    ):
        return None  # a longer chain, or a parent without the package: ``activate``
    ctype, status = str(row.customer_type), str(row.status)
    if ctype != str(row.m_customer_type) or ctype == "other":
        return None
    if ctype == "static" and not row.static_ip:
        return None  # an address to allocate: ``activate``
    if row.package_id is not None and row.package_id != row.new_package_id:
        return None  # another package: other terms for live sessions, prefixes, groups
    if row.m_ipv6_pool_name:
        return None
    monthly = str(row.m_billing) == "monthly"
    if row.open_invoices:
        return None  # grace periods and voids: ``invoices`` decides
    now = utcnow()
    active = status == CustomerStatus.active and row.expires_at is not None and row.expires_at > now
    start, end, billing_day = billing.period(
        billing=str(row.m_billing), duration_days=row.m_duration_days, now=now,
        current_expiry=row.expires_at, extend=row.package_id == row.new_package_id and active,
        billing_day=row.billing_day,
    )  # fmt: skip
    if monthly and row.last_period is not None and row.last_period >= start:
        return None
    master = master_spec(_Master(row))  # type: ignore[arg-type]
    throttled_after = row.throttled_until is not None and start > now
    before = sessions.Terms(
        username=row.username, router_id=row.router_id, active=status == CustomerStatus.active,
        static_ip=row.static_ip,
        rate=sessions.rate_of(master, row.throttled_until is not None) if row.package_id else None,
        volume_cap=master.volume_cap if row.package_id else None,
    )  # fmt: skip
    after = sessions.Terms(
        username=row.username, router_id=row.router_id, active=True, static_ip=row.static_ip,
        rate=sessions.rate_of(master, throttled_after), volume_cap=master.volume_cap,
    )  # fmt: skip
    if row.online and sessions.action(before, after) is not None:
        return None  # CoA or Disconnect to queue: ``sessions.queue``

    settings = effects.settings_of(session)
    opts = options(settings)
    spec = CustomerSpec(
        id=row.id, username=row.username, password=row.password, customer_type=ctype,
        status="active", master_id=master.id, router_id=row.router_id,
        static_ip=row.static_ip, mac_address=row.mac_address, throttled=throttled_after,
        expires_at=end,
    )  # fmt: skip
    desired = customer_rows(spec, master, opts)
    owned = {master.profile_name, opts.expired_group}
    if {o.row.attribute for o in observed if o.row.table == "radusergroup"} - owned:
        return None  # a group of another master: the general plan knows which are ours
    changes = []
    for table in radius_store.USER_TABLES:
        mine = [o for o in observed if o.row.table == table]
        changes += diff_rows(table, desired, mine, owned)

    price: Decimal = row.price if row.price is not None else row.operator_price
    account = f"reseller:{rid}"
    # The customer first (the lock every path on this customer meets first), the
    # reseller's account last: its row is shared by every sale of the reseller, so it is
    # held only for the debit, the ledger rows and the commit.
    # Sent together (one round trip on PostgreSQL), then checked: a customer changed
    # since the read, or a payer that cannot pay, rolls all of it back.
    w = Batch(conn)
    in_db = commit and w.pipelined  # the guards fail the transaction in PostgreSQL
    guarded = w.add(
        _SET_CUSTOMER_OR_FAIL if in_db else _SET_CUSTOMER,
        dict(
            cid=row.id, was_status=row.status, was_package=row.package_id,
            was_expires=row.expires_at, was_throttled=row.throttled_until,
            new_package=row.new_package_id, new_status=CustomerStatus.active,
            new_expires=end, new_billing_day=billing_day,
            new_throttled=None if start <= now else row.throttled_until,
            new_reason=None if monthly else row.suspended_reason,
        ),
    )  # fmt: skip
    on_router = effects.router_holds(row.router_mode, ctype)
    act_values = dict(
        idempotency_key=key, customer_id=row.id, package_id=row.new_package_id,
        payer=account, price=price, requested_by=principal.actor, starts_at=start,
        expires_at=end, status="pending" if on_router else "applied", error=None,
        created_at=now,
    )  # fmt: skip
    added = w.add(_ADD_ACTIVATION, act_values)
    if monthly:
        w.add(
            _ADD_INVOICE,
            dict(
                customer_id=row.id, act_key=key, package_id=row.new_package_id,
                amount=price, period_start=start, period_end=end, due_at=start,
                status=PAID, paid_at=now, created_at=now,
            ),
        )  # fmt: skip
    for stmt, rows in radius_store.statements(radius_plan(changes)):
        for values in rows:
            w.add(stmt, values)
    work: tuple[str, ...] = ()
    if on_router and row.router_id is not None:
        w.add(
            _ADD_OUTBOX,
            dict(
                kind=effects.SYNC_ROUTER, router_id=row.router_id, act_key=key,
                payload={}, status="pending", attempts=0, next_attempt_at=now, created_at=now,
            ),
        )  # fmt: skip
        work = (effects.SYNC_ROUTER,)
    debits: tuple[int, ...] = ()
    if price > 0:
        debits = _pays(w, account, price, package, key, principal.actor, now, in_db)
        if row.parent_id is not None:
            debits += _parent_pays(w, row, package, price, key, principal.actor, now, in_db)
    if in_db:
        w.add(_COMMIT, {})
    try:
        done = w.run()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == GUARD_STATE and _GUARD in str(exc.orig):
            raise Redo(str(exc.orig).split(_GUARD, 1)[1].splitlines()[0]) from exc
        raise
    if not in_db and done[guarded][0] != 1:
        raise Redo(row.username)
    if not in_db and not all(done[i][1] for i in debits):
        raise Redo(f"{account} or its parent cannot pay")
    act_id = int(done[added][1][0][0])
    act = Activation(id=act_id, **act_values)
    return Made(act, row.username, package, work)
