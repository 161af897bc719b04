"""Signed webhooks: endpoints, the fan-out of events into deliveries, and their delivery.

Each event (``events``) becomes one delivery per endpoint that wants its type and may see
it (an admin's endpoint sees every event, an operator's its subtree's), in a transaction
of its own. Deliveries follow the Standard Webhooks specification (the
``standardwebhooks`` package signs them): the same ``webhook-id`` on every try, a fresh
timestamp and signature each time. They are claimed like outbox work (``SKIP LOCKED`` on
PostgreSQL, marked with the instance, taken back when it restarts or dies) and sent by
the ``Dispatcher``'s own threads, at most ``concurrency`` at once per endpoint, each
bounded by the endpoint's timeout: a slow or dead receiver holds only its own slots and
never an activation or another receiver. A failed try backs off exponentially for a
day; an endpoint that failed for a day without a success is disabled (``webhook.disabled``).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from provisioner import access, events, instances
from provisioner.auth import Principal
from provisioner.config import Settings
from provisioner.db import reading, transaction
from provisioner.errors import Forbidden, NotFound, ValidationError
from provisioner.models import (
    DeliveryAttempt,
    Event,
    Reseller,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)  # a claim outlives any endpoint's timeout (at most 300 s)
FAN_OUT_CHUNK = 500
ALL = "*"
OTHER = "other"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


# ---- endpoints -------------------------------------------------------------------------


def _types(given: list[str]) -> list[str]:
    if not given:
        raise ValidationError("name at least one event type (or *)", field="events")
    wrong = [t for t in given if t != ALL and t not in events.TYPES]
    if wrong:
        raise ValidationError(
            f"unknown event type {wrong[0]!r}; known: {', '.join(events.TYPES)}", field="events"
        )
    return sorted(set(given))


def _url(url: str, restricted: bool = False) -> str:
    url = url.strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValidationError(f"not a URL: {exc}", field="url") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationError("must be an http:// or https:// URL", field="url")
    if restricted:
        why = internal(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
        if why:
            raise ValidationError(why, field="url")
    return url


def blocked(ip: str) -> bool:
    """An address a restricted endpoint may not reach: loopback, private (RFC 1918, and
    the carrier-grade NAT range an ISP's own routers sit on), link-local, unique-local,
    multicast, unspecified or reserved: anything not globally routable."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return (
        not addr.is_global or addr.is_loopback or addr.is_private or addr.is_link_local
        or addr.is_multicast or addr.is_unspecified or addr.is_reserved
    )  # fmt: skip


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """getaddrinfo of a TCP destination (the addresses a connection would try)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def internal(host: str, port: int) -> str | None:
    """Why ``host`` may not be a restricted endpoint's (None: it may): it does not
    resolve, or one of its addresses is internal (any one: a connection may try it)."""
    try:
        infos = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        return f"{host} does not resolve: {exc}"
    for info in infos:
        if blocked(str(info[4][0])):
            return (f"{host} resolves to {info[4][0]}, an internal address: "
                    "endpoints must be reachable on the internet")  # fmt: skip
    return None


def restricted(ep: WebhookEndpoint, settings: Settings | None = None,
               restrict_admins: bool = False) -> bool:  # fmt: skip
    """Whether this endpoint may reach only public addresses: an operator's always, an
    admin's when ``webhook_restrict_admins`` (an ISP's own systems often sit on a private
    network, so admins may by default)."""
    if settings is not None:
        restrict_admins = settings.webhook_restrict_admins
    return ep.reseller_id is not None or restrict_admins


def _owner(session: Session, principal: Principal) -> int | None:
    if principal.role == "admin":
        return None
    if principal.role == "reseller":
        return access.own_reseller(session, principal).id
    raise Forbidden("only admins and operators manage webhooks")


def endpoints(session: Session, principal: Principal) -> list[WebhookEndpoint]:
    """The endpoints this caller manages: an admin all, an operator its own."""
    q = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    owner = _owner(session, principal)
    if principal.role != "admin":
        q = q.where(WebhookEndpoint.reseller_id == owner)
    return list(session.scalars(q))


def endpoint(session: Session, principal: Principal, endpoint_id: int) -> WebhookEndpoint:
    ep = session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id < 2**31 else None
    if ep is None or (
        principal.role != "admin" and ep.reseller_id != _owner(session, principal)
    ):
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return ep


def create(
    session: Session,
    principal: Principal,
    url: str,
    types: list[str],
    *,
    description: str = "",
    concurrency: int = 4,
    timeout_seconds: float = 10.0,
    kind: str = "webhook",
    restrict_admins: bool = False,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (shown this once; stored encrypted). ``kind`` other
    (admins): the "other" adapter's, told of Other customers' changes only. An operator's
    URL (an admin's too when ``restrict_admins``) must not reach an internal address."""
    if kind not in ("webhook", OTHER):
        raise ValidationError("must be webhook or other", field="kind")
    if kind == OTHER and principal.role != "admin":
        raise Forbidden("only an admin sets the other adapter's endpoint")
    secret = new_secret()
    owner = _owner(session, principal)
    ep = WebhookEndpoint(
        url=_url(url, owner is not None or restrict_admins),
        events=_types(types) if kind != OTHER else ["other.action"],
        secret=secret, reseller_id=owner,
        kind=kind, description=description, enabled=True, concurrency=concurrency,
        timeout_seconds=timeout_seconds, created_by=principal.actor,
    )  # fmt: skip
    session.add(ep)
    session.flush()
    return ep, secret


def edit(
    session: Session, principal: Principal, endpoint_id: int, *, restrict_admins: bool = False,
    **changes: Any,
) -> WebhookEndpoint:
    """Change an endpoint's url, events, description, concurrency, timeout or enabled; a
    re-enabled endpoint starts afresh (its pending deliveries go out again)."""
    ep = endpoint(session, principal, endpoint_id)
    if changes.get("url") is not None:
        ep.url = _url(changes["url"], restricted(ep, restrict_admins=restrict_admins))
    if changes.get("events") is not None:
        ep.events = _types(changes["events"])
    for k in ("description", "concurrency", "timeout_seconds"):
        if changes.get(k) is not None:
            setattr(ep, k, changes[k])
    if changes.get("enabled") is not None:
        if changes["enabled"] and not ep.enabled:
            ep.failing_since, ep.disabled_at = None, None
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == ep.id, WebhookDelivery.status == "failed")
                .where(WebhookDelivery.created_at > utcnow() - timedelta(days=1))
                .values(status="pending", next_attempt_at=utcnow())
            )
        ep.enabled = bool(changes["enabled"])
    session.flush()
    return ep


def rotate(session: Session, principal: Principal, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret for this endpoint (shown this once); the old one signs nothing more."""
    ep = endpoint(session, principal, endpoint_id)
    secret = new_secret()
    ep.secret = secret
    session.flush()
    return ep, secret


def remove(session: Session, principal: Principal, endpoint_id: int) -> None:
    ep = endpoint(session, principal, endpoint_id)
    ids = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == ep.id)
    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == ep.id))
    session.delete(ep)
    session.flush()


def deliveries(
    session: Session, principal: Principal, endpoint_id: int, *, status: str | None = None,
    limit: int = 100,
) -> list[tuple[WebhookDelivery, Event]]:
    """An endpoint's deliveries, newest first, with their events."""
    ep = endpoint(session, principal, endpoint_id)
    q = (
        select(WebhookDelivery, Event)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == ep.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if status:
        q = q.where(WebhookDelivery.status == status)
    return [(d, e) for d, e in session.execute(q)]


def attempts(session: Session, delivery_id: int) -> list[DeliveryAttempt]:
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
    )


def delivery(
    session: Session, principal: Principal, endpoint_id: int, delivery_id: int
) -> WebhookDelivery:
    ep = endpoint(session, principal, endpoint_id)
    d = session.get(WebhookDelivery, delivery_id) if 0 < delivery_id < 2**31 else None
    if d is None or d.endpoint_id != ep.id:
        raise NotFound(f"no delivery {delivery_id} of endpoint {endpoint_id}")
    return d


def redeliver(
    session: Session, principal: Principal, endpoint_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again now (same webhook-id, so a receiver that has it can tell)."""
    d = delivery(session, principal, endpoint_id, delivery_id)
    if d.status != "running":
        d.status, d.next_attempt_at, d.claimed_by = "pending", utcnow(), None
    session.flush()
    return d


def send_test(session: Session, principal: Principal, endpoint_id: int) -> WebhookDelivery:
    """A ``webhook.test`` event for this endpoint alone, delivered like any other."""
    ep = endpoint(session, principal, endpoint_id)
    row = events.row("webhook.test", {"endpoint_id": ep.id, "by": principal.actor},
                     reseller_id=ep.reseller_id)  # fmt: skip
    row["fanned_out"] = True  # to this endpoint only
    ev = Event(**row)
    session.add(ev)
    session.flush()
    d = WebhookDelivery(event_id=ev.id, endpoint_id=ep.id, msg_id=msg_id(ev.uid, ep.id))
    session.add(d)
    session.flush()
    return d


def msg_id(event_uid: str, endpoint_id: int) -> str:
    """The webhook-id of one event to one endpoint: the same on every try."""
    return f"msg_{event_uid[4:]}_{endpoint_id}"


# ---- fan-out ---------------------------------------------------------------------------


def _subtrees(session: Session, owners: set[int]) -> dict[int, set[int]]:
    """Each operator's subtree (itself and every reseller below it)."""
    parents = dict(session.execute(select(Reseller.id, Reseller.parent_id)).all())
    out: dict[int, set[int]] = {}
    for root in owners:
        tree = {root}
        changed = True
        while changed:
            below = {r for r, p in parents.items() if p in tree and r not in tree}
            tree |= below
            changed = bool(below)
        out[root] = tree
    return out


def wants(ep: WebhookEndpoint, ev_type: str, ev_reseller: int | None,
          trees: dict[int, set[int]]) -> bool:  # fmt: skip
    """Whether this endpoint gets this event: its type, and (an operator's) its subtree.
    An "other" adapter endpoint gets only what ``other`` sends it."""
    if ep.kind == OTHER or not (ALL in ep.events or ev_type in ep.events):
        return False
    if ep.reseller_id is None:
        return True
    return ev_reseller is not None and ev_reseller in trees.get(ep.reseller_id, set())


def fan_out(factory: sessionmaker[Session], limit: int = FAN_OUT_CHUNK) -> int:
    """Turn new events into deliveries (and reminders); returns how many events were
    fanned out. Several instances at once: each takes its own (SKIP LOCKED)."""
    from provisioner import reminders

    with reading(factory) as s:  # the usual answer, none, without SQLite's write lock
        if s.scalar(select(Event.id).where(Event.fanned_out.is_(False)).limit(1)) is None:
            return 0
    with transaction(factory) as s:
        q = select(Event).where(Event.fanned_out.is_(False)).order_by(Event.id).limit(limit)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        evs = list(s.scalars(q))
        if not evs:
            return 0
        eps = list(s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.kind != OTHER)))
        trees = _subtrees(s, {e.reseller_id for e in eps if e.reseller_id is not None})
        rows = [
            {"event_id": ev.id, "endpoint_id": ep.id, "msg_id": msg_id(ev.uid, ep.id),
             "status": "pending", "attempts": 0, "next_attempt_at": ev.at, "created_at": ev.at}
            for ev in evs for ep in eps if wants(ep, ev.type, ev.reseller_id, trees)
        ]  # fmt: skip
        if rows:
            s.execute(WebhookDelivery.__table__.insert(), rows)
        reminders.queue(s, evs)
        s.execute(
            update(Event)
            .where(Event.id.in_([e.id for e in evs]))
            .values(fanned_out=True)
            .execution_options(synchronize_session=False)
        )
        return len(evs)


# ---- delivery --------------------------------------------------------------------------


BATCH = 25  # deliveries one sending slot takes at once: sent in order on one connection


@dataclass(frozen=True)
class Claimed:
    """Deliveries of one endpoint claimed together, sent by one slot in order."""

    ids: tuple[int, ...]
    endpoint_id: int


def claim(
    factory: sessionmaker[Session], free: Callable[[int, int], int], now: datetime | None = None
) -> list[Claimed]:
    """Claim due deliveries of enabled endpoints in batches: for each endpoint at most
    ``free(endpoint id, its concurrency)`` batches (the slots this instance may still
    start for it) of up to ``BATCH`` deliveries, oldest first."""
    now = now or utcnow()
    due = (
        select(WebhookDelivery.endpoint_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
        )
        .distinct()
    )
    with reading(factory) as s:
        ready = list(s.scalars(due))
        if not ready:
            return []
        limits = dict(
            s.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.concurrency)
                .where(WebhookEndpoint.id.in_(ready))
            ).all()
        )  # fmt: skip
    me = instances.name()
    out: list[Claimed] = []
    with transaction(factory) as s:
        pg = s.get_bind().dialect.name == "postgresql"
        # Leases run out: a live instance hung on these (a dead one's are taken back sooner).
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.status == "running", WebhookDelivery.next_attempt_at < now)
            .values(status="pending", claimed_by=None)
        )
        for ep_id in ready:
            n = free(ep_id, limits.get(ep_id, 1))
            if n <= 0:
                continue
            q = (
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.endpoint_id == ep_id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.id)
                .limit(n * BATCH)
            )
            if pg:
                q = q.with_for_update(skip_locked=True)
            ids = list(s.scalars(q))
            if not ids:
                continue
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(status="running", claimed_by=me, next_attempt_at=now + LEASE)
                .execution_options(synchronize_session=False)
            )
            size = -(-len(ids) // n)  # spread over the free slots
            out += [Claimed(tuple(ids[i:i + size]), ep_id) for i in range(0, len(ids), size)]
    return out


def busy(factory: sessionmaker[Session], now: datetime | None = None) -> bool:
    """Whether there is anything for a pass to do: an event to fan out, a delivery due
    or a lease run out. One round trip (both indexed), so polling an idle daemon costs
    next to nothing."""
    now = now or utcnow()
    d, e, w = WebhookDelivery.__table__, Event.__table__, WebhookEndpoint.__table__
    due = (
        select(d.c.id)
        .join(w, w.c.id == d.c.endpoint_id)
        .where(d.c.status.in_(("pending", "running")), d.c.next_attempt_at <= now,
               w.c.enabled.is_(True))
    )  # fmt: skip
    with reading(factory) as s:
        return bool(s.scalar(select(
            select(e.c.id).where(e.c.fanned_out.is_(False)).exists() | due.exists()
        )))  # fmt: skip


def payload(ev: Any) -> str:
    """The body every endpoint gets: Standard Webhooks' {type, timestamp, data}, with
    the event's stable id."""
    return json.dumps(
        {"id": ev.uid, "type": ev.type, "timestamp": ev.at.isoformat(), "data": ev.body},
        separators=(",", ":"), sort_keys=True,
    )  # fmt: skip


def signed_headers(signer: Webhook, msg: str, body: str, now: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(msg, now, body),
        "user-agent": "provisioner-webhooks",
    }


Outcome = tuple[int | None, int, str | None]


# Each sending thread keeps one HTTP/1.1 keep-alive connection per endpoint (stdlib
# ``http.client``): a batch goes out on it in order, and the next batch of that endpoint
# on this thread reuses it. Lighter per delivery than a general client (the sender shares
# the scheduler's CPU): no pool bookkeeping, no redirects, nothing parsed but the status.
_local = threading.local()
_tls = ssl.create_default_context()


def _guarded(host: str) -> Callable[..., socket.socket]:
    """``socket.create_connection`` that refuses internal addresses and connects to the
    very address it checked (a name re-resolved in between cannot slip one in)."""

    def connect(address: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        infos = resolve(address[0], address[1])
        bad = [str(i[4][0]) for i in infos if blocked(str(i[4][0]))]
        if bad or not infos:
            raise ConnectionRefusedError(
                f"refused: {host} resolves to {bad[0] if bad else 'nothing'}, an internal "
                "address: endpoints must be reachable on the internet"
            )
        last: OSError | None = None
        for family, kind, proto, _name, addr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(addr)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last or OSError(f"{host}: no address")

    return connect


def _connection(url: str, timeout: float, guard: bool) -> tuple[http.client.HTTPConnection, str]:
    """This thread's connection for ``url`` (made on first use) and the request target."""
    conns: dict[tuple[str, str, int, float, bool], http.client.HTTPConnection]
    conns = _local.__dict__.setdefault("conns", {})
    u = urlsplit(url)
    host, https = u.hostname or "", u.scheme == "https"
    port = u.port or (443 if https else 80)
    key = (u.scheme, host, port, timeout, guard)
    c = conns.get(key)
    if c is None:
        c = (http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls) if https
             else http.client.HTTPConnection(host, port, timeout=timeout))  # fmt: skip
        if guard:
            c._create_connection = _guarded(host)  # type: ignore[attr-defined]
        conns[key] = c
    return c, (u.path or "/") + (f"?{u.query}" if u.query else "")


def _drop(url: str, timeout: float, guard: bool) -> None:
    u = urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    c = _local.__dict__.get("conns", {}).pop((u.scheme, u.hostname or "", port, timeout, guard),
                                              None)  # fmt: skip
    if c is not None:
        c.close()


def post(
    url: str, headers: dict[str, str], body: str, timeout: float, guard: bool = False
) -> Outcome:
    """POST once on this thread's keep-alive connection to the endpoint: (HTTP status or
    None, milliseconds, error or None). ``guard``: refuse internal addresses."""
    data = body.encode()
    started = time.perf_counter()
    for fresh in (False, True):
        c, target = _connection(url, timeout, guard)
        reused = c.sock is not None
        try:
            c.request("POST", target, body=data, headers=headers)
            r = c.getresponse()
            text = r.read(200)
            if not r.isclosed():  # more body than we read: this connection starts anew
                _drop(url, timeout, guard)
            break
        except (OSError, http.client.HTTPException) as exc:
            _drop(url, timeout, guard)
            stale = isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                     ConnectionResetError))  # fmt: skip
            if reused and stale and not fresh:
                continue  # the receiver closed the idle connection: once more on a new one
            ms = int((time.perf_counter() - started) * 1000)
            return None, ms, f"{type(exc).__name__}: {exc}"[:500]
    ms = int((time.perf_counter() - started) * 1000)
    if 200 <= r.status < 300:
        return r.status, ms, None
    return r.status, ms, f"HTTP {r.status}: {text.decode(errors='replace')}"


def send(factory: sessionmaker[Session], settings: Settings, delivery_id: int) -> str:
    """One try of one claimed delivery, recorded: delivered | retry | failed | dropped."""
    return send_batch(factory, settings, (delivery_id,)).get(delivery_id, "dropped")


def send_batch(
    factory: sessionmaker[Session], settings: Settings, ids: tuple[int, ...]
) -> dict[int, str]:
    """Try claimed deliveries of one endpoint in order, on one keep-alive connection,
    and record them in one transaction. After a failure the rest are not tried (they go
    back to pending as they were): a dead receiver costs one timeout a batch."""
    d, e = WebhookDelivery.__table__, Event.__table__
    with reading(factory) as s:  # plain rows: only what a request needs
        rows = s.execute(
            select(d.c.id, d.c.msg_id, d.c.endpoint_id, e.c.uid, e.c.type, e.c.at, e.c.body)
            .join(e, e.c.id == d.c.event_id)
            .where(d.c.id.in_(ids))
            .order_by(d.c.id)
        ).all()
        if not rows:
            return {}
        ep = s.get(WebhookEndpoint, rows[0].endpoint_id)
        if ep is None:
            return {}
        url, secret, timeout, kind = ep.url, ep.secret, ep.timeout_seconds, ep.kind
        guarded, failing = restricted(ep, settings), ep.failing_since is not None
    signer = Webhook(secret)
    tried: list[tuple[int, int | None, int, str | None]] = []
    for r in rows:
        body = payload(r) if kind != OTHER else json.dumps(r.body, sort_keys=True)
        # A guarded endpoint's name is resolved and checked again on each new connection.
        code, ms, error = post(url, signed_headers(signer, r.msg_id, body, utcnow()), body,
                               timeout, guarded)  # fmt: skip
        tried.append((r.id, code, ms, error))
        if error is not None:
            break
    untried = [r.id for r in rows[len(tried):]]
    return record_many(factory, settings, tried, untried, failing=failing)


def backoff(settings: Settings, attempts: int) -> float:
    return float(min(settings.webhook_backoff_max_seconds,
                     settings.webhook_backoff_seconds * 2 ** max(0, attempts - 1)))  # fmt: skip


def record(
    factory: sessionmaker[Session], settings: Settings, delivery_id: int,
    code: int | None, ms: int, error: str | None,
) -> str:
    """One try's outcome (``record_many``)."""
    return record_many(factory, settings, [(delivery_id, code, ms, error)]).get(
        delivery_id, "dropped"
    )


def record_many(
    factory: sessionmaker[Session],
    settings: Settings,
    tried: list[tuple[int, int | None, int, str | None]],
    untried: Sequence[int] = (),
    *,
    failing: bool = True,
) -> dict[int, str]:
    """Tries' outcomes, each only if its claim is still ours (else another instance took
    it over); ``untried``: claimed but not sent, back to pending as they were.
    ``failing`` False: the endpoint was not failing when the batch was read (all sent:
    nothing to clear on it)."""
    now = utcnow()
    me = instances.name()
    out: dict[int, str] = {}
    with transaction(factory) as s:
        if untried:
            s.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(list(untried)), WebhookDelivery.claimed_by == me,
                       WebhookDelivery.status == "running")
                .values(status="pending", claimed_by=None, next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
        if not tried:
            return out
        # Plain rows and two executemany statements (not ORM objects): the sender shares
        # the scheduler's CPU, and a batch of 25 is one read, one update, one insert.
        t = WebhookDelivery.__table__
        q = (
            select(t.c.id, t.c.status, t.c.claimed_by, t.c.attempts, t.c.created_at,
                   t.c.endpoint_id)
            .where(t.c.id.in_([x[0] for x in tried]))
            .order_by(t.c.id)
            .with_for_update()
        )  # fmt: skip
        mine = {r.id: r for r in s.execute(q)}
        attempts: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        window = timedelta(seconds=settings.webhook_retry_seconds)
        ep_id: int | None = None
        ok, failed_error, out_of_tries = False, None, False
        for did, code, ms, error in tried:
            d = mine.get(did)
            if d is None or d.status != "running" or d.claimed_by != me:
                log.warning("delivery %s was taken over by another instance; result dropped",
                            did)  # fmt: skip
                out[did] = "dropped"
                continue
            ep_id = d.endpoint_id
            attempts.append({"delivery_id": did, "at": now, "status_code": code,
                             "response_ms": ms, "error": error})  # fmt: skip
            change = {"b_id": did, "attempts": d.attempts + 1, "last_status": code,
                      "last_ms": ms, "last_error": error, "claimed_by": None}  # fmt: skip
            if error is None:
                change.update(status="delivered", delivered_at=now,
                              next_attempt_at=now)  # fmt: skip
                ok = True
                out[did] = "delivered"
            else:
                failed_error = error
                created = d.created_at if d.created_at.tzinfo else d.created_at.replace(
                    tzinfo=now.tzinfo)  # SQLite hands back naive times
                if now - created >= window:
                    change.update(status="failed", delivered_at=None, next_attempt_at=now)
                    out_of_tries = True
                    out[did] = "failed"
                else:
                    later = now + timedelta(seconds=backoff(settings, d.attempts + 1))
                    change.update(status="pending", delivered_at=None, next_attempt_at=later)
                    out[did] = "retry"
            changes.append(change)
        if changes:
            s.execute(
                update(t).where(t.c.id == bindparam("b_id")).values(
                    {k: bindparam(k) for k in changes[0] if k != "b_id"}
                ),
                changes,
            )
        if ep_id is not None and failed_error is None and failing:
            s.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == ep_id, WebhookEndpoint.failing_since.is_not(None))
                .values(failing_since=None)
            )  # a success: not failing (the usual case: no row changes)
        elif ep_id is not None and failed_error is not None:
            ep = s.get(WebhookEndpoint, ep_id)
            if ep is not None:
                # A batch stops at its first failure: successes before it reset the clock.
                ep.failing_since = now if ok else (ep.failing_since or now)
                since = ep.failing_since or now
                # A day without a success: a delivery out of tries, or failures since then.
                if ep.enabled and (out_of_tries or now - since >= window):
                    ep.enabled, ep.disabled_at = False, now
                    ep.failing_since = since
                    log.warning("webhook endpoint %s (%s) disabled: failing since %s",
                                ep.id, ep.url, since.isoformat())  # fmt: skip
                    events.emit(s, "webhook.disabled", {
                        "endpoint_id": ep.id, "url": ep.url, "failing_since":
                        since.isoformat(), "last_error": failed_error,
                    }, reseller_id=ep.reseller_id)  # fmt: skip
        if attempts:
            s.execute(DeliveryAttempt.__table__.insert(), attempts)
    return out


def counts(session: Session) -> dict[str, int]:
    return dict(
        session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()
    )


# ---- the dispatcher --------------------------------------------------------------------


Counts = dict[str, int]


class Dispatcher:
    """Fans events out and sends deliveries and reminders on threads of its own, inside
    ``serve``: never on the scheduler's or the outbox's threads, so nothing they do waits
    on a receiver."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory, self.settings = factory, settings
        self.pool = ThreadPoolExecutor(settings.webhook_workers, thread_name_prefix="webhook",
                                       initializer=self._lower)  # fmt: skip
        self.inflight: dict[int, int] = {}
        self.futures: dict[Future[None], Claimed] = {}
        self.total = 0
        self.lock = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        # Reminders on a thread of their own: a slow mail server holds up no webhook.
        self.messages = threading.Thread(target=self._reminders, name="reminders", daemon=True)

    def _lower(self) -> None:
        """This thread yields the CPU to the daemon's other work (``webhook_nice``):
        deliveries may wait a moment, activations and the scheduler should not."""
        nice = self.settings.webhook_nice
        if nice and hasattr(os, "setpriority"):
            try:  # on Linux a thread id names that thread alone
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            except OSError as exc:
                log.debug("webhooks: no nice %d for this thread: %s", nice, exc)

    def start(self) -> Dispatcher:
        self.thread.start()
        self.messages.start()
        return self

    def _reminders(self) -> None:
        from provisioner import reminders

        self._lower()
        while not self.stopping.is_set():
            try:
                reminders.send_due(self.factory, self.settings)
            except Exception:  # noqa: BLE001 - the database may be away for a moment
                log.exception("reminders: pass failed")
            self.stopping.wait(max(self.settings.webhook_poll_seconds, 1.0))

    def stop(self, wait: bool = False) -> None:
        """Stop sending; batches claimed but not started go back to pending at once (a
        batch being sent is recorded when ``wait``, else taken back at the next start)."""
        self.stopping.set()
        with self.lock:
            self.lock.notify_all()
        if wait:
            self.thread.join(timeout=5)
        self.pool.shutdown(wait=wait, cancel_futures=True)
        left = [i for f, c in list(self.futures.items()) if f.cancelled() for i in c.ids]
        if left:
            record_many(self.factory, self.settings, [], left)

    def _free(self, endpoint_id: int, concurrency: int) -> int:
        room = self.settings.webhook_workers - self.total
        return max(0, min(room, concurrency - self.inflight.get(endpoint_id, 0)))

    def _done(self, c: Claimed) -> None:
        with self.lock:
            self.inflight[c.endpoint_id] -= 1
            self.total -= 1
            self.lock.notify_all()

    def _run(self, c: Claimed) -> None:
        try:
            send_batch(self.factory, self.settings, c.ids)
        except Exception:  # noqa: BLE001 - one delivery's bug must not stop the others
            log.exception("webhook deliveries %s", c.ids)
        finally:
            self._done(c)

    def tick(self) -> tuple[int, bool]:
        """One pass: fan out, start the deliveries that may start. Returns (batches
        started, whether more are waiting: a batch was full)."""
        if not busy(self.factory):  # the idle daemon's pass: one small query
            return 0, False
        while fan_out(self.factory) >= FAN_OUT_CHUNK:
            pass
        with self.lock:
            claimed = claim(self.factory, self._free)
            for c in claimed:
                self.inflight[c.endpoint_id] = self.inflight.get(c.endpoint_id, 0) + 1
                self.total += 1
        for c in claimed:
            f = self.pool.submit(self._run, c)
            self.futures[f] = c
            f.add_done_callback(self._forget)
        return len(claimed), any(len(c.ids) == BATCH for c in claimed)

    def _forget(self, f: Future[None]) -> None:
        if not f.cancelled():
            self.futures.pop(f, None)

    def _loop(self) -> None:
        self._lower()
        while not self.stopping.is_set():
            try:
                _started, backlog = self.tick()
            except Exception:  # noqa: BLE001 - the database may be away for a moment
                log.exception("webhooks: pass failed")
                backlog = False
            if backlog:  # more due: claim again as soon as a slot frees
                with self.lock:
                    self.lock.wait(self.settings.webhook_poll_seconds)
            else:  # caught up: a poll interval's events go out together, in batches
                self.stopping.wait(self.settings.webhook_poll_seconds)


def drain(factory: sessionmaker[Session], settings: Settings, *, rounds: int = 50) -> Counts:
    """Fan out and send what is due now, on this thread (the CLI, tests): counts."""
    from provisioner import reminders

    out: dict[str, int] = {}
    for _ in range(rounds):
        fan_out(factory)
        reminders.send_due(factory, settings)
        claimed = claim(factory, lambda _e, c: c)
        if not claimed:
            break
        for c in claimed:
            for r in send_batch(factory, settings, c.ids).values():
                out[r] = out.get(r, 0) + 1
    return out



# ---- retention -------------------------------------------------------------------------


PRUNE_BATCH = 1000


def prune(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None,
    batch: int = PRUNE_BATCH,
) -> dict[str, int]:
    """Remove what is older than ``event_retention_days``: deliveries delivered or failed
    (a failed one is kept until redelivered or that old) with their attempts, reminder
    messages no longer pending, then events nothing refers to any more. In transactions
    of ``batch`` rows each, so the tables are never locked for long. Pending deliveries
    (a disabled endpoint's) stay with their events until sent or their endpoint removed.
    Returns how many of each were removed."""
    now = now or utcnow()
    # Never sooner than customer.expiring can be emitted again for the same expiry.
    days = max(settings.event_retention_days, settings.reminder_days_ahead + 1)
    cutoff = now - timedelta(days=days)
    from provisioner.models import ReminderMessage

    out = {"deliveries": 0, "attempts": 0, "reminders": 0, "events": 0}
    d, m, e = WebhookDelivery.__table__, ReminderMessage.__table__, Event.__table__

    def chunks(q: Any, work: Callable[[Session, list[int]], None]) -> int:
        n = 0
        while True:
            with transaction(factory) as s:
                ids = list(s.scalars(q.limit(batch)))
                if ids:
                    work(s, ids)
            n += len(ids)
            if len(ids) < batch:
                return n

    def drop_deliveries(s: Session, ids: list[int]) -> None:
        r = s.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids)))
        out["attempts"] += r.rowcount or 0  # type: ignore[attr-defined]
        s.execute(delete(d).where(d.c.id.in_(ids)))

    out["deliveries"] = chunks(
        select(d.c.id).where(d.c.status.in_(("delivered", "failed")), d.c.created_at < cutoff)
        .order_by(d.c.id), drop_deliveries,
    )  # fmt: skip
    out["reminders"] = chunks(
        select(m.c.id).where(m.c.status.not_in(("pending", "running")), m.c.created_at < cutoff)
        .order_by(m.c.id), lambda s, ids: s.execute(delete(m).where(m.c.id.in_(ids))),
    )  # fmt: skip
    out["events"] = chunks(
        select(e.c.id).where(
            e.c.at < cutoff, e.c.fanned_out.is_(True),
            ~select(d.c.id).where(d.c.event_id == e.c.id).exists(),
            ~select(m.c.id).where(m.c.event_id == e.c.id).exists(),
        ).order_by(e.c.id), lambda s, ids: s.execute(delete(e).where(e.c.id.in_(ids))),
    )  # fmt: skip
    return out


# ---- the "other" adapter as a subscriber -----------------------------------------------


def other_endpoint(session: Session, settings: Settings) -> WebhookEndpoint | None:
    """The "other" adapter's endpoint: the one registered (kind other), else one made
    once from ``other_action_url`` (its secret: ``provisioner webhook rotate``)."""
    ep = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.kind == OTHER).order_by(WebhookEndpoint.id)
    ).first()
    if ep is None and settings.other_action_url:
        ep = WebhookEndpoint(
            url=settings.other_action_url, events=[], secret=new_secret(), kind=OTHER,
            description="the other adapter (other_action_url)", enabled=True, concurrency=4,
            timeout_seconds=10.0, created_by="config",
        )  # fmt: skip
        session.add(ep)
        session.flush()
        log.warning(
            "the other adapter now delivers signed to %s (webhook endpoint %d): "
            "'provisioner webhook rotate %d' shows a secret to verify its signatures with",
            ep.url, ep.id, ep.id,
        )  # fmt: skip
    return ep


def other_body(session: Session, payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """What the adapter's system needs to provision: the change (customer, package,
    status, expiry) and, from its master package now, rates, cap, fair usage and the
    customer's delegated IPv6 prefix. Returns (body, the customer or None)."""
    from provisioner.models import Customer, Ipv6Prefix

    c = session.scalars(
        select(Customer).where(Customer.username == payload.get("customer"))
    ).first()
    body: dict[str, Any] = {**payload}
    m = c.package.master_package if c is not None and c.package is not None else None
    removed = payload.get("status") == "removed"
    if m is not None and not removed:
        prefix = session.scalar(select(Ipv6Prefix.prefix).where(Ipv6Prefix.customer_id == c.id))  # type: ignore[union-attr]
        body.update(
            master_package=m.name, rate_down=m.rate_down, rate_up=m.rate_up,
            volume_cap=m.volume_cap, fup_threshold=m.fup_threshold, fup_rate_down=m.fup_down,
            fup_rate_up=m.fup_up, ipv6_prefix=prefix,
            throttled=c is not None and c.throttled_until is not None,
        )  # fmt: skip
    return body, c


def other_deliver(factory: sessionmaker[Session], settings: Settings, outbox_row: Any) -> bool:
    """Deliver an outbox row of the "other" adapter as a signed delivery to its endpoint
    (logged, redeliverable; the outbox retries it, so its activation follows the
    outcome). False: no endpoint (then a command, if configured, runs instead)."""
    from nas_adapters.errors import PermanentNasError, TemporaryNasError
    from provisioner.outbox import Retry

    key = f"other:{outbox_row.id}"
    with transaction(factory) as s:
        ep = other_endpoint(s, settings)
        if ep is None:
            return False
        ev = s.scalars(select(Event).where(Event.key == key)).first()
        if ev is None:
            body, c = other_body(s, outbox_row.payload)
            r = events.row("other.action", body, key=key, customer_id=c.id if c else None,
                           reseller_id=c.reseller_id if c else None)  # fmt: skip
            r["body"] = {**body, "event_id": r["uid"]}
            r["fanned_out"] = True  # for the adapter's endpoint alone
            ev = Event(**r)
            s.add(ev)
            s.flush()
        d = s.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.event_id == ev.id, WebhookDelivery.endpoint_id == ep.id
            )
        ).first()
        if d is None:
            d = WebhookDelivery(event_id=ev.id, endpoint_id=ep.id, msg_id=msg_id(ev.uid, ep.id))
            s.add(d)
            s.flush()
        if d.status == "delivered":
            return True
        if d.status == "running":
            raise Retry("the other adapter's delivery is being sent")
        if not ep.enabled:
            raise Retry(f"webhook endpoint {ep.id} of the other adapter is disabled")
        d.status, d.claimed_by, d.next_attempt_at = "running", instances.name(), utcnow() + LEASE
        did, url = d.id, ep.url
    outcome = send(factory, settings, did)
    if outcome == "delivered":
        return True
    with transaction(factory) as s:
        d = s.get(WebhookDelivery, did)
        code, error = (d.last_status, d.last_error) if d else (None, outcome)
        refused = code is not None and 400 <= code < 500 and code not in (408, 429)
        if refused and d is not None and d.status == "pending":
            d.status = "failed"  # the system refused it: a redelivery by hand may follow
    if refused:
        raise PermanentNasError(f"webhook {url}: {error}", nas="other")
    raise TemporaryNasError(f"webhook {url}: {error}", nas="other")
