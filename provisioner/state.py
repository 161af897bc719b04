"""Registry rows → frozen snapshots (the DB edge of the pure mapping)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from provisioner.config import Settings
from provisioner.models import Customer, MasterPackage, Package, Router
from provisioner.rates import RateLimit
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
        shared_users=m.shared_users,
        duration_days=m.duration_days,
    )


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


def customer_spec(c: Customer) -> CustomerSpec:
    master_id = c.package.master_package_id if c.package is not None else None
    return CustomerSpec(
        id=c.id,
        username=c.username,
        password=c.password,
        customer_type=str(c.customer_type),
        status=str(c.status),
        master_id=master_id,
        router_id=c.router_id,
        static_ip=c.static_ip,
        mac_address=c.mac_address,
        expires_at=c.expires_at,
    )


def options(settings: Settings) -> MappingOptions:
    return MappingOptions(
        expired_group=settings.expired_group,
        expired_address_list=settings.expired_address_list,
    )


def all_masters(session: Session) -> list[MasterSpec]:
    return [
        master_spec(m) for m in session.scalars(select(MasterPackage).order_by(MasterPackage.id))
    ]


def customers_query():  # type: ignore[no-untyped-def]
    return select(Customer).options(
        joinedload(Customer.package).load_only(Package.master_package_id)
    )


def router_customers(session: Session, router_id: int) -> list[CustomerSpec]:
    q = customers_query().where(Customer.router_id == router_id).order_by(Customer.id)
    return [customer_spec(c) for c in session.scalars(q)]
