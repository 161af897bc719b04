"""Registry rows as plain dicts for the CLI's tables/JSON and the API (no credentials)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from provisioner.models import Customer, MasterPackage, Package, Reseller, ResellerPackage, Router
from provisioner.rates import format_rate
from provisioner.state import master_spec


def _money(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def master(m: MasterPackage) -> dict[str, Any]:
    spec = master_spec(m)
    return {
        "id": m.id,
        "name": m.name,
        "customer_type": str(m.customer_type),
        "billing": str(m.billing),
        "duration_days": m.duration_days,
        "rate_down": format_rate(m.rate_down),
        "rate_up": format_rate(m.rate_up),
        "rate_limit": spec.rate.render(),
        "burst_down": format_rate(m.burst_down) if m.burst_down else None,
        "burst_up": format_rate(m.burst_up) if m.burst_up else None,
        "burst_threshold_down": format_rate(m.burst_threshold_down)
        if m.burst_threshold_down
        else None,
        "burst_threshold_up": format_rate(m.burst_threshold_up) if m.burst_threshold_up else None,
        "burst_time": m.burst_time,
        "priority": m.priority,
        "min_down": format_rate(m.min_down) if m.min_down else None,
        "min_up": format_rate(m.min_up) if m.min_up else None,
        "volume_cap": m.volume_cap,
        "pool_name": m.pool_name,
        "pool_ranges": m.pool_ranges,
        "profile_name": m.profile_name,
        "local_address": m.local_address,
        "shared_users": m.shared_users,
    }


def package(p: Package, *, price: Decimal | None = None) -> dict[str, Any]:
    """The seed's columns; ``price`` is a reseller's own operator price when it has one."""
    m = p.master_package
    operator = price if price is not None else p.operator_price
    return {
        "id": p.id,
        "name": p.name,
        "master_package": m.name,
        "customer_price": _money(p.customer_price),
        "operator_price": _money(operator),
        "type": str(m.customer_type),
        "billing": str(m.billing),
        "visibility": str(p.visibility),
        "duration_days": m.duration_days if str(m.billing) == "daily" else None,
        "rate_limit": master(m)["rate_limit"],
    }


def public_package(p: Package) -> dict[str, Any]:
    """What a customer sees: no operator price."""
    m = p.master_package
    return {
        "id": p.id,
        "name": p.name,
        "price": _money(p.customer_price),
        "type": str(m.customer_type),
        "billing": str(m.billing),
        "duration_days": m.duration_days if str(m.billing) == "daily" else None,
        "download": format_rate(m.rate_down),
        "upload": format_rate(m.rate_up),
    }


def reseller(r: Reseller) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "contact": r.contact,
        "packages": [assignment(a) for a in r.assignments],
    }


def assignment(a: ResellerPackage) -> dict[str, Any]:
    return {
        "package": a.package.name,
        "price": _money(a.price),
        "effective_price": _money(a.price if a.price is not None else a.package.operator_price),
    }


def router(r: Router) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "host": r.host,
        "api_port": r.api_port,
        "api_tls": r.api_tls,
        "username": r.username,
        "customer_types": r.customer_types,
        "mode": str(r.mode),
        "coa_port": r.coa_port,
        "enabled": r.enabled,
    }


def customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "username": c.username,
        "customer_type": str(c.customer_type),
        "router": c.router.name if c.router else None,
        "package": c.package.name if c.package else None,
        "reseller": c.reseller.name if c.reseller else None,
        "static_ip": c.static_ip,
        "mac_address": c.mac_address,
        "status": str(c.status),
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        "billing_day": c.billing_day,
    }
