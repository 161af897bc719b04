"""The registry service layer: one place for the rules, shared by the CLI and the API.

Every write validates first, then changes the registry, its audit row, the RADIUS rows
and the router work queue in the caller's transaction; helpers flush, never commit.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner import radius_store, sessions, validation
from provisioner.config import Settings, get_settings
from provisioner.errors import Conflict, NotFound, ValidationError
from provisioner.models import (
    AuditLog,
    Billing,
    Customer,
    CustomerStatus,
    CustomerType,
    LedgerEntry,
    MasterPackage,
    Outbox,
    Package,
    RechargeCard,
    Reseller,
    ResellerPackage,
    Router,
    RouterMode,
    StaticAddress,
    Visibility,
    utcnow,
)
from provisioner.state import master_spec, options

SECRET_FIELDS = {"password", "radius_secret"}

MASTER_FIELDS = [
    "name", "customer_type", "billing", "duration_days", "rate_down", "rate_up", "burst_down",
    "burst_up", "burst_threshold_down", "burst_threshold_up", "burst_time", "priority",
    "min_down", "min_up", "volume_cap", "pool_name", "pool_ranges", "profile_name",
    "local_address", "shared_users",
]  # fmt: skip
PACKAGE_FIELDS = ["name", "master_package", "customer_price", "operator_price", "visibility"]
ROUTER_FIELDS = [
    "name", "host", "api_port", "api_tls", "username", "password", "radius_secret",
    "customer_types", "mode", "coa_port", "enabled",
]  # fmt: skip
CUSTOMER_FIELDS = [
    "username", "password", "customer_type", "router", "package", "reseller", "static_ip",
    "mac_address", "status", "expires_at",
]  # fmt: skip


def snapshot(obj: Any) -> dict[str, Any]:
    """A row as JSON-able data for the audit log, credentials redacted."""
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        v = getattr(obj, col.key)
        if col.key in SECRET_FIELDS:
            v = "(redacted)"
        elif isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, Decimal):
            v = str(v)
        elif hasattr(v, "value"):
            v = v.value
        out[col.key] = v
    return out


def audit(
    session: Session, actor: str, action: str, obj: Any, before: dict[str, Any] | None
) -> None:
    after = None if action == "delete" else snapshot(obj)
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            entity=obj.__tablename__,
            entity_id=obj.id,
            before=before,
            after=after,
        )
    )


def _unknown(data: dict[str, Any], allowed: list[str], entity: str) -> None:
    for key in data:
        if key in ("customer_type", "billing") and entity == "package":
            raise ValidationError(
                "is inherited from the master package and cannot be set on a package", field=key
            )
        if key not in allowed:
            raise ValidationError(f"unknown field for a {entity}", field=key)


def queue_router_sync(session: Session, router_ids: set[int], settings: Settings) -> None:
    """Ask for a sync of these routers soon; edits within the debounce window share one."""
    if not router_ids:
        return
    due = utcnow() + timedelta(seconds=settings.sync_debounce_seconds)
    pending = set(
        session.scalars(
            select(Outbox.router_id).where(
                Outbox.kind == "sync_router",
                Outbox.status == "pending",
                Outbox.router_id.in_(router_ids),
            )
        )
    )
    for rid in sorted(router_ids - pending):
        session.add(Outbox(kind="sync_router", router_id=rid, payload={}, next_attempt_at=due))
    session.flush()


def routers_serving(session: Session, customer_type: str) -> set[int]:
    return {r.id for r in session.scalars(select(Router)) if r.serves(customer_type)}


# ---- lookups ---------------------------------------------------------------------------


def get_by_name(session: Session, model: Any, name: str, field: str = "name") -> Any:
    col = getattr(model, field)
    obj = session.scalar(select(model).where(col == str(name)))
    if obj is None and str(name).isdigit():
        obj = session.get(model, int(name))
    if obj is None:
        raise NotFound(f"no {model.__tablename__.rstrip('s').replace('_', ' ')} named {name!r}")
    return obj


# ---- master packages -------------------------------------------------------------------


def _check_master(session: Session, m: MasterPackage) -> None:
    validation.name("name", m.name)
    validation.name("profile_name", m.profile_name)
    try:
        CustomerType(m.customer_type)
    except ValueError as exc:
        raise ValidationError(
            "must be one of pppoe, hotspot, static, other", field="customer_type"
        ) from exc
    try:
        Billing(m.billing)
    except ValueError as exc:
        raise ValidationError("must be daily or monthly", field="billing") from exc
    validation.positive_int("duration_days", m.duration_days)
    validation.positive_int("shared_users", m.shared_users)
    if m.local_address:
        m.local_address = validation.ipv4("local_address", m.local_address)
    if bool(m.pool_name) != bool(m.pool_ranges):
        field = "pool_ranges" if m.pool_name else "pool_name"
        raise ValidationError("a pool needs both a name and ranges", field=field)
    if m.customer_type == CustomerType.static and not m.pool_name:
        raise ValidationError(
            "a static IP package needs a pool to allocate from", field="pool_name"
        )
    if m.pool_name:
        validation.name("pool_name", m.pool_name)
        mine = validation.ranges("pool_ranges", m.pool_ranges)
        m.pool_ranges = ",".join(p.strip() for p in str(m.pool_ranges).split(","))
        for other in session.scalars(
            select(MasterPackage).where(
                MasterPackage.id != m.id, MasterPackage.pool_name.is_not(None)
            )
        ):
            if other.pool_name == m.pool_name:
                if other.pool_ranges != m.pool_ranges:
                    raise ValidationError(
                        f"pool {m.pool_name!r} is already defined by master package "
                        f"{other.name!r} with ranges {other.pool_ranges}; a shared pool must "
                        "have the same ranges",
                        field="pool_ranges",
                    )
            elif validation.overlap(mine, validation.ranges("pool_ranges", other.pool_ranges)):
                raise ValidationError(
                    f"overlaps pool {other.pool_name!r} ({other.pool_ranges}) of master package "
                    f"{other.name!r}",
                    field="pool_ranges",
                )
    for field in ("name", "profile_name"):
        clash = session.scalar(
            select(MasterPackage).where(
                getattr(MasterPackage, field) == getattr(m, field), MasterPackage.id != m.id
            )
        )
        if clash is not None:
            raise Conflict(
                f"{getattr(m, field)!r} is already used by master package {clash.name!r}",
                field=field,
            )
    if m.profile_name in ("default", "default-encryption", get_settings().expired_group):
        raise ValidationError(f"{m.profile_name!r} is reserved", field="profile_name")


def _apply_master_fields(m: MasterPackage, data: dict[str, Any]) -> None:
    spec = {f: data.get(f, getattr(m, f, None)) for f in MASTER_FIELDS}
    rate = validation.rate_limit(spec)
    m.name = str(spec["name"] or "").strip()
    m.customer_type = spec["customer_type"]
    m.billing = spec["billing"] or "monthly"
    m.duration_days = spec["duration_days"] if spec["duration_days"] is not None else 30
    m.rate_down, m.rate_up = rate.down, rate.up
    m.burst_down, m.burst_up = rate.burst_down, rate.burst_up
    m.burst_threshold_down, m.burst_threshold_up = rate.threshold_down, rate.threshold_up
    m.burst_time, m.priority = rate.burst_time, rate.priority
    m.min_down, m.min_up = rate.min_down, rate.min_up
    m.volume_cap = validation.volume("volume_cap", spec["volume_cap"])
    m.pool_name = spec["pool_name"] or None
    m.pool_ranges = spec["pool_ranges"] or None
    m.profile_name = str(spec["profile_name"] or m.name).strip()
    m.local_address = spec["local_address"] or None
    m.shared_users = spec["shared_users"] if spec["shared_users"] is not None else 1


def create_master_package(session: Session, actor: str, data: dict[str, Any]) -> MasterPackage:
    _unknown(data, MASTER_FIELDS, "master package")
    m = MasterPackage()
    _apply_master_fields(m, data)
    _check_master(session, m)
    session.add(m)
    session.flush()
    audit(session, actor, "create", m, None)
    s = get_settings()
    radius_store.sync_groups(session, options(s), [m.profile_name])
    queue_router_sync(session, routers_serving(session, m.customer_type), s)
    return m


def customers_of_master(session: Session, m: MasterPackage) -> list[Customer]:
    return list(
        session.scalars(
            select(Customer)
            .join(Package, Customer.package_id == Package.id)
            .where(Package.master_package_id == m.id)
        )
    )


def update_master_package(
    session: Session, actor: str, ref: str, data: dict[str, Any]
) -> MasterPackage:
    _unknown(data, MASTER_FIELDS, "master package")
    m = get_by_name(session, MasterPackage, ref)
    before = snapshot(m)
    old_profile, old_type = m.profile_name, str(m.customer_type)
    old_rate = master_spec(m).rate.render()
    _apply_master_fields(m, data)
    if str(m.customer_type) != old_type and customers_of_master(session, m):
        raise Conflict(
            "cannot change the customer type while customers use this package",
            field="customer_type",
        )
    _check_master(session, m)
    session.flush()
    audit(session, actor, "update", m, before)
    s = get_settings()
    radius_store.sync_groups(session, options(s), {old_profile, m.profile_name})
    if old_profile != m.profile_name:
        radius_store.sync_users(
            session, options(s), [c.username for c in customers_of_master(session, m)]
        )
    queue_router_sync(
        session, routers_serving(session, old_type) | routers_serving(session, m.customer_type), s
    )
    if master_spec(m).rate.render() != old_rate:
        _push_rate(session, customers_of_master(session, m), old_rate)
    return m


def _push_rate(session: Session, users: list[Customer], old_rate: str) -> None:
    """Online customers get their package's new speed by CoA at once; its other changes
    (pool, cap) take effect at their next login rather than dropping every session."""
    pairs = []
    for c in users:
        after = sessions.terms_of(c)
        pairs.append((replace(after, rate=old_rate), after))
    sessions.queue(session, pairs)


def delete_master_package(session: Session, actor: str, ref: str) -> None:
    m = get_by_name(session, MasterPackage, ref)
    packages = list(session.scalars(select(Package).where(Package.master_package_id == m.id)))
    if packages:
        users = [c.username for c in customers_of_master(session, m)]
        detail = f"packages {', '.join(p.name for p in packages)}"
        if users:
            shown = ", ".join(users[:20]) + (
                f" and {len(users) - 20} more" if len(users) > 20 else ""
            )
            detail += f"; customers {shown}"
        raise Conflict(f"master package {m.name!r} is still used by {detail}")
    before = snapshot(m)
    audit(session, actor, "delete", m, before)
    session.delete(m)
    session.flush()
    s = get_settings()
    radius_store.sync_groups(session, options(s), [m.profile_name])
    queue_router_sync(session, routers_serving(session, m.customer_type), s)


# ---- packages --------------------------------------------------------------------------


def _apply_package_fields(session: Session, p: Package, data: dict[str, Any]) -> list[str]:
    with session.no_autoflush:
        return _package_fields(session, p, data)


def _package_fields(session: Session, p: Package, data: dict[str, Any]) -> list[str]:
    if "name" in data or p.name is None:
        p.name = validation.display_name("name", data.get("name"))
    if "master_package" in data:
        p.master_package = get_by_name(session, MasterPackage, data["master_package"])
    elif p.master_package_id is None:
        raise ValidationError("is required", field="master_package")
    if "customer_price" in data or p.customer_price is None:
        p.customer_price = validation.price("customer_price", data.get("customer_price"))
    if "operator_price" in data or p.operator_price is None:
        p.operator_price = validation.price("operator_price", data.get("operator_price"))
    if "visibility" in data:
        try:
            p.visibility = Visibility(data["visibility"])
        except ValueError as exc:
            raise ValidationError("must be public or private", field="visibility") from exc
    clash = session.scalar(select(Package).where(Package.name == p.name, Package.id != p.id))
    if clash is not None:
        raise Conflict(f"a package named {p.name!r} exists", field="name")
    warnings = []
    if p.operator_price > p.customer_price:
        warnings.append(
            f"operator_price ({p.operator_price}) exceeds customer_price ({p.customer_price}): "
            "resellers would sell at a loss"
        )
    return warnings


def create_package(session: Session, actor: str, data: dict[str, Any]) -> tuple[Package, list[str]]:
    _unknown(data, PACKAGE_FIELDS, "package")
    p = Package(visibility=Visibility.private)
    warnings = _apply_package_fields(session, p, data)
    session.add(p)
    session.flush()
    audit(session, actor, "create", p, None)
    return p, warnings


def update_package(
    session: Session, actor: str, ref: str, data: dict[str, Any]
) -> tuple[Package, list[str]]:
    _unknown(data, PACKAGE_FIELDS, "package")
    p = get_by_name(session, Package, ref)
    before = snapshot(p)
    old_master = p.master_package
    old_rate = master_spec(old_master).rate.render()
    warnings = _apply_package_fields(session, p, data)
    users = list(session.scalars(select(Customer).where(Customer.package_id == p.id)))
    if p.master_package.customer_type != old_master.customer_type and users:
        raise Conflict(
            "the new master package has another customer type than this package's customers",
            field="master_package",
        )
    session.flush()
    audit(session, actor, "update", p, before)
    if old_master.id != p.master_package_id:
        s = get_settings()
        radius_store.sync_users(session, options(s), [c.username for c in users])
        queue_router_sync(session, {c.router_id for c in users if c.router_id}, s)
        _push_rate(session, users, old_rate)
    return p, warnings


def delete_package(session: Session, actor: str, ref: str) -> None:
    p = get_by_name(session, Package, ref)
    users = list(session.scalars(select(Customer.username).where(Customer.package_id == p.id)))
    if users:
        raise Conflict(f"package {p.name!r} is still used by customers {', '.join(users[:20])}")
    audit(session, actor, "delete", p, snapshot(p))
    for a in session.scalars(select(ResellerPackage).where(ResellerPackage.package_id == p.id)):
        session.delete(a)
    session.delete(p)
    session.flush()


# ---- resellers -------------------------------------------------------------------------


def create_reseller(session: Session, actor: str, data: dict[str, Any]) -> Reseller:
    _unknown(data, ["name", "contact"], "reseller")
    r = Reseller(
        name=validation.display_name("name", data.get("name")),
        contact=str(data.get("contact") or ""),
    )
    if session.scalar(select(Reseller).where(Reseller.name == r.name)):
        raise Conflict(f"a reseller named {r.name!r} exists", field="name")
    session.add(r)
    session.flush()
    audit(session, actor, "create", r, None)
    return r


def update_reseller(session: Session, actor: str, ref: str, data: dict[str, Any]) -> Reseller:
    _unknown(data, ["name", "contact"], "reseller")
    r = get_by_name(session, Reseller, ref)
    before = snapshot(r)
    if "name" in data:
        r.name = validation.display_name("name", data["name"])
        if session.scalar(select(Reseller).where(Reseller.name == r.name, Reseller.id != r.id)):
            raise Conflict(f"a reseller named {r.name!r} exists", field="name")
    if "contact" in data:
        r.contact = str(data["contact"] or "")
    session.flush()
    audit(session, actor, "update", r, before)
    return r


def delete_reseller(session: Session, actor: str, ref: str) -> None:
    r = get_by_name(session, Reseller, ref)
    users = list(session.scalars(select(Customer.username).where(Customer.reseller_id == r.id)))
    if users:
        raise Conflict(f"reseller {r.name!r} still has customers {', '.join(users[:20])}")
    history = _money_history(session, "reseller", r.id)
    if history:
        raise Conflict(
            f"reseller {r.name!r} has {history} ledger entries, which are kept; unassign "
            "its packages instead"
        )
    audit(session, actor, "delete", r, snapshot(r))
    session.delete(r)
    session.flush()


def _money_history(session: Session, kind: str, id_: int) -> int:
    """Ledger entries of an account. An account with any is never deleted: a new row
    reusing the id (SQLite reuses the highest) would inherit its balance."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.account == f"{kind}:{id_}")
        )
        or 0
    )


def assign_package(
    session: Session, actor: str, reseller: str, package: str, price: Any = None
) -> ResellerPackage:
    r = get_by_name(session, Reseller, reseller)
    p = get_by_name(session, Package, package)
    a = session.scalar(
        select(ResellerPackage).where(
            ResellerPackage.reseller_id == r.id, ResellerPackage.package_id == p.id
        )
    )
    before = snapshot(a) if a else None
    if a is None:
        a = ResellerPackage(reseller=r, package=p)
        session.add(a)
    a.price = None if price in (None, "") else validation.price("price", price)
    session.flush()
    audit(session, actor, "update" if before else "create", a, before)
    return a


def unassign_package(session: Session, actor: str, reseller: str, package: str) -> None:
    r = get_by_name(session, Reseller, reseller)
    p = get_by_name(session, Package, package)
    a = session.scalar(
        select(ResellerPackage).where(
            ResellerPackage.reseller_id == r.id, ResellerPackage.package_id == p.id
        )
    )
    if a is None:
        raise NotFound(f"package {p.name!r} is not assigned to reseller {r.name!r}")
    audit(session, actor, "delete", a, snapshot(a))
    session.delete(a)
    session.flush()


def reseller_price(a: ResellerPackage) -> Decimal:
    return a.price if a.price is not None else a.package.operator_price


# ---- routers ---------------------------------------------------------------------------


def _apply_router_fields(session: Session, r: Router, data: dict[str, Any]) -> None:
    if "name" in data or r.name is None:
        r.name = validation.name("name", data.get("name"))
    if "host" in data or r.host is None:
        host = str(data.get("host") or "").strip()
        if not host:
            raise ValidationError("must not be empty", field="host")
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError as exc:
            raise ValidationError(
                f"{host!r} is not an IP address (the nas table and CoA need the address)",
                field="host",
            ) from exc
        r.host = host
    for f, default in (("api_port", 8728), ("coa_port", 3799)):
        if f in data or getattr(r, f) is None:
            v = validation.positive_int(f, data.get(f, default))
            if v > 65535:
                raise ValidationError("must be a port number (1-65535)", field=f)
            setattr(r, f, v)
    for f in ("username", "password", "radius_secret"):
        if f in data or getattr(r, f, None) is None:
            v = str(data.get(f) or "")
            if not v and f != "password":
                raise ValidationError("must not be empty", field=f)
            setattr(r, f, v)
    if "customer_types" in data or r.customer_types is None:
        raw = data.get("customer_types") or "pppoe,hotspot,static"
        types = [t.strip() for t in (raw.split(",") if isinstance(raw, str) else raw) if t.strip()]
        for t in types:
            if t not in ("pppoe", "hotspot", "static"):
                raise ValidationError(
                    f"{t!r} is not a router customer type (pppoe, hotspot, static)",
                    field="customer_types",
                )
        r.customer_types = ",".join(dict.fromkeys(types))
    if "mode" in data or r.mode is None:
        try:
            r.mode = RouterMode(data.get("mode") or "radius")
        except ValueError as exc:
            raise ValidationError("must be radius or local", field="mode") from exc
    for f in ("api_tls", "enabled"):
        if f in data:
            setattr(r, f, bool(data[f]))
    for f in ("name", "host"):
        clash = session.scalar(
            select(Router).where(getattr(Router, f) == getattr(r, f), Router.id != r.id)
        )
        if clash is not None:
            raise Conflict(f"{getattr(r, f)!r} is already used by router {clash.name!r}", field=f)


def create_router(session: Session, actor: str, data: dict[str, Any]) -> Router:
    _unknown(data, ROUTER_FIELDS, "router")
    r = Router(api_tls=False, enabled=True)
    _apply_router_fields(session, r, data)
    session.add(r)
    session.flush()
    audit(session, actor, "create", r, None)
    s = get_settings()
    radius_store.sync_routers(session, options(s), [r.host])
    queue_router_sync(session, {r.id}, s)
    return r


def update_router(session: Session, actor: str, ref: str, data: dict[str, Any]) -> Router:
    _unknown(data, ROUTER_FIELDS, "router")
    r = get_by_name(session, Router, ref)
    before = snapshot(r)
    old_host = r.host
    _apply_router_fields(session, r, data)
    session.flush()
    audit(session, actor, "update", r, before)
    s = get_settings()
    radius_store.sync_routers(session, options(s), {old_host, r.host})
    queue_router_sync(session, {r.id}, s)
    return r


def delete_router(session: Session, actor: str, ref: str) -> None:
    r = get_by_name(session, Router, ref)
    users = list(session.scalars(select(Customer.username).where(Customer.router_id == r.id)))
    if users:
        raise Conflict(f"router {r.name!r} still serves customers {', '.join(users[:20])}")
    audit(session, actor, "delete", r, snapshot(r))
    host = r.host
    session.delete(r)
    session.flush()
    radius_store.sync_routers(session, options(get_settings()), [host])


# ---- customers -------------------------------------------------------------------------


def allocate_address(session: Session, c: Customer, m: MasterPackage) -> str:
    """The lowest free address of the package's pool; the unique row makes it exclusive."""
    used = set(session.scalars(select(StaticAddress.address)))
    used |= {ip for ip in session.scalars(select(Customer.static_ip)) if ip}
    for a, b in validation.ranges("pool_ranges", m.pool_ranges):
        for n in range(a, b + 1):
            ip = str(ipaddress.IPv4Address(n))
            if ip not in used:
                return ip
    raise Conflict(f"pool {m.pool_name!r} of master package {m.name!r} has no free address")


def _apply_customer_fields(session: Session, c: Customer, data: dict[str, Any]) -> None:
    with session.no_autoflush:
        _customer_fields(session, c, data)


def _customer_fields(session: Session, c: Customer, data: dict[str, Any]) -> None:
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
        c.router = get_by_name(session, Router, data["router"]) if data["router"] else None
    if "package" in data:
        c.package = get_by_name(session, Package, data["package"]) if data["package"] else None
    if "reseller" in data:
        c.reseller = get_by_name(session, Reseller, data["reseller"]) if data["reseller"] else None
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
        clash = session.scalar(
            select(Customer).where(Customer.static_ip == c.static_ip, Customer.id != c.id)
        )
        if clash is not None:
            raise Conflict(
                f"{c.static_ip} is already used by customer {clash.username!r}", field="static_ip"
            )
    if c.mac_address:
        clash = session.scalar(
            select(Customer).where(Customer.mac_address == c.mac_address, Customer.id != c.id)
        )
        if clash is not None:
            raise Conflict(
                f"{c.mac_address} is already bound to customer {clash.username!r}",
                field="mac_address",
            )
    clash = session.scalar(
        select(Customer).where(Customer.username == c.username, Customer.id != c.id)
    )
    if clash is not None:
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


def _record_address(session: Session, c: Customer) -> None:
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


def needs_router_sync(router: Router | None, customer_type: str) -> bool:
    """Whether a customer's change touches its router: local mode keeps per-customer
    secrets/users there, and static customers have a queue (and an address-list entry)."""
    return router is not None and (router.mode == RouterMode.local or customer_type == "static")


def _customer_routers(
    session: Session, router_ids: set[int | None], customer_type: str
) -> set[int]:
    out = set()
    for rid in router_ids:
        if rid is not None and needs_router_sync(session.get(Router, rid), customer_type):
            out.add(rid)
    return out


def create_customer(session: Session, actor: str, data: dict[str, Any]) -> Customer:
    _unknown(data, CUSTOMER_FIELDS, "customer")
    c = Customer(status=CustomerStatus.new)
    _apply_customer_fields(session, c, data)
    session.add(c)
    session.flush()
    _record_address(session, c)
    audit(session, actor, "create", c, None)
    s = get_settings()
    radius_store.sync_users(session, options(s), [c.username])
    queue_router_sync(session, _customer_routers(session, {c.router_id}, str(c.customer_type)), s)
    return c


def update_customer(session: Session, actor: str, ref: str, data: dict[str, Any]) -> Customer:
    _unknown(data, CUSTOMER_FIELDS, "customer")
    c = get_by_name(session, Customer, ref, "username")
    before = snapshot(c)
    terms = sessions.terms_of(c)
    old_user, old_router, old_type = c.username, c.router_id, str(c.customer_type)
    _apply_customer_fields(session, c, data)
    session.flush()
    _record_address(session, c)
    audit(session, actor, "update", c, before)
    s = get_settings()
    radius_store.sync_users(session, options(s), {old_user, c.username})
    routers = _customer_routers(session, {old_router}, old_type)
    routers |= _customer_routers(session, {c.router_id}, str(c.customer_type))
    queue_router_sync(session, routers, s)
    sessions.queue(session, [(terms, sessions.terms_of(c))])
    return c


def delete_customer(session: Session, actor: str, ref: str) -> None:
    c = get_by_name(session, Customer, ref, "username")
    from provisioner.models import Activation

    history = _money_history(session, "customer", c.id)
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
    audit(session, actor, "delete", c, snapshot(c))
    sessions.queue(session, [(sessions.terms_of(c), None)])
    username, ctype = c.username, str(c.customer_type)
    routers = _customer_routers(session, {c.router_id}, ctype)
    session.delete(c)
    session.flush()
    s = get_settings()
    radius_store.sync_users(session, options(s), [username])
    queue_router_sync(session, routers, s)


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)
