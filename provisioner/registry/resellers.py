"""Resellers: a tree of operators (admin → reseller → sub-reseller → …), each prepaid or
postpaid, each selling the packages its parent gives it at the price its parent sets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access, ledger, validation
from provisioner.auth import Principal, principals_changed
from provisioner.errors import Conflict, Forbidden, NotFound, ValidationError
from provisioner.models import (
    AuditLog,
    Customer,
    OperatorBilling,
    Package,
    Reseller,
    ResellerPackage,
)
from provisioner.refs import lookup, refers_to
from provisioner.registry.common import (
    audit,
    get_by_name,
    money_history,
    refuse_lookalike,
    reject_unknown,
    snapshot,
)
from provisioner.schemas import RESELLER_FIELDS


def _check_name(session: Session, r: Reseller) -> None:
    if session.scalar(select(Reseller).where(Reseller.name == r.name, Reseller.id != r.id)):
        raise Conflict(f"a reseller named {r.name!r} exists", field="name")


OPERATOR_FIELDS = ["parent", "may_have_subresellers", "billing", "credit_limit"]


def _apply_fields(session: Session, r: Reseller, data: dict[str, Any]) -> None:
    if "name" in data or r.name is None:
        # All digits would read as its id in an account key (``reseller:12``).
        r.name = validation.display_name("name", data.get("name"), digits=False)
        _check_name(session, r)
        refuse_lookalike(session, Reseller, r, "reseller")
    if "contact" in data:
        r.contact = str(data["contact"] or "")
    if "parent" in data:
        parent = get_by_name(session, Reseller, data["parent"]) if data["parent"] else None
        if parent is not None and r.id is not None and parent.id in _below(session, r.id):
            raise ValidationError(
                f"{parent.name!r} is {r.name!r} or below it: the tree would be a loop",
                field="parent",
            )
        r.parent_id = parent.id if parent is not None else None
    if "may_have_subresellers" in data:
        r.may_have_subresellers = bool(data["may_have_subresellers"])
    if "billing" in data:
        try:
            r.billing = OperatorBilling(data["billing"] or "prepaid")
        except ValueError as exc:
            raise ValidationError("must be prepaid or postpaid", field="billing") from exc
    if "credit_limit" in data:
        r.credit_limit = validation.price("credit_limit", data["credit_limit"] or "0")
    if r.billing == OperatorBilling.prepaid and r.credit_limit:
        raise ValidationError("a prepaid operator has no credit limit", field="credit_limit")


def _below(session: Session, reseller_id: int) -> set[int]:
    from provisioner.access import subtree

    return set(session.scalars(subtree(reseller_id)))


def _floor(session: Session, r: Reseller) -> None:
    """A postpaid operator may owe up to its limit; a prepaid one nothing."""
    floor = -r.credit_limit if r.billing == OperatorBilling.postpaid else Decimal("0.00")
    ledger.set_floor(session, ledger.account_of("reseller", r.id), floor)


def create_reseller(session: Session, actor: str, data: dict[str, Any]) -> Reseller:
    """A reseller under the admin, or (``parent``) a sub-reseller under another."""
    reject_unknown(data, RESELLER_FIELDS, "reseller")
    r = Reseller(contact="", billing=OperatorBilling.prepaid, credit_limit=Decimal("0.00"))
    with session.no_autoflush:
        _apply_fields(session, r, data)
    session.add(r)
    session.flush()
    _floor(session, r)
    audit(session, actor, "create", r, None)
    return r


def update_reseller(session: Session, actor: str, ref: str, data: dict[str, Any]) -> Reseller:
    reject_unknown(data, RESELLER_FIELDS, "reseller")
    r = get_by_name(session, Reseller, ref)
    before = snapshot(r)
    with session.no_autoflush:  # the clash check must run before the UPDATE does
        _apply_fields(session, r, data)
    session.flush()
    _floor(session, r)
    audit(session, actor, "update", r, before)
    return r


def operator_write(
    session: Session, principal: Principal, data: dict[str, Any], *, current: Reseller | None
) -> dict[str, Any]:
    """A reseller write as this caller may make it (``current``: the one an update changes).

    The admin sets anything. A reseller allowed to have sub-resellers creates them under
    itself and sets their contact, billing, credit limit and whether they may have
    sub-resellers of their own; it cannot move one elsewhere in the tree.
    """
    if principal.role == "admin":
        return data
    principal.require("reseller")
    me = access.own_reseller(session, principal)
    if not me.may_have_subresellers:
        raise Forbidden("you may not have sub-resellers; ask your provider")
    if "parent" in data and not (
        data["parent"] is not None and refers_to(str(data["parent"]), me.name, me.id)
    ):
        raise Forbidden("a sub-reseller stays under you", field="parent")
    if current is not None and current.parent_id != me.id:
        raise NotFound(f"no reseller named {current.name!r}")
    return {**data, "parent": me.name} if current is None else data


def delete_reseller(session: Session, actor: str, ref: str) -> None:
    r = get_by_name(session, Reseller, ref)
    users = list(session.scalars(select(Customer.username).where(Customer.reseller_id == r.id)))
    if users:
        raise Conflict(f"reseller {r.name!r} still has customers {', '.join(users[:20])}")
    history = money_history(session, "reseller", r.id)
    if history:
        raise Conflict(
            f"reseller {r.name!r} has {history} ledger entries, which are kept; unassign "
            "its packages instead"
        )
    audit(session, actor, "delete", r, snapshot(r))
    session.delete(r)
    session.flush()
    principals_changed()  # its tokens stand for nobody now


def _assignment(session: Session, r: Reseller, p: Package) -> ResellerPackage | None:
    return session.scalar(
        select(ResellerPackage).where(
            ResellerPackage.reseller_id == r.id, ResellerPackage.package_id == p.id
        )
    )


def assign_package(
    session: Session,
    actor: str,
    reseller: str,
    package: str,
    price: Any = None,
    customer_price: Any = None,
) -> ResellerPackage:
    """Let a reseller sell a package at ``price`` (what it pays its parent). Under the
    admin, no price means the package's operator price; a sub-reseller is given only a
    package its parent has, and no price means the parent's own (no margin)."""
    r = get_by_name(session, Reseller, reseller)
    p = lookup(session, Package, package)
    if p is None:  # the reseller is there: it is the body that names nothing (not a 404)
        raise ValidationError(f"no package named {package!r}", field="package")
    a = _assignment(session, r, p)
    before = snapshot(a) if a else None
    given = None
    if r.parent_id is not None:
        given = session.scalar(
            select(ResellerPackage).where(
                ResellerPackage.reseller_id == r.parent_id, ResellerPackage.package_id == p.id
            )
        )
        if given is None:
            raise Forbidden(
                f"package {p.name!r} is not in the list of {r.name!r}'s parent", field="package"
            )
    if a is None:
        a = ResellerPackage(reseller=r, package=p)
        session.add(a)
    if price in (None, ""):
        a.price = reseller_price(given) if given is not None else None
    else:
        a.price = validation.price("price", price)
    a.customer_price = (
        None if customer_price in (None, "") else validation.price("customer_price", customer_price)
    )
    session.flush()
    audit(session, actor, "update" if before else "create", a, before)
    return a


def settle(
    session: Session, actor: str, reseller: Reseller, amount: Any, reference: str
) -> Decimal:
    """A payment from an operator to its parent (or the admin): a ledger row that credits
    the operator's account, reducing what a postpaid one owes (or topping up a prepaid
    one). Audited. Returns the new balance."""
    value = validation.price("amount", amount)
    if value == 0:
        raise ValidationError("must be greater than 0", field="amount")
    account = ledger.account_of("reseller", reseller.id)
    new = ledger.credit(
        session, account, value, "settlement", reference=str(reference or "")[:255], actor=actor
    )
    session.add(
        AuditLog(
            actor=actor, action="settle", entity="resellers", entity_id=reseller.id,
            before=None, after={"amount": str(value), "reference": reference, "balance": str(new)},
        )
    )  # fmt: skip
    return new


def unassign_package(session: Session, actor: str, reseller: str, package: str) -> None:
    r = get_by_name(session, Reseller, reseller)
    p = lookup(session, Package, package)
    if p is None:  # the reseller is there: it is the body that names nothing (not a 404)
        raise ValidationError(f"no package named {package!r}", field="package")
    a = _assignment(session, r, p)
    if a is None:
        raise NotFound(f"package {p.name!r} is not assigned to reseller {r.name!r}")
    audit(session, actor, "delete", a, snapshot(a))
    session.delete(a)
    session.flush()


def reseller_price(a: ResellerPackage) -> Decimal:
    """What the reseller pays for the package: its own price, else the operator price."""
    return a.price if a.price is not None else a.package.operator_price
