"""Live sessions: what a change of a customer means for it while it is online.

Whatever changes a customer (an activation, an admin's edit, expiry, removal) hands the
customer's terms before and after to ``queue``. A change CoA can carry (a new rate) is
pushed as a CoA-Request; one it cannot (cut off, another address, cap or router, the
customer gone) ends the session with a Disconnect-Request, so the next login gets the
new terms. The work goes to the outbox in the caller's transaction; nothing is sent here.
Open sessions are found in ``radacct`` (sessions that RADIUS accounted for); a customer
allowed several at once (shared users) gets one CoA or Disconnect per open session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.models import Customer, CustomerStatus, Outbox, Router
from provisioner.radius_tables import radacct
from provisioner.snapshots import MasterSpec
from provisioner.state import master_spec

COA = "coa"
DISCONNECT = "disconnect"


@dataclass(frozen=True)
class Terms:
    """What of a customer an open session depends on."""

    username: str
    router_id: int | None
    active: bool
    static_ip: str | None = None
    rate: str | None = None  # Mikrotik-Rate-Limit of its package
    volume_cap: int | None = None


@dataclass(frozen=True)
class LiveSession:
    username: str
    session_id: str
    ip: str
    nas: str


def terms_of(c: Customer) -> Terms:
    m = c.package.master_package if c.package is not None else None
    return Terms(
        username=c.username,
        router_id=c.router_id,
        active=c.status == CustomerStatus.active,
        static_ip=c.static_ip,
        rate=rate_of(master_spec(m), c.throttled_until is not None) if m is not None else None,
        volume_cap=m.volume_cap if m is not None else None,
    )


def rate_of(m: MasterSpec, throttled: bool) -> str:
    """The Mikrotik-Rate-Limit a customer of ``m`` gets: the package's, or its reduced
    (fair usage) rate while the customer is throttled."""
    if throttled and m.fup_rate is not None:
        return m.fup_rate.render()
    return m.rate.render()


def action(before: Terms, after: Terms | None) -> str | None:
    """``disconnect``, ``coa`` or None for an open session of ``before`` (pure).

    Only a change of rate is carried by CoA; RouterOS cannot move a live session to
    another address or router, and a volume cap is read at login. Another pool waits for
    the next login: the address the session has stays routable until then.
    """
    if after is None:
        return DISCONNECT
    if not after.active:
        return DISCONNECT if before.active else None
    if (before.username, before.router_id, before.static_ip, before.volume_cap) != (
        after.username,
        after.router_id,
        after.static_ip,
        after.volume_cap,
    ):
        return DISCONNECT
    if before.rate != after.rate and after.rate is not None:
        return COA
    return None


def work(
    what: str,
    s: LiveSession,
    router_id: int,
    *,
    activation_id: int | None = None,
    rate: str | None = None,
) -> Outbox:
    """The outbox row that sends ``what`` (CoA or Disconnect) to this live session."""
    payload: dict[str, str] = {"User-Name": s.username, "Acct-Session-Id": s.session_id}
    if s.ip:
        payload["Framed-IP-Address"] = s.ip
    if rate is not None:
        payload["Mikrotik-Rate-Limit"] = rate
    return Outbox(kind=what, router_id=router_id, activation_id=activation_id, payload=payload)


def open_sessions(session: Session, usernames: Iterable[str]) -> dict[str, list[LiveSession]]:
    """Every open ``radacct`` session of each of these users, oldest first (one query per
    500 users); users with none are left out."""
    names = sorted(set(usernames))
    out: dict[str, list[LiveSession]] = {}
    for i in range(0, len(names), 500):  # SQLite caps bound parameters per statement
        rows = session.execute(
            select(
                radacct.c.username,
                radacct.c.acctsessionid,
                radacct.c.framedipaddress,
                radacct.c.nasipaddress,
            )
            .where(radacct.c.username.in_(names[i : i + 500]), radacct.c.acctstoptime.is_(None))
            .order_by(radacct.c.radacctid)
        )
        for r in rows:
            live = LiveSession(r[0], str(r[1]), str(r[2] or ""), str(r[3] or ""))
            out.setdefault(r[0], []).append(live)
    return out


def queue(
    session: Session,
    changes: Iterable[tuple[Terms, Terms | None]],
    *,
    activation_id: int | None = None,
) -> int:
    """Queue CoA/Disconnect work for every open session of every (before, after) whose
    user is online: one row per session, each to the router that holds it.

    Returns how many rows were queued.
    """
    wanted = [(b, a, action(b, a)) for b, a in changes]
    wanted = [(b, a, what) for b, a, what in wanted if what is not None]
    live = open_sessions(session, (b.username for b, _, _ in wanted))
    # The router holding a session is the NAS that accounted for it, else the customer's
    # router as it was. One lookup for all of them: a speed change may reach thousands.
    by_host: dict[str, int] = (
        {h: i for h, i in session.execute(select(Router.host, Router.id))} if live else {}
    )
    n = 0
    for before, after, what in wanted:
        for s in live.get(before.username, ()):
            router_id = by_host.get(s.nas, before.router_id)
            if router_id is None:
                continue
            rate = after.rate if what == COA and after is not None else None
            session.add(work(what, s, router_id, activation_id=activation_id, rate=rate))
            n += 1
    if n:
        session.flush()
    return n
