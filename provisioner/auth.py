"""Bearer tokens and roles: admin (everything), reseller (its own customers and packages),
customer (itself and the public listing). Tokens are random; only their hash is stored."""

from __future__ import annotations

import hashlib
import secrets as pysecrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.errors import Forbidden, ValidationError
from provisioner.models import ApiToken, Customer, Reseller

ROLES = ("admin", "reseller", "customer")


@dataclass(frozen=True)
class Principal:
    role: str
    reseller_id: int | None = None
    customer_id: int | None = None
    name: str = ""

    @property
    def actor(self) -> str:
        if self.role == "reseller":
            return f"reseller:{self.reseller_id}"
        if self.role == "customer":
            return f"customer:{self.customer_id}"
        return f"admin:{self.name or 'api'}"

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(roles)}; you are {self.role}")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    *,
    role: str,
    reseller: str | None = None,
    customer: str | None = None,
    name: str = "",
) -> str:
    """Make a token; returns it in clear this once."""
    from provisioner.registry import get_by_name

    if role not in ROLES:
        raise ValidationError("must be admin, reseller or customer", field="role")
    t = ApiToken(role=role, name=name)
    if role == "reseller":
        if not reseller:
            raise ValidationError("a reseller token needs --reseller", field="reseller")
        t.reseller_id = get_by_name(session, Reseller, reseller).id
    if role == "customer":
        if not customer:
            raise ValidationError("a customer token needs --customer", field="customer")
        t.customer_id = get_by_name(session, Customer, customer, "username").id
    token = "prov_" + pysecrets.token_urlsafe(32)
    t.token_hash = _hash(token)
    session.add(t)
    session.flush()
    return token


def authenticate(session: Session, token: str) -> Principal | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None:
        return None
    return Principal(row.role, row.reseller_id, row.customer_id, row.name)
