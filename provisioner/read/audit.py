"""The audit log: every registry change, newest first. Admins only.

Besides the raw rows (the API's and the CLI's ``page``), the panels read it as people do
(``shown``): who acted by name, spelled one way whatever wrote the row; what changed in
the units the forms use (rates as 10M, sizes as 5 GiB, times to the minute, names for
ids); paged by id (``keyset``), so the thousandth page costs what the first does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.auth import Principal
from provisioner.models import (
    ApiToken,
    AuditLog,
    Customer,
    MasterPackage,
    Package,
    Reseller,
    Router,
    WebUser,
)
from provisioner.rates import format_rate
from provisioner.read import paging
from provisioner.read.models import AuditOut, Page

ENTITIES = (
    "master_packages", "packages", "resellers", "reseller_packages", "routers", "customers",
    "api_tokens", "web_users", "invoices", "radacct",
)  # fmt: skip

# The tables whose rows have a name, and the column that holds it.
_NAMED: dict[str, tuple[Any, Any]] = {
    "master_packages": (MasterPackage, MasterPackage.name),
    "packages": (Package, Package.name),
    "resellers": (Reseller, Reseller.name),
    "routers": (Router, Router.name),
    "customers": (Customer, Customer.username),
    "web_users": (WebUser, WebUser.username),
    "api_tokens": (ApiToken, ApiToken.name),
}
# A field holding another row's id, and that row's table.
_REFS = {
    "master_package_id": "master_packages",
    "package_id": "packages",
    "reseller_id": "resellers",
    "parent_id": "resellers",
    "router_id": "routers",
    "customer_id": "customers",
}
_RATES = {
    "rate_down", "rate_up", "burst_down", "burst_up", "burst_threshold_down",
    "burst_threshold_up", "min_down", "min_up", "fup_down", "fup_up",
}  # fmt: skip
_SIZES = {"volume_cap", "fup_threshold"}
_HIDDEN = {"id", "created_at", "updated_at"}
_SINGULAR = {
    "master_packages": "master package", "packages": "package", "resellers": "reseller",
    "reseller_packages": "reseller's package", "routers": "router", "customers": "customer",
    "api_tokens": "API token", "web_users": "web login", "invoices": "invoice",
    "radacct": "session",
}  # fmt: skip
CLI = ("cli", "admin:cli")
# The days filter also bounds the ids (one probe of the time index at each end), so a page
# of a day in the middle of a long log is an id range scan, not a walk from the newest row.
# Rows are stamped and numbered at the same insert, so time and id order agree except
# between writers racing within milliseconds: the margin keeps those rows in (the time
# conditions stay, so nothing outside the days is shown).
ID_MARGIN = 10_000  # what the CLI wrote before and after actors were one spelling


def list_(
    session: Session, principal: Principal, *, entity: str | None = None, limit: int = 50
) -> list[AuditOut]:
    return page(session, principal, entity=entity, limit=limit).items


def _out(a: AuditLog) -> AuditOut:
    return AuditOut(
        at=a.at.isoformat(timespec="seconds"),
        actor=a.actor,
        action=a.action,
        entity=a.entity,
        id=a.entity_id,
        before=a.before,
        after=a.after,
    )


def page(
    session: Session,
    principal: Principal,
    *,
    entity: str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> Page[AuditOut]:
    """One page of the audit log, newest first; ``entity``: one table's rows only."""
    principal.require("admin")
    q = select(AuditLog).order_by(AuditLog.id.desc())
    if entity:
        q = q.where(AuditLog.entity == entity)
    return paging.page(session, q, _out, limit=limit, offset=offset)


# ---- as people read it -----------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the audit page narrows the log to: one table, one actor (as people name it:
    a login, a reseller's or a customer's name, "cli"), a range of days (inclusive)."""

    entity: str = ""
    actor: str = ""
    since: date | None = None
    until: date | None = None
    zone: str = "UTC"  # whose days: the ISP's (``timezone``)


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Entry:
    id: int
    at: str
    actor: str
    action: str
    what: str
    changes: tuple[Change, ...]


def actor_keys(session: Session, who: str) -> list[str]:
    """The stored spellings of an actor people name: a web login or token name
    ("admin:NAME"), a reseller ("reseller:ID"), a customer ("customer:ID"), the CLI (both
    of its spellings), else the text as stored ("system:invoices")."""
    who = who.strip()
    if who.endswith(")") and " (" in who:  # as the page shows it: "resA (reseller)"
        who = who.split(" (")[0]
    keys = [who, f"admin:{who}"]
    if who.lower() in ("cli", "admin:cli"):
        keys += list(CLI)
    r = session.scalar(select(Reseller.id).where(Reseller.name == who))
    if r is not None:
        keys.append(f"reseller:{r}")
    c = session.scalar(select(Customer.id).where(Customer.username == who))
    if c is not None:
        keys.append(f"customer:{c}")
    return list(dict.fromkeys(keys))


def _where(session: Session, f: Filters) -> list[Any]:
    where: list[Any] = []
    if f.entity:
        where.append(AuditLog.entity == f.entity)
    if f.actor:
        where.append(AuditLog.actor.in_(actor_keys(session, f.actor)))
    if f.since:
        start = datetime.combine(f.since, time(), tzinfo=ZoneInfo(f.zone)).astimezone(UTC)
        where.append(AuditLog.at >= start)
        first = session.scalar(
            select(AuditLog.id).where(AuditLog.at >= start).order_by(AuditLog.at).limit(1)
        )
        if first is not None:
            where.append(AuditLog.id >= first - ID_MARGIN)
    if f.until:
        end = datetime.combine(
            f.until + timedelta(days=1), time(), tzinfo=ZoneInfo(f.zone)
        ).astimezone(UTC)
        where.append(AuditLog.at < end)
        last = session.scalar(
            select(AuditLog.id).where(AuditLog.at < end).order_by(AuditLog.at.desc()).limit(1)
        )
        if last is not None:
            where.append(AuditLog.id <= last + ID_MARGIN)
    return where


def keyset(
    session: Session,
    principal: Principal,
    filters: Filters,
    *,
    before: int | None = None,
    limit: int = paging.DEFAULT_LIMIT,
) -> tuple[list[AuditLog], int | None]:
    """Up to ``limit`` rows older than id ``before`` (None: the newest), newest first, and
    the ``before`` of the next page (None: this is the last). No count, no offset: each
    page is an index range scan on the id."""
    principal.require("admin")
    limit = paging.bounds(limit, 0)[0] or paging.DEFAULT_LIMIT
    q = select(AuditLog).where(*_where(session, filters))
    if before is not None:
        q = q.where(AuditLog.id < before)
    rows = list(session.scalars(q.order_by(AuditLog.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def _names(session: Session, wanted: dict[str, set[int]]) -> dict[tuple[str, int], str]:
    """Names of the rows still there, one query per table."""
    out: dict[tuple[str, int], str] = {}
    for table, ids in wanted.items():
        if table not in _NAMED or not ids:
            continue
        model, column = _NAMED[table]
        for id_, name in session.execute(select(model.id, column).where(model.id.in_(ids))):
            out[(table, id_)] = name
    return out


def size_text(value: int) -> str:
    """Bytes as people read them: 5 GiB, 1.5 MiB, 900 bytes."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            number = f"{value / size:.2f}".rstrip("0").rstrip(".")
            return f"{number} {unit}"
    return f"{value} bytes"


def _when(value: str) -> str:
    return value.replace("T", " ")[:16]


def _value(key: str, value: Any, names: dict[tuple[str, int], str]) -> str:
    if value is None or value == "":
        return "—"
    if key in _REFS and isinstance(value, int):
        return names.get((_REFS[key], value), f"#{value} (removed)")
    if key in _RATES and isinstance(value, int):
        return format_rate(value)
    if key in _SIZES and isinstance(value, int):
        return size_text(value)
    if key == "burst_time" and isinstance(value, int):
        return f"{value} s"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key.endswith("_at") and isinstance(value, str):
        return _when(value)
    return str(value)


def _label(key: str) -> str:
    if key == "portal_password_hash":
        return "portal password"
    return (key[:-3] if key in _REFS else key).replace("_", " ")


def _changes(a: AuditLog, names: dict[tuple[str, int], str]) -> tuple[Change, ...]:
    before, after = a.before or {}, a.after or {}
    if a.action == "delete":  # why (when it was said), then what it was
        why = (Change("reason", "", str(after["reason"])),) if after.get("reason") else ()
        return why + tuple(
            Change(_label(k), "", _value(k, v, names))
            for k, v in before.items()
            if k not in _HIDDEN and v is not None and v != ""
        )
    if before and after:  # an update: what differs
        keys = [k for k in after if k not in _HIDDEN and before.get(k) != after[k]]
        return tuple(
            Change(_label(k), _value(k, before.get(k), names), _value(k, after[k], names))
            for k in keys
        )
    shown = after or before  # a creation (what it was made with) or a removal (what it was)
    return tuple(
        Change(_label(k), "", _value(k, v, names))
        for k, v in shown.items()
        if k not in _HIDDEN and v is not None and v != ""
    )


def actor_label(actor: str, names: dict[tuple[str, int], str]) -> str:
    """One spelling per actor: "admin (cli)", "root (admin)", "resA (reseller)",
    "alice (customer)", "system (invoices)"; old rows read the same ("cli")."""
    kind, _, rest = actor.partition(":")
    if actor in CLI:
        return "admin (cli)"
    if kind == "admin" and rest:
        return f"{rest} (admin)"
    if kind in ("reseller", "customer") and rest.isdigit():
        table = "resellers" if kind == "reseller" else "customers"
        return f"{names.get((table, int(rest)), '#' + rest + ' (removed)')} ({kind})"
    if kind == "system" and rest:
        return f"system ({rest})"
    return actor


def _what(a: AuditLog, names: dict[tuple[str, int], str]) -> str:
    kind = _SINGULAR.get(a.entity, a.entity)
    snap = a.before or a.after or {}
    name = snap.get("name") or snap.get("username")
    if a.entity_id is not None:
        name = names.get((a.entity, a.entity_id), name)
    if a.entity == "reseller_packages":
        pkg = names.get(("packages", snap.get("package_id") or -1))
        seller = names.get(("resellers", snap.get("reseller_id") or -1))
        name = f"{pkg} for {seller}" if pkg and seller else name
    if name:
        return f"{kind} {name}"
    return f"{kind} #{a.entity_id}" if a.entity_id is not None else kind


def shown(session: Session, rows: Sequence[AuditLog]) -> list[Entry]:
    """The rows as the panel shows them (names looked up once per table for the page)."""
    wanted: dict[str, set[int]] = {}

    def want(table: str, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            wanted.setdefault(table, set()).add(value)

    for a in rows:
        if a.entity_id is not None:
            want(a.entity, a.entity_id)
        kind, _, rest = a.actor.partition(":")
        if kind in ("reseller", "customer") and rest.isdigit():
            want(f"{kind}s", int(rest))
        for snap in (a.before or {}, a.after or {}):
            for key, table in _REFS.items():
                want(table, snap.get(key))
    names = _names(session, wanted)
    return [
        Entry(
            id=a.id,
            at=a.at.isoformat(timespec="seconds"),
            actor=actor_label(a.actor, names),
            action=a.action,
            what=_what(a, names),
            changes=_changes(a, names),
        )
        for a in rows
    ]


def changes_text(changes: Iterable[Change]) -> str:
    """The changes on one line (the CSV export's column)."""
    return "; ".join(
        f"{c.field}: {c.old} → {c.new}" if c.old else f"{c.field}={c.new}" for c in changes
    )
