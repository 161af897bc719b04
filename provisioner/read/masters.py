"""Master packages, as admins see them (nobody else sees them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.auth import Principal
from provisioner.models import MasterPackage
from provisioner.rates import format_rate
from provisioner.read.models import MasterOut
from provisioner.registry.common import get_by_name
from provisioner.state import master_spec


def _rate(v: int | None) -> str | None:
    return format_rate(v) if v else None


def view(m: MasterPackage) -> MasterOut:
    return MasterOut(
        id=m.id,
        name=m.name,
        customer_type=str(m.customer_type),
        billing=str(m.billing),
        duration_days=m.duration_days,
        rate_down=format_rate(m.rate_down),
        rate_up=format_rate(m.rate_up),
        rate_limit=master_spec(m).rate.render(),
        burst_down=_rate(m.burst_down),
        burst_up=_rate(m.burst_up),
        burst_threshold_down=_rate(m.burst_threshold_down),
        burst_threshold_up=_rate(m.burst_threshold_up),
        burst_time=m.burst_time,
        priority=m.priority,
        min_down=_rate(m.min_down),
        min_up=_rate(m.min_up),
        volume_cap=m.volume_cap,
        pool_name=m.pool_name,
        pool_ranges=m.pool_ranges,
        profile_name=m.profile_name,
        local_address=m.local_address,
        shared_users=m.shared_users,
    )


def list_(session: Session, principal: Principal) -> list[MasterOut]:
    principal.require("admin")
    return [view(m) for m in session.scalars(select(MasterPackage).order_by(MasterPackage.name))]


def get(session: Session, principal: Principal, ref: str) -> MasterOut:
    principal.require("admin")
    return view(get_by_name(session, MasterPackage, ref))
