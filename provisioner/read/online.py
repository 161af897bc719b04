"""Who is online: open ``radacct`` sessions of the customers a caller may see, with their
package, router, address, uptime and traffic, a page at a time (ending one is
``effects.disconnect_session``).

``radacct`` is FreeRADIUS's: its times are timestamps on PostgreSQL and, with the stock
SQLite queries, epoch seconds (text when another writer made the row). ``epoch`` reads
either as seconds, so one query serves both; WHERE clauses compare the raw column, so
its indexes still serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, func, literal, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from provisioner import access
from provisioner.auth import Principal
from provisioner.models import Customer, Package, Router, utcnow
from provisioner.radius_tables import radacct
from provisioner.read import paging
from provisioner.read.models import Page


@dataclass(frozen=True)
class Online:
    """One open session."""

    id: int  # radacct's row
    username: str
    customer_id: int
    package: str | None
    router: str | None
    address: str
    started_at: datetime | None
    uptime_seconds: int
    bytes_in: int
    bytes_out: int
    session_id: str


def raw(column: Any) -> Any:
    """A ``radacct`` time column as stored (no conversion on the way out)."""
    return type_coerce(column, NullType())


def epoch(column: Any, dialect: str) -> ColumnElement[Any]:
    """A ``radacct`` time column as epoch seconds, whatever FreeRADIUS stored."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", column), BigInteger)
    col = raw(column)
    return cast(
        func.coalesce(
            func.iif(func.typeof(col) == "integer", col, None),
            func.strftime("%s", col),
        ),
        Integer,
    )


def since(column: Any, dialect: str, at: datetime) -> ColumnElement[bool]:
    """``column >= at`` on the raw column, so an index serves. On SQLite text rows (not
    the stock queries') sort after any number and are kept: callers read ``epoch``."""
    if dialect == "postgresql":
        return column >= at  # type: ignore[no-any-return]
    return raw(column) >= literal(int(at.timestamp()), NullType())  # type: ignore[no-any-return]


def customers_of(session: Session, principal: Principal) -> list[ColumnElement[bool]]:
    """``access.customer_filter`` with a reseller's subtree read first, as ids: a plain
    IN list the planner can use the index on ``customers.reseller_id`` with, where the
    recursive query inside every statement of a dashboard cost a scan each."""
    if principal.role != "reseller":
        return access.customer_filter(session, principal)
    me = access.own_reseller(session, principal)
    return [Customer.reseller_id.in_(list(session.scalars(access.subtree(me.id))))]


def scope(session: Session, principal: Principal) -> ColumnElement[bool]:
    """The ``radacct`` rows of customers this caller may see, as one EXISTS: planned as an
    index lookup per open session, where a join would hash every customer."""
    return (
        select(Customer.id)
        .where(Customer.username == radacct.c.username, *customers_of(session, principal))
        .exists()
    )


def _open(session: Session, principal: Principal, *, q: str | None, router: str | None) -> Any:
    """The open sessions this caller may see, by ``q`` and ``router`` (WHERE clauses)."""
    where = [radacct.c.acctstoptime.is_(None), scope(session, principal)]
    where += paging.contains(radacct.c.username, q)
    if router:
        host = session.scalar(select(Router.host).where(Router.name == router))
        where.append(radacct.c.nasipaddress == host if host else literal(False))
    return where


def _hosts(session: Session) -> dict[str, str]:
    return {h: n for h, n in session.execute(select(Router.host, Router.name))}


def search(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    router: str | None = None,
    offset: int = 0,
    limit: int | None = 50,
    now: datetime | None = None,
) -> Page[Online]:
    """One page of open sessions, newest first: of the customers whose username
    contains ``q``, on one ``router`` (by name)."""
    principal.require("admin", "reseller")
    now_s = int((now or utcnow()).timestamp())
    hosts = _hosts(session)

    def view(r: Any) -> Online:
        rid, name, cid, pkg, nas, ip, started, bin_, bout, sid = r
        return Online(
            id=int(rid), username=name, customer_id=cid, package=pkg,
            router=hosts.get(str(nas or ""), str(nas or "") or None),
            address=str(ip or ""),
            started_at=datetime.fromtimestamp(int(started), UTC) if started else None,
            uptime_seconds=max(0, now_s - int(started)) if started else 0,
            bytes_in=int(bin_), bytes_out=int(bout), session_id=str(sid),
        )  # fmt: skip

    limit, offset = paging.bounds(limit, offset)
    where = _open(session, principal, q=q, router=router)
    total = int(session.scalar(select(func.count()).select_from(radacct).where(*where)) or 0)
    # The page's rows first (newest first), then their customers and packages.
    ids = select(radacct.c.radacctid).where(*where).order_by(radacct.c.radacctid.desc())
    ids = ids.offset(offset).limit(limit if limit is not None else total)
    cut = ids.subquery()
    dialect = session.get_bind().dialect.name
    rows = session.execute(
        select(
            radacct.c.radacctid, Customer.username, Customer.id, Package.name,
            radacct.c.nasipaddress, radacct.c.framedipaddress,
            epoch(radacct.c.acctstarttime, dialect),
            func.coalesce(radacct.c.acctinputoctets, 0),
            func.coalesce(radacct.c.acctoutputoctets, 0),
            radacct.c.acctsessionid,
        )
        .join(cut, cut.c.radacctid == radacct.c.radacctid)
        .join(Customer, Customer.username == radacct.c.username)
        .outerjoin(Package, Package.id == Customer.package_id)
        .order_by(radacct.c.radacctid.desc())
    ).all()  # fmt: skip
    return Page[Online](
        items=[view(r) for r in rows], total=total,
        limit=limit if limit is not None else total, offset=offset,
    )  # fmt: skip


def count(session: Session, principal: Principal) -> int:
    """Customers online now (each counted once, however many sessions it has)."""
    stmt = select(func.count(func.distinct(radacct.c.username))).where(
        radacct.c.acctstoptime.is_(None), scope(session, principal)
    )
    return int(session.scalar(stmt) or 0)
