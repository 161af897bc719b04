"""Bearer tokens and roles: admin (everything), reseller (its own customers and packages),
customer (itself and the public listing). Tokens are random; only their hash is stored.

A token works until it expires or is revoked. A new token lives for its role's default
lifetime (``token_days_admin`` / ``_reseller`` / ``_customer``; 0: never) unless it is
given its own. Its owner is checked at every use: a removed reseller's or customer's token
answers 401, and a suspended customer's token may read but not buy (``read_only``).
"""

from __future__ import annotations

import hashlib
import secrets as pysecrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.orm import Session

from provisioner.errors import Forbidden, NotFound, ProvisionerError, ValidationError
from provisioner.models import (
    ApiToken,
    AuditLog,
    Customer,
    CustomerStatus,
    Reseller,
    utcnow,
)

ROLES = ("admin", "reseller", "customer")
MAX_DAYS = 36_500  # a hundred years; "never" is 0
# ``last_used_at`` is recorded at most this often per token, so a busy client does not
# turn every request into a write.
LAST_USED_EVERY = timedelta(minutes=1)


class TokenCache:
    """Verified tokens for a few seconds: most API requests then cost no token query.

    An entry lives ``seconds`` and never past its token's own expiry. Anything that can
    change who a token stands for in this process (a revocation, a customer suspended or
    removed, a reseller removed) calls ``principals_changed``, which empties every cache
    of the process at once; another process (a CLI command, another ``serve`` worker)
    is seen within ``seconds``. Refusals are never cached.

    Past the middle of its life an entry is renewed ahead: ``lookup`` tells one caller
    to have the token checked again (``put``, or ``drop`` when it is refused), beside
    its request, while every caller, that one too, goes on using the entry. Left to
    expire, a busy token's entry went missing for all its requests at once: each then
    checked the token on the slow path, and at 500 activations/s those bursts, every
    2 s, were the whole p99 (``bench/README.md``).
    """

    MAX = 10_000  # entries; past this the cache starts over (a bound, not an LRU)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, _Entry] = {}

    def lookup(self, token: str, now: datetime) -> tuple[Principal | None, bool]:
        """(the cached principal or None, whether this caller is to renew the entry:
        true for the first caller past the middle of its life)."""
        found = self._entries.get(_hash(token))
        if found is None:
            return None, False
        clock = time.monotonic()
        if found.generation != _generation or clock >= found.until:
            return None, False
        if found.expires_at is not None and found.expires_at <= now:
            return None, False
        # Two threads may both claim it in a rare race: two checks, no harm.
        renew = not found.renewing and clock >= found.renew_at
        if renew:
            found.renewing = True
        return found.principal, renew

    def put(self, token: str, principal: Principal, expires_at: datetime | None,
            generation: int) -> None:  # fmt: skip
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.MAX:
            self._entries.clear()
        clock = time.monotonic()
        self._entries[_hash(token)] = _Entry(
            principal, clock + self.seconds, clock + self.seconds / 2, expires_at, generation
        )

    def drop(self, token: str) -> None:
        """Forget a token found refused."""
        self._entries.pop(_hash(token), None)


@dataclass
class _Entry:
    principal: Principal
    until: float  # time.monotonic()
    renew_at: float
    expires_at: datetime | None  # the token's own
    generation: int
    renewing: bool = False


_generation = 0


def generation() -> int:
    """Read before verifying a token, stored with its cache entry (see ``TokenCache``)."""
    return _generation


def principals_changed() -> None:
    """Who some token stands for may have changed: every cached token is checked again."""
    global _generation
    _generation += 1


class Unauthorized(ProvisionerError):
    """No usable bearer token; answered with 401 and ``WWW-Authenticate: Bearer``."""

    status = 401


@dataclass(frozen=True)
class Principal:
    role: str
    reseller_id: int | None = None
    customer_id: int | None = None
    name: str = ""
    # A suspended customer: it may look at its own account but not buy (no writes).
    read_only: bool = False

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


def default_days(session: Session, role: str) -> int:
    """The configured lifetime of a new ``role`` token, in days (0: never expires)."""
    from provisioner.config import Settings, get_settings

    settings = session.info.get("settings")
    if not isinstance(settings, Settings):
        settings = get_settings()
    return int(getattr(settings, f"token_days_{role}"))


def _audit(
    session: Session, actor: str, action: str, row: ApiToken, before: dict[str, Any] | None
) -> dict[str, Any]:
    """The audit row of a token change; the hash stays out of the log."""
    from provisioner.audit import snapshot

    after = snapshot(row)
    after.pop("token_hash", None)
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            entity=ApiToken.__tablename__,
            entity_id=row.id,
            before=before,
            after=after,
        )
    )
    return after


def _days(days: Any) -> int:
    try:
        n = int(days)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{days!r} is not a whole number", field="days") from exc
    if not 0 <= n <= MAX_DAYS:
        raise ValidationError(f"must be 0 (never expires) to {MAX_DAYS}", field="days")
    return n


def issue_token(
    session: Session,
    *,
    role: str,
    reseller: str | None = None,
    customer: str | None = None,
    name: str = "",
    days: int | None = None,
    actor: str = "admin:cli",
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Make a token: (its row, the token in clear, returned this once). ``days``: its
    lifetime (0: never expires); None: the role's default. Audited as ``actor``."""
    from provisioner.refs import get_by_name

    if role not in ROLES:
        raise ValidationError("must be admin, reseller or customer", field="role")
    if days is None:
        days = default_days(session, role)
    days = _days(days)
    now = now or utcnow()
    t = ApiToken(role=role, name=name, created_at=now)
    if days:
        t.expires_at = now + timedelta(days=days)
    if role == "reseller":
        if not reseller:
            raise ValidationError("a reseller token needs --reseller", field="reseller")
        t.reseller_id = get_by_name(session, Reseller, reseller).id
    elif reseller:
        raise ValidationError("only a reseller token names a reseller", field="reseller")
    if role == "customer":
        if not customer:
            raise ValidationError("a customer token needs --customer", field="customer")
        t.customer_id = get_by_name(session, Customer, customer, "username").id
    elif customer:
        raise ValidationError("only a customer token names a customer", field="customer")
    token = "prov_" + pysecrets.token_urlsafe(32)
    t.token_hash = _hash(token)
    session.add(t)
    session.flush()
    _audit(session, actor, "create", t, None)
    return t, token


def create_token(
    session: Session,
    *,
    role: str,
    reseller: str | None = None,
    customer: str | None = None,
    name: str = "",
    days: int | None = None,
    actor: str = "admin:cli",
) -> str:
    """Make a token; returns it in clear this once (see ``issue_token``)."""
    _row, token = issue_token(
        session,
        role=role,
        reseller=reseller,
        customer=customer,
        name=name,
        days=days,
        actor=actor,
    )
    return token


def revoke_token(
    session: Session, actor: str, token_id: int, *, now: datetime | None = None
) -> ApiToken:
    """Revoke a token: from now on it answers 401. Revoking a revoked token changes
    nothing (it keeps its first revocation time); an unknown id is 404."""
    from provisioner.audit import snapshot

    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        before = snapshot(row)
        before.pop("token_hash", None)
        row.revoked_at = now or utcnow()
        session.flush()
        principals_changed()
        _audit(session, actor, "update", row, before)
    return row


def status(row: ApiToken, now: datetime | None = None) -> str:
    """``revoked``, ``expired`` or ``active``: the token itself (its owner aside)."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def authenticate(
    session: Session, token: str, *, now: datetime | None = None
) -> tuple[Principal, int | None]:
    """``verify``, without the token's expiry."""
    principal, due, _ = verify(session, token, now=now)
    return principal, due


def verify(
    session: Session, token: str, *, now: datetime | None = None
) -> tuple[Principal, int | None, datetime | None]:
    """The caller behind ``token``, the token's id when its use is due to be recorded
    (``record_use``; None: recorded less than ``LAST_USED_EVERY`` ago) and the token's
    expiry (None: never). Only reads.

    Unauthorized (401) for an unknown, revoked or expired token and for one whose reseller
    or customer was removed. A suspended customer's principal is ``read_only``."""
    now = now or utcnow()
    found = session.execute(
        select(ApiToken, Customer.status, Reseller.id)
        .outerjoin(Customer, Customer.id == ApiToken.customer_id)
        .outerjoin(Reseller, Reseller.id == ApiToken.reseller_id)
        .where(ApiToken.token_hash == _hash(token))
    ).first()
    if found is None:
        raise Unauthorized("the bearer token is not valid")
    row, customer_status, reseller_id = found
    if row.revoked_at is not None:
        raise Unauthorized("the bearer token was revoked; ask your provider for a new one")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized(
            f"the bearer token has expired (at {row.expires_at.isoformat(timespec='seconds')});"
            " ask your provider for a new one"
        )
    if row.role == "reseller" and reseller_id is None:
        raise Unauthorized("this token's reseller no longer exists")
    if row.role == "customer" and customer_status is None:
        raise Unauthorized("this token's customer no longer exists")
    principal = Principal(
        row.role,
        row.reseller_id,
        row.customer_id,
        row.name,
        read_only=row.role == "customer" and customer_status == CustomerStatus.suspended,
    )
    due = row.last_used_at is None or row.last_used_at <= now - LAST_USED_EVERY
    return principal, (row.id if due else None), row.expires_at


def record_use(
    session: Session | Connection, token_id: int, *, now: datetime | None = None
) -> None:
    """Note that a token was used at ``now``: one conditional UPDATE, which changes
    nothing when another request recorded a use within ``LAST_USED_EVERY``."""
    now = now or utcnow()
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY),
        )
        .values(last_used_at=now)
    )
