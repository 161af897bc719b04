"""Activations and their provisioning work, as each caller may see them.

A customer sees what it paid itself, not the price its reseller paid for it (an operator
price, hidden from customers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access
from provisioner.auth import Principal
from provisioner.errors import ValidationError
from provisioner.models import Activation, Customer, Outbox
from provisioner.read import paging
from provisioner.read.models import ActivationOut, ActivationRow, Page, QuoteOut, WorkOut

STATUSES = ("pending", "applied", "failed")


def _view(session: Session, principal: Principal, a: Activation) -> ActivationOut:
    c, p = a.customer, a.package
    customer, package = (c.username if c else None), (p.name if p else None)
    # An activation that has just queued work says what it queued (``activation.activate``).
    known: list[dict[str, Any]] | None = getattr(a, "work_known", None)
    work = None if known is None else [WorkOut(**w) for w in known]
    if work is None:
        work = [
            WorkOut(kind=w.kind, status=w.status, attempts=w.attempts, error=w.last_error)
            for w in session.scalars(
                select(Outbox).where(Outbox.activation_id == a.id).order_by(Outbox.id)
            )
        ]
    payer, price = a.payer, str(a.price)
    if principal.role == "customer" and payer != f"customer:{principal.customer_id}":
        payer, price = payer.split(":")[0], None
    return ActivationOut(
        id=a.id,
        idempotency_key=a.idempotency_key,
        customer=customer,
        package=package,
        payer=payer,
        price=price,
        starts_at=a.starts_at.isoformat(),
        expires_at=a.expires_at.isoformat(),
        status=a.status,
        error=a.error,
        work=work,
    )


def view(session: Session, principal: Principal, a: Activation) -> ActivationOut:
    """An activation the caller has just made (or replayed): it may see it already."""
    return _view(session, principal, a)


def get(session: Session, principal: Principal, act_id: int) -> ActivationOut:
    """An activation and its provisioning status: pending, applied, or failed with why."""
    return _view(session, principal, access.activation(session, principal, act_id))


def list_(
    session: Session,
    principal: Principal,
    *,
    customer: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[ActivationRow]:
    """At most ``limit`` activations, newest first (``page``'s rules)."""
    return page(session, principal, customer=customer, status=status, limit=limit).items


def page(
    session: Session,
    principal: Principal,
    *,
    customer: str | None = None,
    status: str | None = None,
    since: datetime | str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> Page[ActivationRow]:
    """One page of the activations, newest first, of the customers this caller may see:
    of one of them (``customer``), in one status, made at or after ``since``, or all.
    Naming a customer outside the caller's scope answers 404, as for one that does not
    exist."""
    q = (
        select(Activation)
        .join(Customer, Customer.id == Activation.customer_id)
        .where(*access.customer_filter(session, principal))
        .order_by(Activation.id.desc())
    )
    if customer is not None:
        q = q.where(Customer.id == access.customer(session, principal, customer).id)
    if status is not None:
        if status not in STATUSES:
            raise ValidationError(f"must be one of {', '.join(STATUSES)}", field="status")
        q = q.where(Activation.status == status)
    if since is not None:
        if isinstance(since, str):
            try:
                since = datetime.fromisoformat(since)
            except ValueError:
                raise ValidationError(f"{since!r} is not an ISO date/time", field="since") from None
        q = q.where(Activation.created_at >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
    return paging.page(
        session,
        q,
        lambda a: ActivationRow(
            **_view(session, principal, a).model_dump(),
            at=a.created_at.isoformat(timespec="seconds"),
        ),
        limit=limit,
        offset=offset,
    )


def quote(session: Session, principal: Principal, package_ref: str) -> QuoteOut:
    """What buying ``package_ref`` from its own balance costs this caller (a reseller: its
    operator price for it; a customer: the package's price), with its balance before and
    after. The price is the one the package listing shows this caller, which is the one
    ``activation`` charges; a package outside the caller's list answers 404."""
    from provisioner import ledger
    from provisioner.read import packages
    from provisioner.read.models import PackageOut

    principal.require("reseller", "customer")
    p = packages.get(session, principal, package_ref)
    price = Decimal(p.operator_price if isinstance(p, PackageOut) else p.price)
    have = ledger.balance(session, access.own_account(principal))
    return QuoteOut(
        package=p.name,
        price=str(price),
        balance=str(have),
        balance_after=str(have - price),
        enough=have >= price,
    )
