"""Packages: the pricing layer (name, customer's and operator's price, visibility)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import effects, validation
from provisioner.errors import Conflict, ValidationError
from provisioner.models import Customer, MasterPackage, Package, ResellerPackage, Visibility
from provisioner.registry.common import (
    audit,
    get_by_name,
    refuse_lookalike,
    reject_unknown,
    snapshot,
)
from provisioner.registry.customers import reassign_prefixes
from provisioner.schemas import PACKAGE_FIELDS


def _apply_fields(session: Session, p: Package, data: dict[str, Any]) -> list[str]:
    if "name" in data or p.name is None:
        p.name = validation.display_name("name", data.get("name"))
        refuse_lookalike(session, Package, p, "package")
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
    """A new package; returns it with warnings (e.g. an operator price above the customer's)."""
    reject_unknown(data, PACKAGE_FIELDS, "package")
    p = Package(visibility=Visibility.private)
    with session.no_autoflush:
        warnings = _apply_fields(session, p, data)
    session.add(p)
    session.flush()
    audit(session, actor, "create", p, None)
    return p, warnings


def update_package(
    session: Session, actor: str, ref: str, data: dict[str, Any]
) -> tuple[Package, list[str]]:
    """Change a package; a new master package re-provisions its customers."""
    reject_unknown(data, PACKAGE_FIELDS, "package")
    p = get_by_name(session, Package, ref)
    before = snapshot(p)
    users = list(session.scalars(select(Customer).where(Customer.package_id == p.id)))
    old_type = p.master_package.customer_type
    states = [effects.customer_state(c) for c in users]
    with session.no_autoflush:
        warnings = _apply_fields(session, p, data)
    if p.master_package.customer_type != old_type and users:
        raise Conflict(
            "the new master package has another customer type than this package's customers",
            field="master_package",
        )
    session.flush()
    audit(session, actor, "update", p, before)
    # Its customers see a new master or name; a price change alone changes nothing of theirs.
    pairs = zip(states, [effects.customer_state(c) for c in users], strict=True)
    effects.customers_changed(session, [(b, a) for b, a in pairs if b != a])
    effects.prefixes_changed(session, reassign_prefixes(session, users))
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
