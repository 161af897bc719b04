"""Master packages, as admins see them (nobody else sees them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from provisioner.auth import Principal
from provisioner.models import MasterPackage, Outbox, Router
from provisioner.rates import format_rate
from provisioner.read import paging
from provisioner.read.models import MasterOut, MasterPreviewOut, Page
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
        fup_threshold=m.fup_threshold,
        fup_down=_rate(m.fup_down),
        fup_up=_rate(m.fup_up),
        router_profile=m.router_profile,
        pool_name=m.pool_name,
        pool_ranges=m.pool_ranges,
        profile_name=m.profile_name,
        local_address=m.local_address,
        shared_users=m.shared_users,
        ipv6_pool_name=m.ipv6_pool_name,
        ipv6_prefix=m.ipv6_prefix,
        ipv6_prefix_length=m.ipv6_prefix_length,
        framed_ipv6_prefix=bool(m.framed_ipv6_prefix),
    )


def list_(session: Session, principal: Principal) -> list[MasterOut]:
    return page(session, principal, limit=None).items


def page(
    session: Session,
    principal: Principal,
    *,
    q: str | None = None,
    limit: int | None = paging.DEFAULT_LIMIT,
    offset: int = 0,
) -> Page[MasterOut]:
    """One page of the master packages by name; ``q``: the names that contain it."""
    principal.require("admin")
    stmt = (
        select(MasterPackage)
        .where(*paging.contains(MasterPackage.name, q))
        .order_by(MasterPackage.name)
    )
    return paging.page(session, stmt, view, limit=limit, offset=offset)


def get(session: Session, principal: Principal, ref: str) -> MasterOut:
    principal.require("admin")
    return view(get_by_name(session, MasterPackage, ref))


def preview(
    factory: sessionmaker[Session], principal: Principal, ref: str, data: dict[str, Any]
) -> MasterPreviewOut:
    """What saving ``data`` on master package ``ref`` would set off, without saving it:
    the routers that would sync, the online customers who would get the new speed by CoA
    and those who would be disconnected.

    The write itself runs (``registry.update_master_package``, with ``effects`` deciding
    what follows) in a transaction of its own that is always rolled back, so the answer is
    the registry's own, not a second copy of its rules. A refused change raises as the
    write would."""
    from provisioner.effects import SYNC_ROUTER
    from provisioner.registry.masters import update_master_package
    from provisioner.sessions import COA, DISCONNECT

    principal.require("admin")
    with factory() as s:
        s.begin()
        try:
            m = get_by_name(s, MasterPackage, ref)
            before = master_spec(m).rate.render()
            # Routers already due to sync would sync this change too; set their pending
            # rows aside (rolled back with the rest) so every router the change asks for
            # shows up below.
            s.execute(
                update(Outbox)
                .where(Outbox.kind == SYNC_ROUTER, Outbox.status == "pending")
                .values(status="preview")
            )
            mark = s.scalar(select(func.max(Outbox.id))) or 0
            m = update_master_package(s, principal.actor, ref, data)
            after = master_spec(m).rate.render()
            work = list(s.scalars(select(Outbox).where(Outbox.id > mark).order_by(Outbox.id)))
            ids = {w.router_id for w in work if w.kind == SYNC_ROUTER}
            names = s.scalars(select(Router.name).where(Router.id.in_(ids)).order_by(Router.name))

            def users(kind: str) -> list[str]:
                named = {(w.payload or {}).get("User-Name") for w in work if w.kind == kind}
                return sorted(str(n) for n in named)

            return MasterPreviewOut(
                master_package=m.name,
                rate_before=before,
                rate_after=after,
                routers=list(names),
                coa=users(COA),
                disconnect=users(DISCONNECT),
            )
        finally:
            s.rollback()
