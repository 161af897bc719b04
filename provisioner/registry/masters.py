"""Master packages: the technical spec (type, billing, rates, cap, pool, profile)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from provisioner import effects, validation
from provisioner.errors import Conflict, ValidationError
from provisioner.models import Billing, Customer, CustomerType, MasterPackage, Package
from provisioner.registry.common import audit, get_by_name, reject_unknown, snapshot
from provisioner.registry.customers import reassign_prefixes
from provisioner.schemas import MASTER_FIELDS
from provisioner.state import master_spec


def _check(session: Session, m: MasterPackage) -> None:
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
    _check_ipv6(session, m)
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
    expired = effects.settings_of(session).expired_group
    if m.profile_name in ("default", "default-encryption", expired):
        raise ValidationError(f"{m.profile_name!r} is reserved", field="profile_name")
    _check_fup(m)
    _check_router_profile(session, m)


IPV6_FIELDS = ("ipv6_pool_name", "ipv6_prefix", "ipv6_prefix_length")


def _check_ipv6(session: Session, m: MasterPackage) -> None:
    """An IPv6 pool: all three fields or none; a prefix without host bits; a customer
    prefix no shorter than the pool's and at most /64; no overlap with another pool (a
    pool shared by name must be defined alike)."""
    given = [f for f in IPV6_FIELDS if getattr(m, f) is not None]
    if not given:
        if m.framed_ipv6_prefix:
            raise ValidationError("needs an IPv6 pool (ipv6_prefix)", field="framed_ipv6_prefix")
        return
    if len(given) < len(IPV6_FIELDS):
        missing = next(f for f in IPV6_FIELDS if f not in given)
        raise ValidationError(
            "an IPv6 pool needs a name, a prefix and a prefix length", field=missing
        )
    if m.customer_type != CustomerType.pppoe:
        raise ValidationError(
            "IPv6 prefixes are delegated to PPPoE customers only", field="ipv6_prefix"
        )
    validation.name("ipv6_pool_name", m.ipv6_pool_name)
    net = validation.ipv6_prefix("ipv6_prefix", m.ipv6_prefix)
    m.ipv6_prefix = str(net)
    length = validation.positive_int("ipv6_prefix_length", m.ipv6_prefix_length, maximum=64)
    if length < net.prefixlen:
        raise ValidationError(
            f"must be at least the pool's own length ({net.prefixlen})",
            field="ipv6_prefix_length",
        )
    m.ipv6_prefix_length = length
    for other in session.scalars(
        select(MasterPackage).where(
            MasterPackage.id != m.id, MasterPackage.ipv6_prefix.is_not(None)
        )
    ):
        theirs = f"{other.ipv6_prefix} (/{other.ipv6_prefix_length} each)"
        if other.ipv6_pool_name == m.ipv6_pool_name:
            if (other.ipv6_prefix, other.ipv6_prefix_length) != (m.ipv6_prefix, length):
                raise ValidationError(
                    f"IPv6 pool {m.ipv6_pool_name!r} is already defined by master package "
                    f"{other.name!r} as {theirs}; a shared pool must be defined alike",
                    field="ipv6_prefix",
                )
        elif net.overlaps(validation.ipv6_prefix("ipv6_prefix", other.ipv6_prefix)):
            raise ValidationError(
                f"overlaps IPv6 pool {other.ipv6_pool_name!r} ({theirs}) of master package "
                f"{other.name!r}",
                field="ipv6_prefix",
            )


def _check_fup(m: MasterPackage) -> None:
    """Fair usage: a threshold and both reduced rates, or none of them; PPPoE and
    hotspot only (RADIUS and CoA carry the rate)."""
    given = [f for f in ("fup_threshold", "fup_down", "fup_up") if getattr(m, f)]
    if not given:
        return
    if len(given) < 3:
        missing = next(f for f in ("fup_threshold", "fup_down", "fup_up") if f not in given)
        raise ValidationError("fair usage needs a threshold and both reduced rates", field=missing)
    if m.customer_type not in (CustomerType.pppoe, CustomerType.hotspot):
        raise ValidationError("fair usage is for PPPoE and hotspot packages", field="fup_threshold")


SHARED = ("customer_type", "pool_name", "local_address", "shared_users")


def _check_router_profile(session: Session, m: MasterPackage) -> None:
    """Several master packages may name one router profile (each keeps its own RADIUS
    group and rate) when what the profile carries on the router agrees."""
    profile = m.router_profile or m.profile_name
    validation.name("router_profile", profile)
    expired = effects.settings_of(session).expired_group
    if m.router_profile in ("default", "default-encryption", expired):
        raise ValidationError(f"{m.router_profile!r} is reserved", field="router_profile")
    for other in session.scalars(
        select(MasterPackage).where(
            MasterPackage.id != m.id,
            or_(MasterPackage.router_profile == profile, MasterPackage.profile_name == profile),
        )
    ):
        if (other.router_profile or other.profile_name) != profile:
            continue
        for f in SHARED:
            if str(getattr(other, f) or "") != str(getattr(m, f) or ""):
                raise ValidationError(
                    f"router profile {profile!r} is shared with master package {other.name!r}, "
                    f"whose {f} is {getattr(other, f)!r}; a shared profile must agree",
                    field="router_profile",
                )


def _apply_fields(m: MasterPackage, data: dict[str, Any]) -> None:
    spec = {f: data.get(f, getattr(m, f, None)) for f in MASTER_FIELDS}
    rate = validation.rate_limit(spec)
    m.name = str(spec["name"] or "").strip()
    # Before anything is looked up (an update compares it with the customers' type).
    m.customer_type = validation.choice("customer_type", spec["customer_type"], CustomerType)
    m.billing = spec["billing"] or "monthly"
    m.duration_days = spec["duration_days"] if spec["duration_days"] is not None else 30
    m.rate_down, m.rate_up = rate.down, rate.up
    m.burst_down, m.burst_up = rate.burst_down, rate.burst_up
    m.burst_threshold_down, m.burst_threshold_up = rate.threshold_down, rate.threshold_up
    m.burst_time, m.priority = rate.burst_time, rate.priority
    m.min_down, m.min_up = rate.min_down, rate.min_up
    m.volume_cap = validation.volume("volume_cap", spec["volume_cap"])
    m.fup_threshold = validation.volume("fup_threshold", spec["fup_threshold"])
    m.fup_down = validation.rate("fup_down", spec["fup_down"], required=False)
    m.fup_up = validation.rate("fup_up", spec["fup_up"], required=False)
    m.router_profile = str(spec["router_profile"] or "").strip() or None
    m.pool_name = spec["pool_name"] or None
    m.pool_ranges = spec["pool_ranges"] or None
    m.profile_name = str(spec["profile_name"] or m.name).strip()
    m.local_address = spec["local_address"] or None
    m.shared_users = spec["shared_users"] if spec["shared_users"] is not None else 1
    m.ipv6_pool_name = spec["ipv6_pool_name"] or None
    m.ipv6_prefix = spec["ipv6_prefix"] or None
    m.ipv6_prefix_length = spec["ipv6_prefix_length"] or None
    framed = spec["framed_ipv6_prefix"]
    m.framed_ipv6_prefix = framed is not None and validation.flag("framed_ipv6_prefix", framed)


def customers_of(session: Session, m: MasterPackage) -> list[Customer]:
    return list(
        session.scalars(
            select(Customer)
            .join(Package, Customer.package_id == Package.id)
            .where(Package.master_package_id == m.id)
        )
    )


def create_master_package(session: Session, actor: str, data: dict[str, Any]) -> MasterPackage:
    reject_unknown(data, MASTER_FIELDS, "master package")
    m = MasterPackage()
    with session.no_autoflush:
        _apply_fields(m, data)
        _check(session, m)
    session.add(m)
    session.flush()
    audit(session, actor, "create", m, None)
    effects.master_changed(session, None, master_spec(m), [])
    return m


def update_master_package(
    session: Session, actor: str, ref: str, data: dict[str, Any]
) -> MasterPackage:
    reject_unknown(data, MASTER_FIELDS, "master package")
    m = get_by_name(session, MasterPackage, ref)
    before, spec = snapshot(m), master_spec(m)
    with session.no_autoflush:  # the clash checks must run before the UPDATE does
        _apply_fields(m, data)
        if str(m.customer_type) != spec.customer_type and customers_of(session, m):
            raise Conflict(
                "cannot change the customer type while customers use this package",
                field="customer_type",
            )
        _check(session, m)
    session.flush()
    audit(session, actor, "update", m, before)
    users = customers_of(session, m)
    effects.master_changed(session, spec, master_spec(m), users)
    moved = reassign_prefixes(session, users)
    if spec.framed_ipv6_prefix != m.framed_ipv6_prefix:
        moved = [c.username for c in users]
    effects.prefixes_changed(session, moved)
    return m


def delete_master_package(session: Session, actor: str, ref: str) -> None:
    m = get_by_name(session, MasterPackage, ref)
    packages = list(session.scalars(select(Package).where(Package.master_package_id == m.id)))
    if packages:
        users = [c.username for c in customers_of(session, m)]
        detail = f"packages {', '.join(p.name for p in packages)}"
        if users:
            shown = ", ".join(users[:20]) + (
                f" and {len(users) - 20} more" if len(users) > 20 else ""
            )
            detail += f"; customers {shown}"
        raise Conflict(f"master package {m.name!r} is still used by {detail}")
    spec = master_spec(m)
    audit(session, actor, "delete", m, snapshot(m))
    session.delete(m)
    session.flush()
    effects.master_changed(session, spec, None, [])
