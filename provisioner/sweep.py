"""Live sessions kept true, as the routers are.

``radacct`` is what FreeRADIUS believes is online, and two things make it lie:

- a Stop that never came (the router rebooted, the packet was lost) leaves a session
  open for ever, and with Simultaneous-Use its customer is refused ("already logged in")
  until someone deletes the row by hand. A session with no word from its router for
  ``STALE_INTERVALS`` interim intervals is closed: its stop time is the last word heard,
  its terminate cause ``Provisioner-Stale``;
- a Disconnect that never arrived leaves a customer online without the right to be. Each
  open session is checked against the registry: one whose customer is removed,
  suspended, expired or never activated, or beyond its package's shared users (the
  oldest ones go), is cut by a Disconnect (the outbox's, retried), audited.

``find`` is the plan (``provisioner sessions diff`` prints it); ``run`` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, type_coerce, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import NullType

from provisioner import metrics, sessions
from provisioner.config import Settings
from provisioner.db import transaction
from provisioner.fup import radacct_time
from provisioner.models import (
    AuditLog,
    Customer,
    CustomerStatus,
    MasterPackage,
    Outbox,
    Package,
    Router,
    utcnow,
)
from provisioner.radius_tables import radacct
from provisioner.sessions import DISCONNECT, LiveSession

STALE_INTERVALS = 3
STALE_CAUSE = "Provisioner-Stale"  # acctterminatecause (at most 32 characters)
ACTOR = "system:sessions"
CLOSE = "close"
CHUNK = 500  # SQLite caps bound parameters per statement


@dataclass(frozen=True)
class Finding:
    """One open ``radacct`` session and what is to be done about it."""

    action: str  # close | disconnect
    username: str
    session_id: str
    nas: str
    ip: str
    radacct_id: int
    last_seen: datetime
    why: str


def interval_of(settings: Settings) -> int:
    """How often routers report (the interim interval), and so how often to check."""
    return settings.acct_interim_interval_seconds or 300


def find(session: Session, settings: Settings, now: datetime) -> list[Finding]:
    """Every open session that is stale, or whose customer has no right to it now."""
    cutoff = now - timedelta(seconds=STALE_INTERVALS * interval_of(settings))
    rows = session.execute(
        select(
            radacct.c.radacctid, radacct.c.username, radacct.c.acctsessionid,
            radacct.c.nasipaddress, radacct.c.framedipaddress, _LAST.label("last"),
        )
        .where(radacct.c.acctstoptime.is_(None))
        .order_by(radacct.c.radacctid)
    ).all()  # fmt: skip
    out: list[Finding] = []
    live = []
    for r in rows:
        seen = radacct_time(r.last) or cutoff
        if seen <= cutoff:
            why = f"no word from its router since {seen:%Y-%m-%d %H:%M} UTC"
            out.append(Finding(CLOSE, r.username, str(r.acctsessionid), str(r.nasipaddress or ""),
                               str(r.framedipaddress or ""), r.radacctid, seen, why))  # fmt: skip
        else:
            live.append(r)
    rights = _rights(session, sorted({r.username for r in live}))
    seen_of: dict[str, int] = {}
    for r in reversed(live):  # the newest sessions keep the shared users' places
        status, shared = rights.get(r.username, (None, 0))
        if status is None:
            why = "its customer was removed"
        elif status != CustomerStatus.active:
            why = f"its customer is {status}"
        else:
            seen_of[r.username] = seen_of.get(r.username, 0) + 1
            if seen_of[r.username] <= shared:
                continue
            why = f"beyond its package's {shared} shared user{'s' * (shared != 1)}"
        out.append(Finding(DISCONNECT, r.username, str(r.acctsessionid),
                           str(r.nasipaddress or ""), str(r.framedipaddress or ""), r.radacctid,
                           radacct_time(r.last) or now, why))  # fmt: skip
    return out


# Read and written as stored: FreeRADIUS's stock SQLite queries keep epoch seconds there.
_LAST = type_coerce(func.coalesce(radacct.c.acctupdatetime, radacct.c.acctstarttime), NullType())


def _rights(session: Session, usernames: list[str]) -> dict[str, tuple[str, int]]:
    """username → (status, shared users of its package) for these customers."""
    out: dict[str, tuple[str, int]] = {}
    for i in range(0, len(usernames), CHUNK):
        q = (
            select(Customer.username, Customer.status, MasterPackage.shared_users)
            .outerjoin(Package, Package.id == Customer.package_id)
            .outerjoin(MasterPackage, MasterPackage.id == Package.master_package_id)
            .where(Customer.username.in_(usernames[i : i + CHUNK]))
        )
        for name, status, shared in session.execute(q):
            out[name] = (str(status), shared or 1)
    return out


def run(
    factory: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> list[Finding]:
    """Close the stale sessions and queue a Disconnect for each session without a right
    (one already queued and not yet done is not queued again); returns what was done."""
    now = now or utcnow()
    with transaction(factory) as s:
        found = find(s, settings, now)
        done: list[Finding] = []
        for f in (f for f in found if f.action == CLOSE):
            closed = s.execute(
                update(radacct)
                .where(radacct.c.radacctid == f.radacct_id, radacct.c.acctstoptime.is_(None))
                .values(acctstoptime=_LAST, acctterminatecause=STALE_CAUSE)
            )
            if closed.rowcount:  # type: ignore[attr-defined]  # else its Stop came meanwhile
                done.append(f)
        cuts = [f for f in found if f.action == DISCONNECT]
        if cuts:
            done += _disconnect(s, cuts)
    for f in done:
        metrics.SESSIONS_REPAIRED.labels("closed" if f.action == CLOSE else "disconnected").inc()
    return done


def _disconnect(s: Session, cuts: list[Finding]) -> list[Finding]:
    queued = {
        str((o.payload or {}).get("Acct-Session-Id"))
        for o in s.scalars(
            select(Outbox).where(
                Outbox.kind == DISCONNECT, Outbox.status.in_(("pending", "running"))
            )
        )
    }
    by_host = {h: i for h, i in s.execute(select(Router.host, Router.id))}
    names = sorted({f.username for f in cuts})
    homes = {
        name: rid
        for name, rid in s.execute(
            select(Customer.username, Customer.router_id).where(Customer.username.in_(names))
        )
    }
    done = []
    for f in cuts:
        router_id = by_host.get(f.nas, homes.get(f.username))
        if f.session_id in queued or router_id is None:
            continue
        live = LiveSession(f.username, f.session_id, f.ip, f.nas)
        s.add(sessions.work(DISCONNECT, live, router_id))
        s.add(
            AuditLog(
                actor=ACTOR, action="disconnect", entity="radacct", entity_id=f.radacct_id,
                before=None, after={"username": f.username, "session": f.session_id,
                                    "nas": f.nas, "why": f.why},
            )
        )  # fmt: skip
        done.append(f)
    return done
