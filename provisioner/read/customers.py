"""Customers as each caller may see them (``access.customer_filter``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access, fup, validation
from provisioner.auth import Principal
from provisioner.errors import ValidationError
from provisioner.models import Customer, CustomerStatus, Reseller, Router, utcnow
from provisioner.read import paging
from provisioner.read.models import CustomerOut, Page, UsageOut
from provisioner.registry.common import get_by_name
from provisioner.sessions import terms_of


def view(c: Customer) -> CustomerOut:
    """A customer without its password."""
    return CustomerOut(
        id=c.id,
        username=c.username,
        customer_type=str(c.customer_type),
        router=c.router.name if c.router else None,
        package=c.package.name if c.package else None,
        reseller=c.reseller.name if c.reseller else None,
        static_ip=c.static_ip,
        mac_address=c.mac_address,
        status=str(c.status),
        expires_at=c.expires_at.isoformat() if c.expires_at else None,
        billing_day=c.billing_day,
    )


def list_(
    session: Session, principal: Principal, *, reseller: str | None = None
) -> list[CustomerOut]:
    """Every customer this caller may see, by username; ``reseller`` narrows an admin's
    list to one reseller's."""
    return search(session, principal, reseller=reseller, limit=None).items


def get(session: Session, principal: Principal, ref: str) -> CustomerOut:
    return view(access.customer(session, principal, ref))


def usage(session: Session, principal: Principal, ref: str) -> UsageOut:
    """A customer's usage in its current billing cycle, and whether it is throttled."""
    c = access.customer(session, principal, ref)
    u = fup.usage(session, c)
    return UsageOut(
        customer=c.username,
        cycle_start=u.cycle_start.isoformat() if u.cycle_start else None,
        cycle_end=u.cycle_end.isoformat() if u.cycle_end else None,
        used_bytes=u.used,
        threshold_bytes=u.threshold,
        throttled=u.throttled_until is not None,
        throttled_until=u.throttled_until.isoformat() if u.throttled_until else None,
        rate_limit=terms_of(c).rate,
    )


def me(session: Session, principal: Principal) -> CustomerOut:
    principal.require("customer")
    return view(access.own_customer(session, principal))


STATUSES = ("new", "active", "expired", "suspended")
PAGE_LIMIT = paging.MAX_LIMIT
MAX_DAYS = 36500


def search(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    status: str | None = None,
    reseller: str | None = None,
    package: str | None = None,
    router: str | None = None,
    expiring_within_days: int | None = None,
    offset: int = 0,
    limit: int | None = 25,
) -> Page[CustomerOut]:
    """One page of the customers this caller may see, by username: those whose username
    contains ``q`` (any case), in ``status``, of one ``reseller`` (admins only), on one
    ``package`` (one the caller may see; another answers 404, as for a package that does
    not exist), on one ``router`` (admins only; staff see router names, not routers) or
    whose paid period ends within ``expiring_within_days`` days from now (not already
    ended). ``limit`` None: all of them."""
    where = list(access.customer_filter(session, principal))
    where += paging.contains(Customer.username, q)
    if status:
        if status not in STATUSES:
            raise ValidationError(f"must be one of {', '.join(STATUSES)}", field="status")
        where.append(Customer.status == CustomerStatus(status))
    if reseller:
        principal.require("admin")
        where.append(Customer.reseller_id == get_by_name(session, Reseller, reseller).id)
    if package:
        where.append(Customer.package_id == access.package(session, principal, package).id)
    if router:
        principal.require("admin", "reseller")
        if principal.role == "admin":
            where.append(Customer.router_id == get_by_name(session, Router, router).id)
        else:  # no 404 for a router name that does not exist: nothing to learn from it
            named = select(Router.id).where(Router.name == str(router))
            where.append(Customer.router_id.in_(named))
    if expiring_within_days is not None:
        days = validation.positive_int(
            "expiring_within_days", expiring_within_days, minimum=0, maximum=MAX_DAYS
        )
        now = utcnow()
        where += [Customer.expires_at > now, Customer.expires_at <= now + timedelta(days=days)]
    stmt = select(Customer).where(*where).order_by(Customer.username)
    return paging.page(session, stmt, view, limit=limit, offset=offset)
