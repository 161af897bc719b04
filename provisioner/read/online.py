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


def _stmt(session: Session, principal: Principal, *, q: str | None, router: str | None) -> Any:
    dialect = session.get_bind().dialect.name
    stmt = (
        select(
            radacct.c.radacctid,
            Customer.username,
            Customer.id,
            Package.name,
            radacct.c.nasipaddress,
            radacct.c.framedipaddress,
            epoch(radacct.c.acctstarttime, dialect),
            func.coalesce(radacct.c.acctinputoctets, 0),
            func.coalesce(radacct.c.acctoutputoctets, 0),
            radacct.c.acctsessionid,
        )
        .join(Customer, Customer.username == radacct.c.username)
        .outerjoin(Package, Package.id == Customer.package_id)
        .where(radacct.c.acctstoptime.is_(None), *access.customer_filter(session, principal))
        .where(*paging.contains(Customer.username, q))
        .order_by(radacct.c.radacctid.desc())
    )
    if router:
        host = session.scalar(select(Router.host).where(Router.name == router))
        stmt = stmt.where(radacct.c.nasipaddress == host) if host else stmt.where(literal(False))
    return stmt


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

    stmt = _stmt(session, principal, q=q, router=router)
    return paging.page(session, stmt, view, limit=limit, offset=offset, rows=True)


def count(session: Session, principal: Principal) -> int:
    """Customers online now (each counted once, however many sessions it has)."""
    stmt = (
        select(func.count(func.distinct(Customer.id)))
        .select_from(radacct)
        .join(Customer, Customer.username == radacct.c.username)
        .where(radacct.c.acctstoptime.is_(None), *access.customer_filter(session, principal))
    )
    return int(session.scalar(stmt) or 0)
