"""What a change sets off, decided in one place from the state before and after it.

Every write to a customer, package, master package or router (the registry's edits, an
activation, expiry) ends by handing its before/after state to one function here. This
module decides what follows and writes it into the caller's transaction:

- the RADIUS rows of the users, groups and NAS clients concerned (written at once, so
  FreeRADIUS never disagrees with the registry after a commit);
- a sync of each router that holds objects for the change (debounced: edits within the
  window share one sync; an activation gets rows of its own, so its status can follow);
- CoA or Disconnect for live sessions (``sessions.action`` says which);
- the "other" adapter's action for customers with no RouterOS NAS, whenever what it is
  told (customer, package, status, expiry) changes — removal included.

Nothing is sent from here: NAS work goes to the outbox and the worker drains it. Settings
come with the session (``db.make_sessionmaker``), not from a process global.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from provisioner import access, auth, events, radius_store, sessions
from provisioner.config import Settings
from provisioner.errors import NotFound
from provisioner.models import (
    AuditLog,
    Customer,
    CustomerType,
    Outbox,
    Router,
    RouterMode,
    utcnow,
)
from provisioner.radius_tables import radacct
from provisioner.snapshots import MasterSpec, RouterSpec
from provisioner.state import options

OTHER = "other"
SYNC_ROUTER = "sync_router"
_ADD_WORK = insert(Outbox.__table__)  # built once: an activation's batch compiles it once


def _work_row(kind: str, router_id: int, activation_id: int | None) -> dict[str, Any]:
    """An outbox row as ``Outbox``'s defaults make it, for ``_ADD_WORK`` in a batch."""
    now = utcnow()
    return dict(
        kind=kind, router_id=router_id, activation_id=activation_id, payload={},
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )  # fmt: skip


def settings_of(session: Session) -> Settings:
    """The settings of the context that made this session."""
    settings = session.info.get("settings")
    if not isinstance(settings, Settings):
        raise RuntimeError("this session was not made by a Context (no settings in its info)")
    return settings


@dataclass(frozen=True)
class CustomerState:
    """What of a customer its side effects depend on, frozen at one moment."""

    username: str
    customer_type: str
    router_id: int | None
    # Its router keeps objects for it (a local-mode secret/user, a static queue).
    on_router: bool
    terms: sessions.Terms
    package: str | None
    status: str
    expires_at: str | None
    # For its events (``customer_events``): who it is, whose, and whether throttled.
    customer_id: int | None = None
    reseller_id: int | None = None
    throttled: bool = False


def customer_state(c: Customer) -> CustomerState:
    router = c.router
    t = str(c.customer_type)
    return CustomerState(
        customer_id=c.id,
        reseller_id=c.reseller_id,
        throttled=c.throttled_until is not None,
        username=c.username,
        customer_type=t,
        router_id=c.router_id,
        on_router=router_holds(router.mode if router else None, t),
        terms=sessions.terms_of(c),
        package=c.package.name if c.package else None,
        status=str(c.status),
        expires_at=c.expires_at.isoformat() if c.expires_at else None,
    )


def router_holds(mode: str | None, customer_type: str) -> bool:
    """Whether a router in ``mode`` keeps per-customer objects for this type: local mode
    keeps secrets/users there, and static customers have a queue (and an address-list
    entry) in either mode."""
    return mode is not None and (str(mode) == RouterMode.local or customer_type == "static")


def other_payload(state: CustomerState | None) -> dict[str, Any] | None:
    """What the "other" adapter is told of an Other customer (None: not one of them, or
    one never activated, of which the operator's system has nothing to know yet)."""
    if state is None or state.customer_type != CustomerType.other or state.status == "new":
        return None
    return {
        "customer": state.username,
        "package": state.package,
        "status": state.status,
        "expires_at": state.expires_at,
    }


def other_action(
    before: CustomerState | None, after: CustomerState | None
) -> dict[str, Any] | None:
    """The payload to send the "other" adapter for this change, or None (pure).

    A customer that stops being an Other customer (removed, or re-typed) is reported with
    status ``removed``, so the operator's system can release it.
    """
    old, new = other_payload(before), other_payload(after)
    if new is None and old is not None:
        new = {**old, "package": None, "status": "removed", "expires_at": None}
    return new if new is not None and new != old else None


# ---- customers -------------------------------------------------------------------------

# A status change and the event it is (an activation's own is activation.applied).
STATUS_EVENTS = {
    ("active", "expired"): "customer.expired",
    ("active", "suspended"): "customer.suspended",
    ("expired", "suspended"): "customer.suspended",
    ("new", "suspended"): "customer.suspended",
    ("suspended", "active"): "customer.restored",
    ("suspended", "expired"): "customer.restored",
}


def state_body(s: CustomerState) -> dict[str, Any]:
    return {
        "customer": s.username, "customer_id": s.customer_id, "customer_type": s.customer_type,
        "reseller_id": s.reseller_id, "package": s.package, "status": s.status,
        "expires_at": s.expires_at,
    }  # fmt: skip


def customer_events(
    changes: Iterable[tuple[CustomerState | None, CustomerState | None]], activation: bool
) -> list[dict[str, Any]]:
    """The events rows of these changes (pure): a status change, and outside an
    activation (a new cycle clears a throttle) fair usage's throttle and restore."""
    out = []
    for b, a in changes:
        if b is None or a is None:
            continue
        kinds = []
        if (b.status, a.status) in STATUS_EVENTS and not activation:
            kinds.append(STATUS_EVENTS[(b.status, a.status)])
        if b.throttled != a.throttled and not activation and a.status == "active":
            kinds.append("fup.throttled" if a.throttled else "fup.restored")
        for kind in kinds:
            body = state_body(a)
            if kind == "fup.throttled":
                body["rate"] = a.terms.rate
            out.append(
                events.row(kind, body, reseller_id=a.reseller_id, customer_id=a.customer_id)
            )
    return out



def customers_changed(
    session: Session,
    changes: Iterable[tuple[CustomerState | None, CustomerState | None]],
    *,
    activation_id: int | None = None,
    known: radius_store.Known | None = None,
    offline: frozenset[str] = frozenset(),
    later: list[tuple[Any, dict[str, Any]]] | None = None,
    observed: list[radius_store.ObservedRow] | None = None,
) -> int:
    """Everything that follows a change of these customers; returns how many NAS work rows
    were queued (an activation with none is already applied).

    What an activation already knows is not read again: ``known`` specs, users known to
    be ``offline`` (no live session to tell), the users' RADIUS rows ``observed``, and
    ``later`` takes the RADIUS writes to send with its own (``radius_store.sync_users``)."""
    changes = list(changes)
    if not changes:
        return 0
    if any(
        a is None or (a.status != b.status and "suspended" in (a.status, b.status))
        for b, a in changes
        if b is not None
    ):
        auth.principals_changed()  # a customer's token may now be read-only, or gone
    settings = settings_of(session)
    names = {s.username for pair in changes for s in pair if s is not None}
    radius_store.sync_users(
        session, options(settings), names, known=known, later=later, observed=observed
    )
    routers = {
        s.router_id
        for pair in changes
        for s in pair
        if s is not None and s.on_router and s.router_id is not None
    }
    events.emit_many(session, customer_events(changes, activation_id is not None))
    n = 0
    for before, after in changes:
        payload = other_action(before, after)
        if payload is not None:
            session.add(Outbox(kind=OTHER, activation_id=activation_id, payload=payload))
            n += 1
    if activation_id is None:
        queue_router_sync(session, routers, settings)
    else:
        # Its own rows: the activation is applied when *its* work is done.
        for rid in sorted(routers):
            if later is not None:  # written with the caller's rows (its activation's first)
                later.append((_ADD_WORK, _work_row(SYNC_ROUTER, rid, activation_id)))
            else:
                session.add(Outbox(kind=SYNC_ROUTER, router_id=rid, activation_id=activation_id))
        n += len(routers)
    n += sessions.queue(
        session,
        [(b.terms, a.terms if a else None) for b, a in changes
         if b is not None and b.username not in offline],
        activation_id=activation_id,
    )  # fmt: skip
    session.flush()
    return n


def prefixes_changed(session: Session, usernames: list[str]) -> None:
    """These customers' delegated IPv6 prefixes changed (their package's pool did): their
    reply rows follow at once; the new prefix applies at their next login."""
    if usernames:
        radius_store.sync_users(session, options(settings_of(session)), usernames)


# ---- master packages, routers ----------------------------------------------------------


def master_changed(
    session: Session,
    before: MasterSpec | None,
    after: MasterSpec | None,
    customers: list[Customer],
) -> None:
    """A master package was created, changed or removed; ``customers`` use it.

    Its RADIUS group (and a renamed one's users) follow at once; routers serving its type
    sync soon. Online customers get a new speed by CoA; its other changes (pool, cap)
    apply at their next login rather than dropping every session of the package.
    """
    settings = settings_of(session)
    specs = [m for m in (before, after) if m is not None]
    radius_store.sync_groups(session, options(settings), {m.profile_name for m in specs})
    if before and after and before.profile_name != after.profile_name:
        radius_store.sync_users(session, options(settings), [c.username for c in customers])
    queue_router_sync(
        session, set().union(*(routers_serving(session, m.customer_type) for m in specs)), settings
    )
    if before and after and (before.rate, before.fup_rate) != (after.rate, after.fup_rate):
        pairs = []
        for c in customers:
            terms = sessions.terms_of(c)
            old = sessions.rate_of(before, c.throttled_until is not None)
            pairs.append((replace(terms, rate=old), terms))
        sessions.queue(session, pairs)


def router_changed(session: Session, before: RouterSpec | None, after: RouterSpec | None) -> None:
    """A router was added, changed or removed: its RADIUS client row follows at once, and
    it syncs soon (unless it is gone)."""
    settings = settings_of(session)
    hosts = {r.host for r in (before, after) if r is not None}
    radius_store.sync_routers(session, options(settings), hosts)
    if after is not None:
        queue_router_sync(session, {after.id}, settings)


# ---- the router work queue -------------------------------------------------------------


def queue_router_sync(session: Session, router_ids: set[int], settings: Settings) -> None:
    """Ask for a sync of these routers soon; edits within the debounce window share one."""
    if not router_ids:
        return
    due = utcnow() + timedelta(seconds=settings.sync_debounce_seconds)
    pending = set(
        session.scalars(
            select(Outbox.router_id).where(
                Outbox.kind == SYNC_ROUTER,
                Outbox.status == "pending",
                Outbox.router_id.in_(router_ids),
            )
        )
    )
    for rid in sorted(router_ids - pending):
        session.add(Outbox(kind=SYNC_ROUTER, router_id=rid, payload={}, next_attempt_at=due))
    session.flush()


def routers_serving(session: Session, customer_type: str) -> set[int]:
    return {r.id for r in session.scalars(select(Router)) if r.serves(customer_type)}


def disconnect_session(session: Session, principal: auth.Principal, radacct_id: int) -> str:
    """End one open session of a customer this caller may see: a Disconnect-Request to
    the router holding it, through the outbox (``sessions.work``), audited. Returns the
    customer's username; 404 for a session that is closed or not the caller's."""
    principal.require("admin", "reseller")
    row = session.execute(
        select(
            radacct.c.username, radacct.c.acctsessionid, radacct.c.framedipaddress,
            radacct.c.nasipaddress,
        ).where(radacct.c.radacctid == radacct_id, radacct.c.acctstoptime.is_(None))
    ).first()  # fmt: skip
    c = (
        session.scalar(select(Customer).where(Customer.username == row[0]))
        if row is not None
        else None
    )
    if row is None or c is None or not access.may_see(session, principal, c):
        raise NotFound(f"no open session {radacct_id}")
    live = sessions.LiveSession(row[0], str(row[1]), str(row[2] or ""), str(row[3] or ""))
    router_id = session.scalar(select(Router.id).where(Router.host == live.nas)) or c.router_id
    if router_id is None:
        raise NotFound(f"session {radacct_id} is on a router that is not registered")
    session.add(sessions.work(sessions.DISCONNECT, live, router_id))
    session.add(
        AuditLog(
            actor=principal.actor, action="disconnect", entity="customers", entity_id=c.id,
            before=None,
            after={"session": live.session_id, "address": live.ip, "router_id": router_id},
        )
    )  # fmt: skip
    session.flush()
    return c.username
