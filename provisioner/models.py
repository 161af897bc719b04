"""The registry: SQLAlchemy 2 typed models.

The stock FreeRADIUS tables live in ``radius_tables.py``; they are not ours to shape.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from provisioner.types import Encrypted, Money


def utcnow() -> datetime:
    return datetime.now(UTC)


class TZDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every dialect (SQLite keeps no offset: store UTC, add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, datetime):
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class CustomerType(enum.StrEnum):
    pppoe = "pppoe"
    hotspot = "hotspot"
    static = "static"
    other = "other"


class Billing(enum.StrEnum):
    daily = "daily"
    monthly = "monthly"


class Visibility(enum.StrEnum):
    public = "public"
    private = "private"


class RouterMode(enum.StrEnum):
    radius = "radius"
    local = "local"


class CustomerStatus(enum.StrEnum):
    active = "active"
    expired = "expired"
    suspended = "suspended"
    new = "new"  # created, never activated


def _enum(e: type[enum.Enum]) -> Enum:
    return Enum(e, native_enum=False, length=16, validate_strings=True)


class MasterPackage(Base):
    """The technical spec of a package. Rates are bits/s; caps are bytes."""

    __tablename__ = "master_packages"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    customer_type: Mapped[CustomerType] = mapped_column(_enum(CustomerType))
    billing: Mapped[Billing] = mapped_column(_enum(Billing))
    duration_days: Mapped[int] = mapped_column(Integer, default=30)
    rate_down: Mapped[int] = mapped_column(BigInteger)
    rate_up: Mapped[int] = mapped_column(BigInteger)
    burst_down: Mapped[int | None] = mapped_column(BigInteger)
    burst_up: Mapped[int | None] = mapped_column(BigInteger)
    burst_threshold_down: Mapped[int | None] = mapped_column(BigInteger)
    burst_threshold_up: Mapped[int | None] = mapped_column(BigInteger)
    burst_time: Mapped[int | None] = mapped_column(Integer)  # seconds
    priority: Mapped[int | None] = mapped_column(Integer)
    min_down: Mapped[int | None] = mapped_column(BigInteger)
    min_up: Mapped[int | None] = mapped_column(BigInteger)
    volume_cap: Mapped[int | None] = mapped_column(BigInteger)
    # Fair usage: past ``fup_threshold`` bytes in a billing cycle the rate drops to
    # fup_down/fup_up (bits/s) until the cycle ends.
    fup_threshold: Mapped[int | None] = mapped_column(BigInteger)
    fup_down: Mapped[int | None] = mapped_column(BigInteger)
    fup_up: Mapped[int | None] = mapped_column(BigInteger)
    pool_name: Mapped[str | None] = mapped_column(String(64))
    pool_ranges: Mapped[str | None] = mapped_column(String(512))
    profile_name: Mapped[str] = mapped_column(String(64), unique=True)
    # The router's PPP/hotspot profile when several masters share one (None: profile_name);
    # profile_name stays this master's own RADIUS group either way.
    router_profile: Mapped[str | None] = mapped_column(String(64))
    # The router's side of PPP sessions (profile local-address); unset = not managed.
    local_address: Mapped[str | None] = mapped_column(String(45))
    shared_users: Mapped[int] = mapped_column(Integer, default=1)
    # IPv6: each customer is delegated one ``ipv6_prefix_length`` prefix of ``ipv6_prefix``
    # (``ipv6_prefixes``); ``framed_ipv6_prefix`` also sends it as Framed-IPv6-Prefix.
    ipv6_pool_name: Mapped[str | None] = mapped_column(String(64))
    ipv6_prefix: Mapped[str | None] = mapped_column(String(49))
    ipv6_prefix_length: Mapped[int | None] = mapped_column(Integer)
    framed_ipv6_prefix: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, onupdate=utcnow)

    packages: Mapped[list[Package]] = relationship(back_populates="master_package")


class Package(Base):
    """The pricing layer over a master package. Type and billing come from the master."""

    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    master_package_id: Mapped[int] = mapped_column(ForeignKey("master_packages.id"))
    customer_price: Mapped[Decimal] = mapped_column(Money())
    operator_price: Mapped[Decimal] = mapped_column(Money())
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility), default=Visibility.private)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)

    master_package: Mapped[MasterPackage] = relationship(back_populates="packages")


class OperatorBilling(enum.StrEnum):
    prepaid = "prepaid"  # pays from its balance: activations stop at zero
    postpaid = "postpaid"  # may owe its parent up to ``credit_limit``


class Reseller(Base):
    """An operator: a reseller under the admin, or a sub-reseller under another reseller
    (``parent_id``), to any depth. Each pays its parent's price for what it activates."""

    __tablename__ = "resellers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    contact: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    # None: directly under the admin.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    # Its parent (or the admin) lets it have sub-resellers of its own.
    may_have_subresellers: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    billing: Mapped[OperatorBilling] = mapped_column(
        _enum(OperatorBilling), default=OperatorBilling.prepaid, server_default="prepaid"
    )
    credit_limit: Mapped[Decimal] = mapped_column(
        Money(), default=Decimal("0.00"), server_default="0"
    )

    assignments: Mapped[list[ResellerPackage]] = relationship(
        back_populates="reseller", cascade="all, delete-orphan"
    )


class ResellerPackage(Base):
    """A package a reseller may sell, given by its parent (the admin, or the reseller above
    it): ``price`` is what it pays its parent (None: the package's operator price);
    ``customer_price`` the customer's price its parent recommends (None: the package's)."""

    __tablename__ = "reseller_packages"
    __table_args__ = (UniqueConstraint("reseller_id", "package_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers.id", ondelete="CASCADE"))
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"))
    price: Mapped[Decimal | None] = mapped_column(Money())
    customer_price: Mapped[Decimal | None] = mapped_column(Money())

    reseller: Mapped[Reseller] = relationship(back_populates="assignments")
    package: Mapped[Package] = relationship()


class Router(Base):
    """A NAS. Credentials are encrypted at rest and kept out of repr and JSON."""

    __tablename__ = "routers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    api_port: Mapped[int] = mapped_column(Integer, default=8728)
    api_tls: Mapped[bool] = mapped_column(Boolean, default=False)
    username: Mapped[str] = mapped_column(String(64))
    password: Mapped[str] = mapped_column(Encrypted(1024))
    radius_secret: Mapped[str] = mapped_column(Encrypted(1024))
    customer_types: Mapped[str] = mapped_column(String(64), default="pppoe,hotspot,static")
    mode: Mapped[RouterMode] = mapped_column(_enum(RouterMode), default=RouterMode.radius)
    coa_port: Mapped[int] = mapped_column(Integer, default=3799)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)

    def serves(self, customer_type: CustomerType | str) -> bool:
        return str(customer_type) in self.types()

    def types(self) -> list[str]:
        return [t for t in self.customer_types.split(",") if t]

    def __repr__(self) -> str:
        return f"Router(id={self.id!r}, name={self.name!r}, host={self.host!r})"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password: Mapped[str] = mapped_column(Encrypted(1024))
    customer_type: Mapped[CustomerType] = mapped_column(_enum(CustomerType))
    # Indexed: every sync reads one router's customers, out of up to a million.
    router_id: Mapped[int | None] = mapped_column(ForeignKey("routers.id"), index=True)
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id"))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    static_ip: Mapped[str | None] = mapped_column(String(45), unique=True)
    mac_address: Mapped[str | None] = mapped_column(String(17))
    status: Mapped[CustomerStatus] = mapped_column(
        _enum(CustomerStatus), default=CustomerStatus.new
    )
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime(), index=True)
    # The day of the month a monthly subscription renews on (kept through short months).
    billing_day: Mapped[int | None] = mapped_column(Integer)
    # Over its package's fair usage threshold: the reduced rate until this cycle end.
    throttled_until: Mapped[datetime | None] = mapped_column(TZDateTime())
    # Why it is suspended when the daemon did it ("unpaid": an invoice past its grace), so
    # a payment lifts only that suspension, never an operator's. None otherwise.
    suspended_reason: Mapped[str | None] = mapped_column(String(16))
    # An argon2 hash of the portal password the customer set (None: not set, and the
    # portal takes its PPPoE/hotspot password, as before; ``users.customer_login``).
    portal_password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)

    router: Mapped[Router | None] = relationship()
    package: Mapped[Package | None] = relationship()
    reseller: Mapped[Reseller | None] = relationship()

    def __repr__(self) -> str:
        return f"Customer(id={self.id!r}, username={self.username!r})"


class AuditLog(Base):
    """Every registry change: who, what, before/after (credentials redacted)."""

    __tablename__ = "audit_log"
    # The audit page filters by what, who or days, newest first, paged by id.
    __table_args__ = (
        Index("ix_audit_log_entity_id", "entity", "id"),
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class NasObject(Base):
    """Ownership: an object this daemon created (or adopted) on a router.

    Keyed by the router's own ``.id``, so it survives a restart and a rename by hand, and
    works on menus that have no ``comment`` (hotspot profiles, ``/radius``).
    """

    __tablename__ = "nas_objects"
    __table_args__ = (UniqueConstraint("router_id", "menu", "ros_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    router_id: Mapped[int] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"))
    menu: Mapped[str] = mapped_column(String(64))
    ros_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class SyncRun(Base):
    """One sync (or dry run) of one router: what was planned, applied, and any error."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    router_id: Mapped[int] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    status: Mapped[str] = mapped_column(String(16), default="running")
    changes_planned: Mapped[int] = mapped_column(Integer, default=0)
    changes_applied: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    applied: Mapped[list[Any] | None] = mapped_column(JSON)
    # The daemon instance running it (``instances.name()``); its run is closed as
    # ``interrupted`` when that instance dies mid-run.
    holder: Mapped[str | None] = mapped_column(String(128))


class RouterLock(Base):
    """A row per router to lock (SELECT … FOR UPDATE) so one instance syncs it at a time."""

    __tablename__ = "router_locks"

    router_id: Mapped[int] = mapped_column(
        ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(128), default="")
    locked_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class ApiToken(Base):
    """A bearer token (stored as a SHA-256 hash) with a role and, for non-admins, an owner.
    It works until ``expires_at`` (None: never) or until it is revoked."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime())  # None: never
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(TZDateTime())  # to the minute


class WebUser(Base):
    """A login for the web panels (admins and resellers): an argon2 hash of its password,
    never the password. Customers log in to the portal with their own PPPoE/hotspot
    credentials instead (``users.customer_login``)."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | reseller
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(TZDateTime())  # None: may log in


# ---- money, activations, work (issue: activations) -------------------------------------


class LedgerEntry(Base):
    """One balance change, append-only: the record. An account's balance is their sum."""

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64), index=True)  # "reseller:3", "customer:9"
    amount: Mapped[Decimal] = mapped_column(Money())  # signed: credit > 0, debit < 0
    kind: Mapped[str] = mapped_column(String(32))  # topup|refund|card|activation|invoice|sale
    reference: Mapped[str] = mapped_column(String(255), default="")
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("activations.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))  # a payment's
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class Account(Base):
    """A paying account's current balance, moved in the same transaction as each ledger row
    (``ledger.credit`` / ``ledger.debit``); ``ledger.check`` proves it equals their sum."""

    __tablename__ = "accounts"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"), server_default="0")
    # The lowest the balance may go: 0 when prepaid, minus the credit limit when postpaid.
    floor: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0.00"), server_default="0")


class LedgerCheck(Base):
    """One run of ``ledger.check``: how many accounts it read and how many disagreed with
    their ledger, so /metrics can say so at every scrape without summing the ledger."""

    __tablename__ = "ledger_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    accounts: Mapped[int] = mapped_column(Integer)
    mismatches: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")  # the first few that disagreed
    by: Mapped[str] = mapped_column(String(64))  # scheduler | cli


class Activation(Base):
    __tablename__ = "activations"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"))
    payer: Mapped[str] = mapped_column(String(64))  # reseller:N | customer:N | card:SERIAL | admin
    price: Mapped[Decimal] = mapped_column(Money())
    requested_by: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(TZDateTime())
    expires_at: Mapped[datetime] = mapped_column(TZDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|applied|failed
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow, index=True)
    # Read-only: an activation just made holds its customer and package (no re-read).
    customer: Mapped[Customer] = relationship(viewonly=True)
    package: Mapped[Package] = relationship(viewonly=True)


class Invoice(Base):
    """One billing period of a monthly customer: ``open`` until paid (``paid``) or
    cancelled (``void``). An activation's invoice is its period's, paid by the activation;
    the invoice job issues the next ones. One per customer and period start."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("customer_id", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # The activation that paid it (None: issued by the invoice job).
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("activations.id"))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id"))
    amount: Mapped[Decimal] = mapped_column(Money())
    period_start: Mapped[datetime] = mapped_column(TZDateTime(), index=True)
    period_end: Mapped[datetime] = mapped_column(TZDateTime())
    due_at: Mapped[datetime] = mapped_column(TZDateTime())
    status: Mapped[str] = mapped_column(String(8), default="paid", index=True)
    paid_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class Payment(Base):
    """Money received against an invoice: from the customer's balance, or recorded by
    the admin or the customer's reseller."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    # One per invoice: the second payment of a paid invoice fails here too (``sale``).
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True, unique=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    method: Mapped[str] = mapped_column(String(16))  # balance | admin | reseller
    actor: Mapped[str] = mapped_column(String(128))
    reference: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class RechargeCard(Base):
    __tablename__ = "recharge_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(64), unique=True)
    value: Mapped[Decimal] = mapped_column(Money())
    batch: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(TZDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    redeemed_by: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class StaticAddress(Base):
    """An address handed out from a static package's pool; unique, so never given twice."""

    __tablename__ = "static_addresses"

    address: Mapped[str] = mapped_column(String(45), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), unique=True
    )
    pool_name: Mapped[str] = mapped_column(String(64))


class Ipv6Prefix(Base):
    """A prefix delegated from an IPv6 pool; unique both ways, so never given to two
    customers and one per customer. Removed when the customer (or its IPv6) goes."""

    __tablename__ = "ipv6_prefixes"

    prefix: Mapped[str] = mapped_column(String(49), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), unique=True
    )
    pool_name: Mapped[str] = mapped_column(String(64))
    # Its index among the pool's prefixes of the package's length: the lowest free one is
    # found by this index (``registry.assign_prefix``). None: of a pool since changed.
    slot: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_ipv6_prefixes_pool_slot", "pool_name", "slot"),)


class Ipv6FreeSlot(Base):
    """A pool's slot that was taken and is free again: kept by the database's own
    triggers on ``ipv6_prefixes`` (migration 0022), never written by the code. With the
    pool's highest taken slot, it gives the lowest free one in two index lookups."""

    __tablename__ = "ipv6_free_slots"

    pool_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)


class AddressHint(Base):
    """Where a static pool's search for its lowest free address starts (PostgreSQL):
    every address of the pool below ``next`` is in use. The allocator moves it past what
    it gives; the database's triggers move it back to an address freed below it
    (migration 0023). Valid only for the ``ranges`` it was found for."""

    __tablename__ = "address_hints"

    pool_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ranges: Mapped[str] = mapped_column(Text)
    first: Mapped[int] = mapped_column(BigInteger)
    last: Mapped[int] = mapped_column(BigInteger)
    next: Mapped[int] = mapped_column(BigInteger)


class Outbox(Base):
    """Work for a NAS written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # sync_router | coa | disconnect | other
    router_id: Mapped[int | None] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"))
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("activations.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    # The instance working on it while ``running`` (taken over when that one dies).
    claimed_by: Mapped[str | None] = mapped_column(String(128))


class DaemonInstance(Base):
    """A running daemon: it beats every ``heartbeat_seconds``; one silent for
    ``instance_stale_seconds`` is dead, and its claims and sync runs are taken over."""

    __tablename__ = "daemon_instances"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class JobRun(Base):
    """A periodic job's slot: a unique (job, slot) row makes it run once across instances."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    slot: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


# ---- events out (``provisioner.events``, ``webhooks``, ``reminders``) -----------------


class Event(Base):
    """Something that happened, written in the transaction of the change itself; it is
    its own outbox: ``fanned_out`` turns true once its deliveries and reminders exist."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)  # evt_…: the stable id
    type: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Who may see it: the operator whose subtree it is in (None: the admin's own).
    reseller_id: Mapped[int | None] = mapped_column(Integer, index=True)
    customer_id: Mapped[int | None] = mapped_column(Integer)
    # One event of a kind for one thing (a customer's expiry warned once): unique.
    key: Mapped[str | None] = mapped_column(String(160), unique=True)
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class WebhookEndpoint(Base):
    """A receiver of events: an admin's (``reseller_id`` None: every event) or an
    operator's (its subtree's events only). ``kind`` other: the "other" adapter's."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # types, or ["*"]
    secret: Mapped[str] = mapped_column(Encrypted(512))  # whsec_…, encrypted at rest
    reseller_id: Mapped[int | None] = mapped_column(
        ForeignKey("resellers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="webhook")
    description: Mapped[str] = mapped_column(String(256), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    concurrency: Mapped[int] = mapped_column(Integer, default=4)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    # First failure since its last success; a day of them disables it.
    failing_since: Mapped[datetime | None] = mapped_column(TZDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint: claimed like outbox work, retried with backoff under
    the same ``msg_id`` (the webhook-id header) until delivered or a day old."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    msg_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_status: Mapped[int | None] = mapped_column(Integer)  # HTTP status of the last try
    last_ms: Mapped[int | None] = mapped_column(Integer)  # its response time
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class DeliveryAttempt(Base):
    """One try of a delivery: the log an admin reads."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class CustomerContact(Base):
    """Where a customer's reminders go, in which language, and whether it wants any."""

    __tablename__ = "customer_contacts"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))  # preferred; else the first set
    language: Mapped[str] = mapped_column(String(8), default="en")
    opt_out: Mapped[bool] = mapped_column(Boolean, default=False)


class ReminderMessage(Base):
    """A reminder to a customer: at most one per event and customer (unique)."""

    __tablename__ = "reminder_messages"
    __table_args__ = (UniqueConstraint("event_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)  # what was sent
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class BalanceAlert(Base):
    """An operator's low-balance threshold (``balance.low``): one event each time its
    balance falls below it (``alerted`` until it is back above)."""

    __tablename__ = "balance_alerts"

    reseller_id: Mapped[int] = mapped_column(
        ForeignKey("resellers.id", ondelete="CASCADE"), primary_key=True
    )
    threshold: Mapped[Decimal] = mapped_column(Money())
    alerted: Mapped[bool] = mapped_column(Boolean, default=False)
