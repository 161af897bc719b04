"""Routers (NAS): address, API access, the customer types served, RADIUS or local mode."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import effects, validation
from provisioner.errors import Conflict, ValidationError
from provisioner.models import Customer, Router, RouterMode
from provisioner.registry.common import (
    audit,
    get_by_name,
    reject_unknown,
    secrets_of,
    snapshot,
)
from provisioner.schemas import ROUTER_FIELDS
from provisioner.state import router_spec


def _apply_fields(session: Session, r: Router, data: dict[str, Any]) -> None:
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
    reject_unknown(data, ROUTER_FIELDS, "router")
    r = Router(api_tls=False, enabled=True)
    with session.no_autoflush:
        _apply_fields(session, r, data)
    session.add(r)
    session.flush()
    audit(session, actor, "create", r, None)
    effects.router_changed(session, None, router_spec(r))
    return r


def update_router(session: Session, actor: str, ref: str, data: dict[str, Any]) -> Router:
    reject_unknown(data, ROUTER_FIELDS, "router")
    r = get_by_name(session, Router, ref)
    before, spec, old = snapshot(r), router_spec(r), secrets_of(r)
    with session.no_autoflush:  # the clash checks must run before the UPDATE does
        _apply_fields(session, r, data)
    session.flush()
    audit(session, actor, "update", r, before, old)
    effects.router_changed(session, spec, router_spec(r))
    return r


def delete_router(session: Session, actor: str, ref: str, reason: str = "") -> None:
    """Remove a router (refused while it serves customers); ``reason`` is kept in the
    audit log with what the router was."""
    r = get_by_name(session, Router, ref)
    reason = reason.strip()
    validation.text("reason", reason, 500)
    users = list(session.scalars(select(Customer.username).where(Customer.router_id == r.id)))
    if users:
        raise Conflict(f"router {r.name!r} still serves customers {', '.join(users[:20])}")
    spec = router_spec(r)
    audit(session, actor, "delete", r, snapshot(r), reason=reason)
    session.delete(r)
    session.flush()
    effects.router_changed(session, spec, None)
