"""Registry rows → frozen snapshots (the DB edge of the pure mapping)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, String, select, type_coerce
from sqlalchemy.orm import Session

from provisioner.config import Settings
from provisioner.models import Customer, Ipv6Prefix, MasterPackage, Package, Router
from provisioner.rates import RateLimit
from provisioner.secrets import decrypt
from provisioner.snapshots import CustomerSpec, MappingOptions, MasterSpec, RouterSpec


def master_spec(m: MasterPackage) -> MasterSpec:
    return MasterSpec(
        id=m.id,
        name=m.name,
        customer_type=str(m.customer_type),
        billing=str(m.billing),
        rate=RateLimit(
            up=m.rate_up,
            down=m.rate_down,
            burst_up=m.burst_up,
            burst_down=m.burst_down,
            threshold_up=m.burst_threshold_up,
            threshold_down=m.burst_threshold_down,
            burst_time=m.burst_time,
            priority=m.priority,
            min_up=m.min_up,
            min_down=m.min_down,
        ),
        profile_name=m.profile_name,
        pool_name=m.pool_name,
        pool_ranges=m.pool_ranges,
        local_address=m.local_address,
        volume_cap=m.volume_cap,
        fup_threshold=m.fup_threshold,
        fup_rate=fup_rate(m),
        router_profile=m.router_profile,
        shared_users=m.shared_users,
        duration_days=m.duration_days,
        ipv6_pool_name=m.ipv6_pool_name,
        ipv6_prefix=m.ipv6_prefix,
        ipv6_prefix_length=m.ipv6_prefix_length,
        framed_ipv6_prefix=bool(m.framed_ipv6_prefix),
    )


def fup_rate(m: MasterPackage) -> RateLimit | None:
    """A master package's reduced (fair usage) rate, if it has one."""
    if not (m.fup_threshold and m.fup_down and m.fup_up):
        return None
    return RateLimit(up=m.fup_up, down=m.fup_down)


def router_spec(r: Router) -> RouterSpec:
    return RouterSpec(
        id=r.id,
        name=r.name,
        host=r.host,
        customer_types=frozenset(r.types()),
        mode=str(r.mode),
        radius_secret=r.radius_secret,
        coa_port=r.coa_port,
    )


def options(settings: Settings) -> MappingOptions:
    return MappingOptions(
        expired_group=settings.expired_group,
        expired_address_list=settings.expired_address_list,
        interim_interval=settings.acct_interim_interval_seconds,
    )


def all_masters(session: Session) -> list[MasterSpec]:
    return [
        master_spec(m) for m in session.scalars(select(MasterPackage).order_by(MasterPackage.id))
    ]


def spec_of(c: Customer) -> CustomerSpec:
    """A customer held in hand as ``customer_specs`` reads it (no delegated prefix: a
    customer with one is read, with its prefix)."""
    return CustomerSpec(
        id=c.id, username=c.username, password=c.password,
        customer_type=str(c.customer_type), status=str(c.status),
        master_id=c.package.master_package_id if c.package is not None else None,
        router_id=c.router_id, static_ip=c.static_ip, mac_address=c.mac_address,
        expires_at=c.expires_at, throttled=c.throttled_until is not None,
    )  # fmt: skip


def customer_specs(session: Session, *where: ColumnElement[bool]) -> list[CustomerSpec]:
    """Customers (all, or those matching ``where``) as snapshots, in id order.

    Reads columns, not ORM objects, through Core, fetched at once and without per-value
    result processing (enum columns hold their values' text; the password is decrypted
    here): a router's 2,000 customers are loaded on every sync, and SQLAlchemy's
    row-by-row fetch and processors were most of that load's time.
    """
    q = (
        select(
            Customer.id,
            type_coerce(Customer.username, String),
            type_coerce(Customer.password, String),  # Fernet token, decrypted below
            type_coerce(Customer.customer_type, String),  # enum names are their values
            type_coerce(Customer.status, String),
            Package.master_package_id,
            Customer.router_id,
            type_coerce(Customer.static_ip, String),
            type_coerce(Customer.mac_address, String),
            Customer.expires_at,
            Customer.throttled_until.is_not(None),
            type_coerce(Ipv6Prefix.prefix, String),
        )
        .outerjoin(Package, Customer.package_id == Package.id)
        .outerjoin(Ipv6Prefix, Ipv6Prefix.customer_id == Customer.id)
        .where(*where)
        .order_by(Customer.id)
    )
    session.flush()  # what session.execute's autoflush would do; Core does not
    result = session.connection().execute(q)
    out: list[CustomerSpec] = []
    # In batches: all customers at once (radius sync) keeps no second copy of the table.
    while rows := result.fetchmany(5000):
        out += [
            CustomerSpec.of_row((
                id_, username, decrypt(token), customer_type, status, master_id, router_id,
                static_ip, mac_address, bool(throttled), expires_at, prefix,
            ))
            for (
                id_, username, token, customer_type, status, master_id, router_id,
                static_ip, mac_address, expires_at, throttled, prefix,
            ) in rows
        ]  # fmt: skip
    return out


def router_customers(session: Session, router_id: int) -> list[CustomerSpec]:
    return customer_specs(session, Customer.router_id == router_id)
