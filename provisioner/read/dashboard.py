"""The dashboard's figures, for the customers a caller may see (the admin: all; a
reseller: its subtree): customers active, expiring, suspended by reason and online;
sales today and this month by reseller; activations and sales per day; sessions online
per hour. Each figure is one grouped query (no row per customer comes back), so the page
costs the same with 100 customers or 100,000.

"Today", "this month" and the days of the charts are the configured time zone's: their
bounds are computed here and compared with the stored UTC times, so one query serves
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from provisioner import access
from provisioner.auth import Principal
from provisioner.models import (
    Activation,
    Customer,
    CustomerStatus,
    Outbox,
    Package,
    Reseller,
    ResellerPackage,
    utcnow,
)
from provisioner.radius_tables import radacct
from provisioner.read import online, routers
from provisioner.read.models import RouterStatusOut
from provisioner.types import Money

EXPIRING_DAYS = 7  # as the API's ``expiring_within_days=7``
CHART_DAYS = 30
CHART_HOURS = 24
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Day:
    day: date
    activations: int
    sales: Decimal


@dataclass(frozen=True)
class Hour:
    at: datetime  # UTC
    online: int


@dataclass
class Dashboard:
    active: int = 0
    expiring: int = 0
    suspended: dict[str, int] = field(default_factory=dict)  # by reason
    online: int = 0
    sales_today: Decimal = ZERO
    sales_month: Decimal = ZERO
    by_reseller: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    days: list[Day] = field(default_factory=list)
    hours: list[Hour] = field(default_factory=list)
    routers: list[RouterStatusOut] = field(default_factory=list)
    failed_work: dict[str, int] = field(default_factory=dict)  # outbox, by kind
    margin_month: Decimal | None = None

    @property
    def suspended_total(self) -> int:
        return sum(self.suspended.values())


def local_midnight(now: datetime, zone: str, days_back: int = 0) -> datetime:
    """The start (in UTC) of the local day ``days_back`` days before ``now``'s."""
    tz = ZoneInfo(zone)
    day = now.astimezone(tz).date() - timedelta(days=days_back)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def month_start(now: datetime, zone: str) -> datetime:
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    return datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC)


def _bucket(column: Any, bounds: list[datetime]) -> Any:
    """Which of ``bounds``' intervals a time falls in (0 .. len - 2), as SQL."""
    return case(*((column < b, i) for i, b in enumerate(bounds[1:])), else_=len(bounds) - 2)


def load(
    session: Session, principal: Principal, zone: str, now: datetime | None = None
) -> Dashboard:
    """Every figure of the caller's dashboard."""
    principal.require("admin", "reseller")
    now = now or utcnow()
    mine = online.customers_of(session, principal)
    d = Dashboard()

    # Customers: one grouped pass over the caller's customers.
    soon = and_(
        Customer.expires_at > now, Customer.expires_at <= now + timedelta(days=EXPIRING_DAYS)
    )
    rows = session.execute(
        select(
            Customer.status,
            Customer.suspended_reason,
            func.count(),
            func.sum(case((soon, 1), else_=0)),
        )
        .where(*mine)
        .group_by(Customer.status, Customer.suspended_reason)
    )
    for status, reason, n, expiring in rows:
        d.expiring += int(expiring or 0)
        if status == CustomerStatus.active:
            d.active += int(n)
        elif status == CustomerStatus.suspended:
            key = reason or "by an operator"
            d.suspended[key] = d.suspended.get(key, 0) + int(n)
    d.online = online.count(session, principal)

    # Sales and activations: one grouped pass over the activations since the chart's
    # first day (or the month's, if earlier), by local day and the customer's reseller.
    today, month = local_midnight(now, zone), month_start(now, zone)
    first_day = local_midnight(now, zone, CHART_DAYS - 1)
    bounds = [local_midnight(now, zone, CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    bounds.append(local_midnight(now, zone, -1))
    lead = [month] if month < first_day else []  # one bucket before the chart, if needed
    edges = lead + bounds
    sold = (
        select(_bucket(Activation.created_at, edges).label("i"), Activation.price,
               Customer.reseller_id)
        .join(Customer, Customer.id == Activation.customer_id)
        .where(Activation.created_at >= edges[0], Activation.created_at < edges[-1], *mine)
        .subquery()
    )  # fmt: skip
    # Grouped by the bucket's column in a subquery: PostgreSQL cannot tell a repeated
    # CASE with its own bound values is the same expression.
    rows = session.execute(
        select(sold.c.i, Reseller.name, func.count(), func.sum(sold.c.price))
        .select_from(sold)
        .outerjoin(Reseller, Reseller.id == sold.c.reseller_id)
        .group_by(sold.c.i, Reseller.name)
    ).all()
    per: dict[int, tuple[int, Decimal]] = {}
    by_reseller: dict[str, tuple[Decimal, Decimal]] = {}
    for i, name, n, total in rows:
        day_start = edges[int(i)]
        amount = _money(total)
        if day_start >= first_day:
            k = int(i) - len(lead)
            was_n, was_v = per.get(k, (0, ZERO))
            per[k] = (was_n + int(n), was_v + amount)
        t = amount if day_start >= today else ZERO
        m = amount if day_start >= month else ZERO
        key = name or "direct (no reseller)"
        was_t, was_m = by_reseller.get(key, (ZERO, ZERO))
        by_reseller[key] = (was_t + t, was_m + m)
    for name, (t, m) in sorted(by_reseller.items()):
        d.sales_today += t
        d.sales_month += m
        if t or m:
            d.by_reseller.append((name, t, m))
    tz = ZoneInfo(zone)
    d.days = [
        Day(bounds[i].astimezone(tz).date(), *per.get(i, (0, ZERO))) for i in range(CHART_DAYS)
    ]

    d.hours = online_per_hour(session, principal, now)
    if principal.role == "admin":
        d.routers = routers.list_(session, principal)
        d.failed_work = dict(
            session.execute(  # type: ignore[arg-type]
                select(Outbox.kind, func.count())
                .where(Outbox.status == "failed")
                .group_by(Outbox.kind)
            ).all()
        )
    else:
        d.margin_month = margin(session, principal, month)
    return d


def online_per_hour(
    session: Session, principal: Principal, now: datetime, hours: int = CHART_HOURS
) -> list[Hour]:
    """Sessions open at each of the last ``hours`` hours (and now), in one grouped pass
    over the sessions open at some point since then.

    A session is open at ``p`` when it started by ``p`` and had not stopped by then, so
    the count at ``p`` is the sessions started by ``p`` less those stopped by ``p``: each
    row falls in one hour by its start and one by its stop, and running sums give every
    point (rather than testing every row against every point).
    """
    dialect = session.get_bind().dialect.name
    points = [now - timedelta(hours=hours - i) for i in range(hours + 1)]
    t0 = int(points[0].timestamp())

    def hour_of(column: Any) -> Any:
        # 0 for at or before the first point, k for (point k-1, point k]; NULL stays NULL.
        k = (online.epoch(column, dialect) - t0 + 3599) // 3600  # integer division
        return case((k < 0, 0), else_=k)

    started, stopped = hour_of(radacct.c.acctstarttime), hour_of(radacct.c.acctstoptime)
    seen = select(started.label("a"), stopped.label("b")).where(
        or_(
            radacct.c.acctstoptime.is_(None),
            online.since(radacct.c.acctstoptime, dialect, points[0]),
        )
    )
    if principal.role != "admin":
        seen = seen.where(online.scope(session, principal))
    sub = seen.subquery()
    starts = [0] * (hours + 1)
    stops = [0] * (hours + 1)
    for a, b, n in session.execute(
        select(sub.c.a, sub.c.b, func.count()).group_by(sub.c.a, sub.c.b)
    ):
        if a is not None and int(a) <= hours:
            starts[int(a)] += int(n)
        if b is not None and int(b) <= hours:
            stops[int(b)] += int(n)
    out, running = [], 0
    for p, began, ended in zip(points, starts, stops, strict=True):
        running += began - ended
        out.append(Hour(p, running))
    return out


def margin(session: Session, principal: Principal, since: datetime) -> Decimal:
    """A reseller's margin on the periods sold to its own customers since ``since``:
    each at the customer's price less the reseller's own price (``sale.customer_price``
    and ``sale.operator_price``, as they stand now), admins' grants left out."""
    me = access.own_reseller(session, principal)
    given = ResellerPackage
    stmt = (
        select(
            type_coerce(  # stored in minor units: read back as money
                func.sum(
                    func.coalesce(given.customer_price, Package.customer_price)
                    - func.coalesce(given.price, Package.operator_price)
                ),
                Money(),
            )
        )
        .select_from(Activation)
        .join(Customer, Customer.id == Activation.customer_id)
        .join(Package, Package.id == Activation.package_id)
        .outerjoin(
            given, and_(given.reseller_id == me.id, given.package_id == Activation.package_id)
        )
        .where(
            Customer.reseller_id == me.id,
            Activation.created_at >= since,
            Activation.payer != "admin",
        )
    )
    return _money(session.scalar(stmt))


def _money(value: Any) -> Decimal:
    # SQLite sums money as a float: back to cents.
    return Decimal(str(value or 0)).quantize(ZERO)
