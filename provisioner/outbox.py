"""The outbox worker: drains NAS work written in the same transaction as its cause.

A row is claimed atomically (``pending`` → ``running``, marked with the claiming
instance and a lease), so several daemon instances never run it twice. When the
instance that claimed a row dies, the row is taken over as soon as its heartbeat is
stale (``instances``), or when it restarts; the lease only covers a live instance whose
handler hangs. A result is recorded only while the claim is still the worker's own.

Work for different routers runs concurrently (``outbox_concurrency`` routers at once),
one router's rows in order; a router that leaves a RADIUS request unanswered gets no
more RADIUS requests in that pass, so a dead router costs one timeout per pass and never
holds up the others. Failures back off exponentially; a router that is down gets its
work when it is back. A CoA that goes unanswered ``coa_max_attempts`` times becomes a
Disconnect, so a customer never keeps an old rate because its router stopped answering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from nas_adapters.errors import NasError, PermanentNasError, TemporaryNasError
from provisioner import instances, metrics
from provisioner.config import Settings
from provisioner.db import transaction
from provisioner.models import Activation, Outbox, utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
MAX_BACKOFF = 300.0
Handler = Callable[[sessionmaker[Session], Settings, Outbox], None]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** max(0, attempts - 1))


class Retry(Exception):
    """The work could not be done now (e.g. the router is down): try again later."""


def _claim(factory: sessionmaker[Session], limit: int) -> list[int]:
    me = instances.name()
    instances.beat(factory)  # claims must name a live instance, daemon or not
    now = utcnow()
    with transaction(factory) as s:
        # Expired leases: a live worker hung on these (dead ones are taken over sooner).
        s.execute(
            update(Outbox)
            .where(Outbox.status == "running", Outbox.next_attempt_at < now)
            .values(status="pending", claimed_by=None)
        )
        ids = list(
            s.scalars(
                select(Outbox.id)
                .where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
                .order_by(Outbox.id)
                .limit(limit)
            )
        )
    claimed = []
    for i in ids:
        with transaction(factory) as s:
            res = s.execute(
                update(Outbox)
                .where(Outbox.id == i, Outbox.status == "pending")
                .values(status="running", next_attempt_at=now + LEASE, claimed_by=me)
            )
            if res.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(i)
    return claimed


def _finish(
    factory: sessionmaker[Session], row_id: int, error: str | None, permanent: bool
) -> bool:
    """Record a try's outcome; False (and nothing recorded) when the claim is no longer
    ours: another instance took it over, thinking us dead, and does the work again."""
    with transaction(factory) as s:
        row = s.scalars(select(Outbox).where(Outbox.id == row_id).with_for_update()).first()
        if row is None or row.status != "running" or row.claimed_by != instances.name():
            log.warning("outbox row %s was taken over by another instance; result dropped", row_id)
            return False
        row.attempts += 1
        row.claimed_by = None
        if error is None:
            row.status, row.done_at, row.last_error = "done", utcnow(), None
        elif permanent:
            row.status, row.last_error, row.done_at = "failed", error, utcnow()
        else:
            row.status, row.last_error = "pending", error
            row.next_attempt_at = utcnow() + timedelta(seconds=backoff(row.attempts))
        _after(s, row)
    return True


def _after(session: Session, row: Outbox) -> None:
    """Reflect the row's fate on the activation it belongs to (pending/applied/failed)."""
    if row.activation_id is None:
        return
    # Locked: rows of one activation may finish at once (other routers, other instances),
    # and each must see the others' outcome.
    act = session.scalars(
        select(Activation).where(Activation.id == row.activation_id).with_for_update()
    ).first()
    if act is None:
        return
    rows = list(session.scalars(select(Outbox).where(Outbox.activation_id == act.id)))
    was = act.status
    if any(r.status == "failed" for r in rows):
        act.status = "failed"
        act.error = "; ".join(r.last_error or "" for r in rows if r.status == "failed")
    elif all(r.status == "done" for r in rows):
        act.status, act.error = "applied", None
    else:
        act.status = "pending"
        act.error = next((r.last_error for r in rows if r.last_error), None)
    if act.status != was and act.status in ("applied", "failed"):
        # The activation's event, once: when its last work completes (or one fails).
        from provisioner import events
        from provisioner.models import Customer, Package

        c, p = session.get(Customer, act.customer_id), session.get(Package, act.package_id)
        if c is not None:
            events.emit(
                session, f"activation.{act.status}", events.activation_body(act, c, p),
                reseller_id=c.reseller_id, customer_id=c.id,
            )  # fmt: skip


RADIUS_KINDS = frozenset({"coa", "disconnect"})


def drain(
    factory: sessionmaker[Session], settings: Settings, *, limit: int = 100
) -> dict[str, int]:
    """Run due work once; returns counts by outcome. Safe to call from several instances.

    First takes over the work of dead instances. Rows of one router run in order, routers
    side by side; after a router leaves a RADIUS request unanswered, its other RADIUS
    rows of this pass are not sent and count as unanswered too (they retry with it).
    """
    instances.take_over(factory, settings)
    ids = _claim(factory, limit)
    if not ids:
        return {"done": 0, "retry": 0, "failed": 0}
    with transaction(factory) as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.id)))
        s.expunge_all()
    groups: dict[int | None, list[Outbox]] = {}
    for row in rows:
        groups.setdefault(row.router_id, []).append(row)

    def run_group(group: list[Outbox]) -> list[str]:
        outcomes, silent = [], None
        for row in group:
            if silent is not None and row.kind in RADIUS_KINDS:
                _finish(factory, row.id, f"not sent: {silent}", permanent=False)
                outcomes.append("retry")
                continue
            outcome, exc = _run(factory, settings, row)
            if isinstance(exc, TemporaryNasError) and row.kind in RADIUS_KINDS:
                silent = str(exc)
            outcomes.append(outcome)
        return outcomes

    counts = {"done": 0, "retry": 0, "failed": 0}
    if len(groups) == 1:
        results = [run_group(rows)]
    else:
        workers = min(settings.outbox_concurrency, len(groups))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="outbox") as pool:
            results = list(pool.map(run_group, groups.values()))
    for outcomes in results:
        for outcome in outcomes:
            counts[outcome] += 1
    return counts


def _run(
    factory: sessionmaker[Session], settings: Settings, row: Outbox
) -> tuple[str, Exception | None]:
    """Run one claimed row's handler and record the outcome: (done|retry|failed, error)."""
    fn = HANDLERS.get(row.kind)
    try:
        if fn is None:
            raise PermanentNasError(f"no handler for outbox work {row.kind!r}")
        fn(factory, settings, row)
    except PermanentNasError as exc:
        _finish(factory, row.id, str(exc), permanent=True)
        return "failed", exc
    except (Retry, NasError) as exc:
        _finish(factory, row.id, str(exc), permanent=False)
        return "retry", exc
    except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the queue
        log.exception("outbox row %s failed", row.id)
        _finish(factory, row.id, f"{type(exc).__name__}: {exc}", permanent=False)
        return "retry", exc
    _finish(factory, row.id, None, permanent=False)
    return "done", None


@handler("sync_router")
def _sync_router(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    from provisioner.sync import sync_router

    assert row.router_id is not None
    result = sync_router(factory, settings, row.router_id, trigger="change")
    if result.status == "busy":
        raise Retry("another sync of this router is running")
    if result.status not in ("ok", "conflicts"):  # conflicts: the run and /metrics say so
        raise Retry(result.error or result.status)


def pending(session: Session, **filters: Any) -> list[Outbox]:
    q = select(Outbox).where(Outbox.status.in_(("pending", "running")))
    for k, v in filters.items():
        q = q.where(getattr(Outbox, k) == v)
    return list(session.scalars(q))


def _router_for(factory: sessionmaker[Session], router_id: int | None) -> tuple[str, str, int, str]:
    from provisioner.models import Router

    with transaction(factory) as s:
        r = s.get(Router, router_id) if router_id else None
        if r is None:
            raise PermanentNasError("the router of this session is gone")
        return r.name, r.host, r.coa_port, r.radius_secret


@handler("coa")
def _coa(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    """Push a new rate to a live session. A NAK, or ``coa_max_attempts`` tries without an
    answer, ends the session instead: its next login gets the new terms."""
    from nas_adapters.radius_client import send_coa

    router, host, port, secret = _router_for(factory, row.router_id)
    ident = {k: v for k, v in row.payload.items() if k != "Mikrotik-Rate-Limit"}
    if row.attempts >= settings.coa_max_attempts:
        log.warning(
            "CoA for %s unanswered after %d tries: sending Disconnect to %s",
            row.payload.get("User-Name"), row.attempts, host,
        )  # fmt: skip
        _end_session(settings, router, host, port, secret, ident)
        return
    reply = _counted(
        router, "coa", send_coa, host, port, secret, row.payload,
        timeout=settings.coa_timeout_seconds,
    )  # fmt: skip
    if not reply.accepted:
        # CoA refused (e.g. the router cannot change this session): reconnect it instead.
        _end_session(settings, router, host, port, secret, ident)


@handler("disconnect")
def _disconnect(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    router, host, port, secret = _router_for(factory, row.router_id)
    _end_session(settings, router, host, port, secret, row.payload)


def _counted(router: str, request: str, send: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Send one CoA or Disconnect; count its reply (ack, nak) or its absence (timeout)."""
    try:
        reply = send(*args, **kw)
    except TemporaryNasError:
        metrics.record_radius(router, request, "timeout")
        raise
    metrics.record_radius(router, request, "ack" if reply.accepted else "nak")
    return reply


def _end_session(
    settings: Settings, router: str, host: str, port: int, secret: str, ident: dict[str, Any]
) -> None:
    from nas_adapters.radius_client import send_disconnect

    reply = _counted(
        router, "disconnect", send_disconnect, host, port, secret, ident,
        timeout=settings.coa_timeout_seconds,
    )  # fmt: skip
    if not reply.accepted and reply.error_cause not in (503,):  # 503: session already gone
        raise PermanentNasError(f"Disconnect-NAK from {host} (Error-Cause {reply.error_cause})")


@handler("other")
def _other(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    from nas_adapters.other import run_action
    from provisioner import webhooks

    # An endpoint (registered, or made from other_action_url): a signed, logged delivery.
    if not webhooks.other_deliver(factory, settings, row):
        run_action(row.payload, command=settings.other_action_command)
