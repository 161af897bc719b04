"""Customers: login, type, router, package, reseller, address, status and expiry."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    bindparam,
    case,
    column,
    delete,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from provisioner import access, effects, validation
from provisioner.auth import Principal
from provisioner.batch import Batch
from provisioner.errors import Conflict, Forbidden, NotFound, ValidationError
from provisioner.models import (
    Activation,
    Customer,
    CustomerStatus,
    CustomerType,
    Ipv6FreeSlot,
    Ipv6Prefix,
    MasterPackage,
    Package,
    RechargeCard,
    Reseller,
    Router,
    StaticAddress,
    utcnow,
)
from provisioner.refs import refers_to
from provisioner.registry.common import (
    audit,
    get_by_name,
    money_history,
    reject_unknown,
    secrets_of,
    snapshot,
)
from provisioner.schemas import CUSTOMER_FIELDS

# Every address in use, reserved or a customer's.
_IN_USE = union_all(
    select(StaticAddress.address.label("a")),
    select(Customer.static_ip.label("a")).where(Customer.static_ip.is_not(None)),
).subquery()
# SQLite: as one row (a comma list), walked in Python (``_lowest_by_walking``).
_TAKEN = select(func.group_concat(_IN_USE.c.a, literal(",")).label("taken"))
# PostgreSQL: the lowest free address found where the addresses are, from the pool's hint
# (``AddressHint``: every address of the pool below it is in use; the pool's first
# address when it has none for these ranges). The addresses in use from there to the
# pool's end, as numbers, through their indexes (migration 0023): usually only pinned
# ones. Then each range's first address from there if free, and each used address's
# next one inside its range if free; the lowest, and the hint moved past it. A hint
# lowered meanwhile (an address freed below it, by a trigger) stays lowered.
_FREE_ADDRESS = text("""
WITH r(lo, hi, ord) AS (
    SELECT * FROM unnest(CAST(:los AS bigint[]), CAST(:his AS bigint[])) WITH ORDINALITY
), h(start) AS (
    SELECT coalesce(
        (SELECT next FROM address_hints WHERE pool_name = :pool AND ranges = :ranges), :first)
), used AS MATERIALIZED (
    SELECT address::inet - '0.0.0.0'::inet AS n FROM static_addresses
    WHERE address::inet - '0.0.0.0'::inet BETWEEN (SELECT start FROM h) AND :last
    UNION
    SELECT static_ip::inet - '0.0.0.0'::inet FROM customers
    WHERE static_ip::inet - '0.0.0.0'::inet BETWEEN (SELECT start FROM h) AND :last
), found AS (
    SELECT c FROM (
        SELECT ord, greatest(lo, (SELECT start FROM h)) AS c FROM r
        WHERE hi >= (SELECT start FROM h)
        AND greatest(lo, (SELECT start FROM h)) NOT IN (SELECT n FROM used)
        UNION ALL
        SELECT ord, n + 1 FROM r JOIN used ON n >= lo AND n < hi
        WHERE n + 1 NOT IN (SELECT n FROM used)
    ) free ORDER BY ord, c LIMIT 1
), hinted AS (
    INSERT INTO address_hints AS a (pool_name, ranges, first, last, next)
    SELECT :pool, :ranges, :first, :last, c + 1 FROM found
    ON CONFLICT (pool_name) DO UPDATE SET
        ranges = excluded.ranges, first = excluded.first, last = excluded.last,
        next = CASE WHEN a.ranges = excluded.ranges AND a.next < (SELECT start FROM h)
               THEN a.next ELSE excluded.next END
)
SELECT c FROM found
""").columns(column("c", BigInteger))
_POOL_LOCK = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("pool"))).label("locked"))


def allocate_address(session: Session, c: Customer, m: MasterPackage) -> str:
    """The lowest free address of the package's pool (``validation.ranges`` sorts its
    ranges, so the lowest of all); the unique row makes it exclusive.

    PostgreSQL: first activations of a pool's customers at once would all read the same
    lowest free address, and all but one fail on the unique column (409): each waits for
    the one before it to commit (a lock per pool, held to the end of the transaction).
    The search starts from the pool's hint (``AddressHint``), so it reads the addresses
    in use from there on, not all of them."""
    pool = validation.ranges("pool_ranges", m.pool_ranges)
    w = Batch(session.connection())
    if w.pipelined:  # PostgreSQL: the lock and the search in one round trip
        w.add(_POOL_LOCK, {"pool": f"pool:{m.pool_name}"})
        los, his = [a for a, _ in pool], [b for _, b in pool]
        found = w.add(_FREE_ADDRESS, {
            "los": los, "his": his, "first": los[0], "last": max(his), "pool": m.pool_name or "",
            "ranges": ",".join(f"{a}-{b}" for a, b in pool),
        })  # fmt: skip
        rows = w.run()[found][1]
        n = rows[0][0] if rows else None
    else:
        listed = w.conn.execute(_TAKEN).scalar()
        n = _lowest_by_walking(pool, set(listed.split(",")) if listed else set())
    if n is None:
        raise Conflict(f"pool {m.pool_name!r} of master package {m.name!r} has no free address")
    return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"  # as IPv4Address prints


def _lowest_by_walking(pool: list[tuple[int, int]], used: set[str]) -> int | None:
    for a, b in pool:
        for n in range(a, b + 1):
            if f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" not in used:
                return n
    return None


def _prefix_pool(m: MasterPackage | None) -> ipaddress.IPv6Network | None:
    if m is None or not (m.ipv6_pool_name and m.ipv6_prefix and m.ipv6_prefix_length):
        return None
    return ipaddress.IPv6Network(m.ipv6_prefix)


def uses_prefixes(*masters: MasterPackage | None) -> bool:
    """Whether any of these master packages has an IPv6 pool. A customer moving between
    packages without one has no prefix to take or free (``ipv6_prefixes`` only holds
    prefixes of its package's pool), so the lookup may be skipped."""
    return any(_prefix_pool(m) is not None for m in masters)


NOT_READ: Any = object()  # ``assign_prefix``'s ``held``: read it


def assign_prefix(session: Session, c: Customer, held: Any = NOT_READ) -> str | None:
    """Keep the customer's delegated IPv6 prefix in step with its package; returns it.

    A customer whose package has an IPv6 pool gets the lowest free prefix of it and keeps
    it while that still fits (same pool, same length); one whose package has none (or no
    package) releases it, and a removed customer's row goes with it (``ON DELETE
    CASCADE``). The unique ``prefix`` makes it exclusive: when a concurrent transaction
    took the same prefix first, the insert adds no row and the next is tried.

    ``held``: the customer's row of ``ipv6_prefixes`` (``prefix``, ``pool_name``; None:
    none) when the caller read it already, as an activation does with the customer.
    """
    m = c.package.master_package if c.package is not None else None
    pool = _prefix_pool(m)
    conn = session.connection()  # Core statements: none of the ORM's per-execution work
    existing = conn.execute(_HELD, {"customer": c.id}).first() if held is NOT_READ else held
    if existing is not None:
        mine = ipaddress.IPv6Network(existing.prefix)
        if (
            m is not None
            and pool is not None
            and existing.pool_name == m.ipv6_pool_name
            and mine.prefixlen == m.ipv6_prefix_length
            and mine.subnet_of(pool)
        ):
            return str(existing.prefix)
        conn.execute(_RELEASE, {"prefix": existing.prefix})
    if m is None or pool is None or m.ipv6_prefix_length is None:
        return None
    length, base = m.ipv6_prefix_length, int(pool.network_address)
    step, count = 1 << (128 - length), 1 << (length - pool.prefixlen)
    add = _TAKE[conn.dialect.name]
    w = Batch(conn)
    if w.pipelined:
        # As ``allocate_address``: concurrent activations of one pool would all find the
        # same lowest free slot and all but one fail on it and read again; one at a time
        # (the lock taken with the first read, in one round trip).
        w.add(_POOL_LOCK, {"pool": f"prefix-pool:{m.ipv6_pool_name}"})
    lowest = w.add(_LOWEST_FREE, {"pool": m.ipv6_pool_name})
    i = w.run()[lowest][1][0][0]
    skip: set[int] = set()
    while True:
        if i in skip:  # a row of the pool before it changed holds it
            i = _lowest_free_by_reading(session, pool, base, step, skip)
        if i >= count:
            raise Conflict(
                f"IPv6 pool {m.ipv6_pool_name!r} of master package {m.name!r} has no free "
                f"/{length} prefix",
                field="package",
            )
        prefix = str(ipaddress.IPv6Network((base + i * step, length)))
        w = Batch(conn)  # one statement, without SQLAlchemy's per-execution work
        took = w.add(
            add, {"prefix": prefix, "customer_id": c.id, "pool_name": m.ipv6_pool_name, "slot": i}
        )
        if w.run()[took][1]:
            return prefix
        skip.add(i)  # another customer's, committed meanwhile
        i = conn.scalar(_LOWEST_FREE, {"pool": m.ipv6_pool_name})


_ip6 = Ipv6Prefix.__table__
_HELD = select(_ip6.c.prefix, _ip6.c.pool_name).where(_ip6.c.customer_id == bindparam("customer"))
_RELEASE = delete(_ip6).where(_ip6.c.prefix == bindparam("prefix"))
# A slot taken meanwhile (a unique prefix) adds no row rather than failing the
# transaction: no savepoint around it.
_TAKE = {
    d.__name__.rsplit(".", 1)[-1]: d.insert(_ip6).on_conflict_do_nothing().returning(_ip6.c.prefix)
    for d in (postgresql, sqlite)
}


def _lowest_free_statement() -> Any:
    """The pool's lowest free slot: the least of its smallest free slot (a gap, kept by
    the database: ``Ipv6FreeSlot``) and its highest taken slot plus one (0 for an empty
    pool). Two index lookups, however many prefixes the pool has; the ordered scan that
    looked for the first gap read every one of them (1 ms at 1,000)."""
    pool = bindparam("pool")
    free = select(func.min(Ipv6FreeSlot.slot)).where(Ipv6FreeSlot.pool_name == pool)
    top = select(func.max(Ipv6Prefix.slot)).where(
        Ipv6Prefix.pool_name == pool, Ipv6Prefix.slot.is_not(None)
    )
    after = func.coalesce(top.scalar_subquery() + literal_column("1"), literal_column("0"))
    gap = free.scalar_subquery()
    return select(case((gap < after, gap), else_=after).label("slot"))


_LOWEST_FREE = _lowest_free_statement()


def _lowest_free_by_reading(
    session: Session, pool: ipaddress.IPv6Network, base: int, step: int, skip: set[int]
) -> int:
    """The slow way, when slots do not tell (rows of a pool whose prefix changed, or a
    concurrent insert): every prefix of the table read."""
    taken = skip | {
        (int(ipaddress.IPv6Network(p).network_address) - base) // step
        for p in session.scalars(select(Ipv6Prefix.prefix))
        if ipaddress.IPv6Network(p).subnet_of(pool)
    }
    i = 0
    while i in taken:
        i += 1
    return i


def reassign_prefixes(session: Session, customers: list[Customer]) -> list[str]:
    """``assign_prefix`` for each customer (their package's pool changed); returns the
    usernames whose prefix changed."""
    if not customers:
        return []
    q = select(Ipv6Prefix.customer_id, Ipv6Prefix.prefix).where(
        Ipv6Prefix.customer_id.in_([c.id for c in customers])
    )
    before = {cid: prefix for cid, prefix in session.execute(q)}
    return [c.username for c in customers if assign_prefix(session, c) != before.get(c.id)]


class Lookups:
    """How a customer write finds the rows it names (a router, package or reseller: its
    name or ``id:N``) and the customer a username, MAC or address would clash with: by
    query, one write at a time. ``bulk`` passes one that answers a whole file from rows
    read once, so an import checks every row by these same rules."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def row(self, model: Any, ref: str) -> Any:
        return get_by_name(self.session, model, ref)

    def holder(self, column: str, value: str, own_id: int | None) -> str | None:
        """The username of another customer whose ``column`` is ``value``, if any."""
        col = getattr(Customer, column)
        return self.session.scalar(
            select(Customer.username).where(col == value, Customer.id != own_id)
        )


def _apply_fields(
    session: Session, c: Customer, data: dict[str, Any], lookups: Lookups | None = None
) -> None:
    lk = lookups or Lookups(session)
    if "username" in data or c.username is None:
        c.username = validation.name("username", data.get("username"))
    if "password" in data or c.password is None:
        pw = str(data.get("password") or "")
        if not pw:
            raise ValidationError("must not be empty", field="password")
        if any(ch in pw for ch in "\r\n\0"):
            raise ValidationError("must not contain line breaks", field="password")
        c.password = pw
    if "customer_type" in data or c.customer_type is None:
        try:
            c.customer_type = CustomerType(data.get("customer_type"))
        except ValueError as exc:
            raise ValidationError(
                "must be one of pppoe, hotspot, static, other", field="customer_type"
            ) from exc
    if "router" in data:
        c.router = lk.row(Router, data["router"]) if data["router"] else None
    if "package" in data:
        c.package = lk.row(Package, data["package"]) if data["package"] else None
    if "reseller" in data:
        c.reseller = lk.row(Reseller, data["reseller"]) if data["reseller"] else None
    if "mac_address" in data:
        mac = data["mac_address"]
        c.mac_address = validation.mac("mac_address", mac) if mac else None
    if "status" in data:
        try:
            c.status = CustomerStatus(data["status"])
        except ValueError as exc:
            raise ValidationError(
                "must be new, active, expired or suspended", field="status"
            ) from exc
    if "expires_at" in data:
        v = data["expires_at"]
        if v in (None, ""):
            c.expires_at = None
        else:
            try:
                d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
            except ValueError as exc:
                raise ValidationError(f"{v!r} is not an ISO date/time", field="expires_at") from exc
            c.expires_at = d if d.tzinfo else d.replace(tzinfo=UTC)
    t = str(c.customer_type)
    if c.package is not None and str(c.package.master_package.customer_type) != t:
        raise ValidationError(
            f"package {c.package.name!r} is for "
            f"{c.package.master_package.customer_type} customers, "
            f"not {t}",
            field="package",
        )
    if t != "other" and c.router is None:
        raise ValidationError(f"a {t} customer needs a router", field="router")
    if c.router is not None and t != "other" and not c.router.serves(t):
        raise ValidationError(
            f"router {c.router.name!r} does not serve {t} customers ({c.router.customer_types})",
            field="router",
        )
    if "static_ip" in data and data["static_ip"]:
        c.static_ip = validation.host_address("static_ip", data["static_ip"])
        _outside_router_pools(session, c.static_ip)
    elif "static_ip" in data:
        c.static_ip = None
    if t == "static" and not c.static_ip and c.package is not None:
        c.static_ip = allocate_address(session, c, c.package.master_package)
    if c.static_ip:
        clash = lk.holder("static_ip", c.static_ip, c.id)
        if clash is not None:
            raise Conflict(
                f"{c.static_ip} is already used by customer {clash!r}", field="static_ip"
            )
    if c.mac_address:
        clash = lk.holder("mac_address", c.mac_address, c.id)
        if clash is not None:
            raise Conflict(
                f"{c.mac_address} is already bound to customer {clash!r}", field="mac_address"
            )
    if lk.holder("username", c.username, c.id) is not None:
        raise Conflict(f"a customer named {c.username!r} exists", field="username")


def _outside_router_pools(session: Session, ip: str) -> None:
    """A pinned address must not lie in a pool the router hands out itself (PPPoE and
    hotspot pools): the router could lease it to someone else while it is pinned."""
    n = int(ipaddress.IPv4Address(ip))
    for m in session.scalars(
        select(MasterPackage).where(
            MasterPackage.customer_type.in_([CustomerType.pppoe, CustomerType.hotspot]),
            MasterPackage.pool_ranges.is_not(None),
        )
    ):
        if any(a <= n <= b for a, b in validation.ranges("pool_ranges", m.pool_ranges)):
            raise Conflict(
                f"{ip} is inside pool {m.pool_name!r} of master package {m.name!r}, which "
                "the router hands out itself; pin an address outside PPPoE/hotspot pools",
                field="static_ip",
            )


def record_address(session: Session, c: Customer) -> None:
    """Keep the static address register in step with the customer's address."""
    existing = session.scalar(select(StaticAddress).where(StaticAddress.customer_id == c.id))
    if existing is not None and existing.address != c.static_ip:
        session.delete(existing)
        session.flush()
        existing = None
    if (
        c.static_ip
        and existing is None
        and c.package is not None
        and c.customer_type == CustomerType.static
    ):
        session.add(
            StaticAddress(
                address=c.static_ip,
                customer_id=c.id,
                pool_name=c.package.master_package.pool_name or "",
            )
        )
    session.flush()


def new_customer(
    session: Session, data: dict[str, Any], lookups: Lookups | None = None
) -> Customer:
    """A customer checked by every rule of ``create_customer``, not yet added to the
    session (``lookups``: how rows and clashes are found; by query unless given)."""
    reject_unknown(data, CUSTOMER_FIELDS, "customer")
    c = Customer(status=CustomerStatus.new)
    with session.no_autoflush:
        _apply_fields(session, c, data, lookups)
    return c


def customers_created(session: Session, actor: str, customers: list[Customer]) -> None:
    """What follows adding these new customers (flushed): their static addresses, the
    audit rows, and one ``effects.customers_changed`` for all of them (the RADIUS rows in
    one pass, one sync per router)."""
    for c in customers:
        if c.static_ip and c.package is not None and c.customer_type == CustomerType.static:
            session.add(
                StaticAddress(
                    address=c.static_ip,
                    customer_id=c.id,
                    pool_name=c.package.master_package.pool_name or "",
                )
            )
        if _prefix_pool(c.package.master_package if c.package is not None else None):
            assign_prefix(session, c)  # a new customer has none to keep or free
        audit(session, actor, "create", c, None)
    session.flush()
    effects.customers_changed(session, [(None, effects.customer_state(c)) for c in customers])


def create_customer(session: Session, actor: str, data: dict[str, Any]) -> Customer:
    c = new_customer(session, data)
    session.add(c)
    session.flush()
    customers_created(session, actor, [c])
    return c


def update_customer(session: Session, actor: str, ref: str, data: dict[str, Any]) -> Customer:
    reject_unknown(data, CUSTOMER_FIELDS, "customer")
    c = get_by_name(session, Customer, ref, "username")
    before, state, old = snapshot(c), effects.customer_state(c), secrets_of(c)
    with session.no_autoflush:
        _apply_fields(session, c, data)
    if "status" in data:
        c.suspended_reason = None  # an operator's decision: a payment will not lift it
    session.flush()
    record_address(session, c)
    assign_prefix(session, c)
    audit(session, actor, "update", c, before, old)
    effects.customers_changed(session, [(state, effects.customer_state(c))])
    return c


def delete_customer(session: Session, actor: str, ref: str) -> None:
    c = get_by_name(session, Customer, ref, "username")
    history = money_history(session, "customer", c.id)
    cards = session.scalar(
        select(func.count()).select_from(RechargeCard).where(RechargeCard.redeemed_by == c.id)
    )
    activations = session.scalar(
        select(func.count()).select_from(Activation).where(Activation.customer_id == c.id)
    )
    if history or cards or activations:
        raise Conflict(
            f"customer {c.username!r} has money history ({activations} activations, "
            f"{history} ledger entries, {cards} cards redeemed), which is kept; suspend the "
            "customer instead (status suspended)"
        )
    state = effects.customer_state(c)
    audit(session, actor, "delete", c, snapshot(c))
    session.delete(c)
    session.flush()
    effects.customers_changed(session, [(state, None)])


def reseller_write(
    session: Session,
    principal: Principal,
    data: dict[str, Any],
    *,
    current: Customer | None = None,
) -> dict[str, Any]:
    """A customer write as this caller may make it (``current``: the customer an update
    changes; None for a new one). Admin bodies pass through unchanged.

    A reseller's customer belongs to the reseller itself; naming another reseller (or
    none) is refused. The customer may only get a package assigned to the reseller, and
    the refusal reads the same whether or not the package exists. Service is what a
    reseller pays for with an activation: it may not set an expiry, set a customer active
    outside a paid period, or change the package within a paid period.
    """
    if principal.role == "admin":
        return data
    principal.require("reseller")
    me = access.own_reseller(session, principal)
    paid = current is not None and current.expires_at is not None and current.expires_at > utcnow()
    if "expires_at" in data:
        raise Forbidden("the paid period is set by an activation", field="expires_at")
    if data.get("status") == "active" and not paid:
        raise Forbidden(
            "a customer is set active by an activation (or within its paid period)",
            field="status",
        )
    ref = data.get("package")
    if (
        ref
        and paid
        and current is not None
        and not (current.package and refers_to(str(ref), current.package.name, current.package.id))
    ):
        # Even while suspended: it would be set active again on the dearer package.
        raise Forbidden(
            "within a paid period the package changes by an activation", field="package"
        )
    if "reseller" in data and not (
        data["reseller"] is not None and refers_to(str(data["reseller"]), me.name, me.id)
    ):
        raise Forbidden("a reseller's customers belong to the reseller itself", field="reseller")
    if current is None or "reseller" in data:
        data = {**data, "reseller": me.name}
    if ref:
        # Resolved among the reseller's own packages, and passed on by name, so the
        # registry binds exactly the package this check allowed.
        data = {**data, "package": _assigned(session, principal, str(ref))}
    return data


def _assigned(session: Session, principal: Principal, ref: str) -> str:
    try:
        return access.assignment(session, principal, ref).package.name
    except NotFound:
        raise Forbidden(f"package {ref!r} is not assigned to you", field="package") from None
