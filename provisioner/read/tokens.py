"""API tokens as an admin sees them: owner, lifetime, last use and status; never a hash.
Admins only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import auth
from provisioner.auth import Principal
from provisioner.errors import NotFound
from provisioner.models import ApiToken, Customer, Reseller, utcnow
from provisioner.read import paging
from provisioner.read.models import Page, TokenCreatedOut, TokenOut


def _at(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


def _owner(session: Session, t: ApiToken) -> str | None:
    if t.reseller_id is not None:
        return session.scalar(select(Reseller.name).where(Reseller.id == t.reseller_id))
    if t.customer_id is not None:
        return session.scalar(select(Customer.username).where(Customer.id == t.customer_id))
    return None


def view(t: ApiToken, owner: str | None, now: datetime | None = None) -> TokenOut:
    return TokenOut(
        id=t.id,
        role=t.role,
        owner=owner,
        name=t.name,
        created_at=_at(t.created_at) or "",
        expires_at=_at(t.expires_at),
        last_used_at=_at(t.last_used_at),
        revoked_at=_at(t.revoked_at),
        status=auth.status(t, now),
    )


def created(session: Session, t: ApiToken, token: str) -> TokenCreatedOut:
    """A token just made, with its clear text (shown this once)."""
    return TokenCreatedOut(**view(t, _owner(session, t)).model_dump(), token=token)


def list_(
    session: Session,
    principal: Principal,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> Page[TokenOut]:
    """Every token, revoked and expired ones too, oldest first (a page of them)."""
    principal.require("admin")
    now = utcnow()
    q = (
        select(ApiToken, Reseller.name, Customer.username)
        .outerjoin(Reseller, Reseller.id == ApiToken.reseller_id)
        .outerjoin(Customer, Customer.id == ApiToken.customer_id)
        .order_by(ApiToken.id)
    )
    return paging.page(
        session,
        q,
        lambda found: view(found[0], found[1] or found[2], now),
        limit=limit,
        offset=offset,
        rows=True,
    )


def get(session: Session, principal: Principal, token_id: int) -> TokenOut:
    principal.require("admin")
    t = session.get(ApiToken, token_id)
    if t is None:
        raise NotFound(f"no token {token_id}")
    return view(t, _owner(session, t))
