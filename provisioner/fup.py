"""Fair usage: throttle, not cut.

A master package may carry a threshold (bytes per billing cycle) and a reduced rate. A
customer's usage in its current cycle is summed from ``radacct`` (what the router
accounted for, interim updates included: FreeRADIUS keeps each open session's counters
current, gigawords folded in). Past the threshold ``customers.throttled_until`` is set to
the cycle's end and ``effects`` does the rest in the same transaction: the customer's
``radreply`` Mikrotik-Rate-Limit (the next login's rate) and a CoA with the reduced rate
to every open session. When the cycle ends, or a renewal starts a new one, usage starts
from zero and the full rate comes back the same way.

The cycle is the customer's current billing period: the activation whose period holds
``now`` (else the period before ``expires_at``). A session that began before the cycle
counts the share of its bytes that falls in the cycle, pro rata by time, since RADIUS
counters are per session, not per day.

``check`` is the scheduler's job (every ``fup_interval_seconds``, once across instances).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import NullType

from provisioner import effects
from provisioner.db import transaction
from provisioner.models import (
    Activation,
    Customer,
    CustomerStatus,
    MasterPackage,
    Package,
    utcnow,
)
from provisioner.radius_tables import radacct

CHUNK = 500


@dataclass(frozen=True)
class Accounted:
    """One ``radacct`` row, as far as usage goes."""

    started: datetime | None
    last_seen: datetime | None  # the stop, else the last interim update, else the start
    octets: int


@dataclass(frozen=True)
class Usage:
    """A customer's usage in its current cycle."""

    cycle_start: datetime | None
    cycle_end: datetime | None
    used: int
    threshold: int | None
    throttled_until: datetime | None


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def cycle_bytes(rows: Iterable[Accounted], start: datetime, end: datetime) -> int:
    """Bytes of these sessions that fall in [start, end) (pure).

    A session that began before ``start`` counts the share of its bytes after ``start``,
    pro rata by time; one that began at or after ``end``, or was last seen before
    ``start``, counts nothing.
    """
    start = start.replace(microsecond=0)  # RADIUS counts time in whole seconds
    total = 0
    for r in rows:
        began, seen = _utc(r.started), _utc(r.last_seen)
        if began is None or began >= end or r.octets <= 0:
            continue
        seen = seen or began
        if seen < start:
            continue
        if began >= start:
            total += r.octets
        elif seen > began:
            total += (
                r.octets
                * int((seen - start).total_seconds())
                // max(int((seen - began).total_seconds()), 1)
            )
    return total


def spread(rows: Iterable[Accounted], windows: list[tuple[datetime, datetime]]) -> list[int]:
    """Bytes of these sessions in each [start, end) window, each session's bytes spread
    evenly over its time from start to last seen (pure; for a chart per day, since RADIUS
    counters are per session)."""
    out = [0] * len(windows)
    for r in rows:
        began = _utc(r.started)
        if began is None or r.octets <= 0:
            continue
        seen = max(_utc(r.last_seen) or began, began)
        span = (seen - began).total_seconds()
        for i, (a, b) in enumerate(windows):
            if span <= 0:
                out[i] += r.octets if a <= began < b else 0
                continue
            lo, hi = max(a, began), min(b, seen)
            if hi > lo:
                out[i] += int(r.octets * (hi - lo).total_seconds() / span)
    return out


def _current_periods(
    session: Session, ids: list[int], now: datetime
) -> dict[int, tuple[datetime, datetime]]:
    """Each customer's activation period that holds ``now`` (the latest to start)."""
    out: dict[int, tuple[datetime, datetime]] = {}
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(Activation.customer_id, Activation.starts_at, Activation.expires_at)
            .where(
                Activation.customer_id.in_(ids[i : i + CHUNK]),
                Activation.starts_at <= now,
                Activation.expires_at > now,
            )
            .order_by(Activation.starts_at, Activation.id)
        )
        for cid, start, end in rows:
            out[cid] = (_utc(start), _utc(end))  # type: ignore[assignment]
    return out


def cycle(
    session: Session,
    c: Customer,
    m: MasterPackage,
    now: datetime,
    periods: dict[int, tuple[datetime, datetime]] | None = None,
) -> tuple[datetime, datetime] | None:
    """The customer's current billing period, or None (never activated, or run out).
    ``periods``: ``_current_periods`` of many customers, loaded at once."""
    if c.expires_at is None or _utc(c.expires_at) <= now:  # type: ignore[operator]
        return None
    if periods is None:
        periods = _current_periods(session, [c.id], now)
    if c.id in periods:
        return periods[c.id]
    end = _utc(c.expires_at)
    assert end is not None
    if str(m.billing) == "daily":
        start = end - timedelta(days=m.duration_days)
    else:
        year, month = (end.year - 1, 12) if end.month == 1 else (end.year, end.month - 1)
        start = end.replace(year=year, month=month, day=min(end.day, 28))
    return (start if start <= now else now), end


def _when(value: object) -> datetime | None:
    """A ``radacct`` time as FreeRADIUS wrote it: a timestamp (PostgreSQL), seconds since
    the epoch (the stock SQLite queries) or text."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), UTC)
    return datetime.fromisoformat(str(value))


def radacct_time(value: object) -> datetime | None:
    """A ``radacct`` time read raw (``type_coerce(col, NullType())``), in UTC."""
    return _utc(_when(value))


def _accounted(
    session: Session, usernames: list[str], since: datetime
) -> dict[str, list[Accounted]]:
    octets = func.coalesce(radacct.c.acctinputoctets, 0) + func.coalesce(
        radacct.c.acctoutputoctets, 0
    )
    raw = NullType()  # read and compared as stored: see ``_when``
    stopped = type_coerce(radacct.c.acctstoptime, raw)
    # Sessions that ended before ``since`` are never read again (radacct only grows).
    # SQLite's stock queries store epoch seconds; text (another writer's) sorts after any
    # number there, so such rows are read, never missed.
    sqlite = session.get_bind().dialect.name == "sqlite"
    cutoff: object = int(since.timestamp()) - 1 if sqlite else since
    out: dict[str, list[Accounted]] = {}
    for i in range(0, len(usernames), CHUNK):
        q = select(
            radacct.c.username,
            type_coerce(radacct.c.acctstarttime, raw),
            type_coerce(radacct.c.acctupdatetime, raw),
            stopped,
            octets,
        ).where(
            radacct.c.username.in_(usernames[i : i + CHUNK]),
            or_(stopped.is_(None), stopped >= literal(cutoff, raw)),
        )
        for name, started, updated, ended, n in session.execute(q):
            start = _when(started)
            seen = _when(ended) or _when(updated) or start
            if seen is not None and _utc(seen) < since.replace(microsecond=0):  # type: ignore[operator]
                continue
            out.setdefault(name, []).append(Accounted(start, seen, int(n or 0)))
    return out


def usage(session: Session, c: Customer, now: datetime | None = None) -> Usage:
    """A customer's usage in its current cycle (zero when it has none)."""
    now = now or utcnow()
    m = c.package.master_package if c.package is not None else None
    span = cycle(session, c, m, now) if m is not None else None
    used = 0
    if span is not None:
        rows = _accounted(session, [c.username], span[0]).get(c.username, [])
        used = cycle_bytes(rows, *span)
    return Usage(
        cycle_start=span[0] if span else None,
        cycle_end=span[1] if span else None,
        used=used,
        threshold=m.fup_threshold if m is not None else None,
        throttled_until=_utc(c.throttled_until),
    )


def daily_bytes(
    session: Session, c: Customer, windows: list[tuple[datetime, datetime]], since: datetime
) -> list[int]:
    """The customer's bytes in each window (``spread``), from the sessions seen since."""
    return spread(_accounted(session, [c.username], since).get(c.username, []), windows)


def check(factory: sessionmaker[Session], now: datetime | None = None) -> int:
    """Throttle every active customer past its package's threshold in its current cycle,
    and restore the full rate of every throttled one that is not (a new cycle, a renewal,
    a package without fair usage any more). Returns how many changed."""
    now = now or utcnow()
    with transaction(factory) as s:
        customers = list(
            s.scalars(
                select(Customer)
                .outerjoin(Package, Customer.package_id == Package.id)
                .outerjoin(MasterPackage, Package.master_package_id == MasterPackage.id)
                .where(
                    or_(
                        (Customer.status == CustomerStatus.active)
                        & MasterPackage.fup_threshold.is_not(None)
                        & MasterPackage.fup_down.is_not(None),
                        Customer.throttled_until.is_not(None),
                    )
                )
                .order_by(Customer.id)
            )
        )
        periods = _current_periods(s, [c.id for c in customers], now)
        spans = {}
        for c in customers:
            m = c.package.master_package if c.package is not None else None
            if m is not None and c.status == CustomerStatus.active and m.fup_threshold:
                span = cycle(s, c, m, now, periods)
                if span is not None:
                    spans[c.id] = span
        since = min((a for a, _ in spans.values()), default=now)
        accounted = _accounted(s, [c.username for c in customers if c.id in spans], since)
        changes = []
        for c in customers:
            want: datetime | None = None
            if c.id in spans:
                m = c.package.master_package  # type: ignore[union-attr]
                start, end = spans[c.id]
                used = cycle_bytes(accounted.get(c.username, []), start, end)
                if m.fup_threshold and m.fup_down and m.fup_up and used >= m.fup_threshold:
                    want = end
            if _utc(c.throttled_until) != want:
                before = effects.customer_state(c)
                c.throttled_until = want
                s.flush()
                changes.append((before, effects.customer_state(c)))
        effects.customers_changed(s, changes)
        return len(changes)
