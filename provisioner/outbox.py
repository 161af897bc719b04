"""The outbox worker: drains NAS work written in the same transaction as its cause.

A row is claimed atomically (``pending`` → ``running`` with a lease), so several daemon
instances never run it twice; a crash leaves it ``running`` until the lease ends, and
it is then picked up again. Failures back off exponentially; a router that is down gets
its work when it is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from nas_adapters.errors import NasError, PermanentNasError
from provisioner.config import Settings
from provisioner.db import transaction
from provisioner.models import Outbox, utcnow

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
    now = utcnow()
    with transaction(factory) as s:
        # Expired leases: a worker died while running these.
        s.execute(
            update(Outbox)
            .where(Outbox.status == "running", Outbox.next_attempt_at < now)
            .values(status="pending")
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
                .values(status="running", next_attempt_at=now + LEASE)
            )
            if res.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(i)
    return claimed


def _finish(
    factory: sessionmaker[Session], row_id: int, error: str | None, permanent: bool
) -> None:
    with transaction(factory) as s:
        row = s.get(Outbox, row_id)
        if row is None:
            return
        row.attempts += 1
        if error is None:
            row.status, row.done_at, row.last_error = "done", utcnow(), None
        elif permanent:
            row.status, row.last_error, row.done_at = "failed", error, utcnow()
        else:
            row.status, row.last_error = "pending", error
            row.next_attempt_at = utcnow() + timedelta(seconds=backoff(row.attempts))
        _after(s, row)


def _after(session: Session, row: Outbox) -> None:
    """Reflect the row's fate on the activation it belongs to (pending/applied/failed)."""
    if row.activation_id is None:
        return
    from provisioner.models import Activation

    act = session.get(Activation, row.activation_id)
    if act is None:
        return
    rows = list(session.scalars(select(Outbox).where(Outbox.activation_id == act.id)))
    if any(r.status == "failed" for r in rows):
        act.status = "failed"
        act.error = "; ".join(r.last_error or "" for r in rows if r.status == "failed")
    elif all(r.status == "done" for r in rows):
        act.status, act.error = "applied", None
    else:
        act.status = "pending"
        act.error = next((r.last_error for r in rows if r.last_error), None)


def drain(
    factory: sessionmaker[Session], settings: Settings, *, limit: int = 100
) -> dict[str, int]:
    """Run due work once; returns counts by outcome. Safe to call from several instances."""
    counts = {"done": 0, "retry": 0, "failed": 0}
    for row_id in _claim(factory, limit):
        with transaction(factory) as s:
            row = s.get(Outbox, row_id)
            assert row is not None
            s.expunge(row)
        fn = HANDLERS.get(row.kind)
        try:
            if fn is None:
                raise PermanentNasError(f"no handler for outbox work {row.kind!r}")
            fn(factory, settings, row)
        except PermanentNasError as exc:
            _finish(factory, row_id, str(exc), permanent=True)
            counts["failed"] += 1
        except (Retry, NasError) as exc:
            _finish(factory, row_id, str(exc), permanent=False)
            counts["retry"] += 1
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the queue
            log.exception("outbox row %s failed", row_id)
            _finish(factory, row_id, f"{type(exc).__name__}: {exc}", permanent=False)
            counts["retry"] += 1
        else:
            _finish(factory, row_id, None, permanent=False)
            counts["done"] += 1
    return counts


@handler("sync_router")
def _sync_router(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    from provisioner.sync import sync_router

    assert row.router_id is not None
    result = sync_router(factory, settings, row.router_id, trigger="change")
    if result.status == "busy":
        raise Retry("another sync of this router is running")
    if result.status != "ok":
        raise Retry(result.error or result.status)


def pending(session: Session, **filters: Any) -> list[Outbox]:
    q = select(Outbox).where(Outbox.status.in_(("pending", "running")))
    for k, v in filters.items():
        q = q.where(getattr(Outbox, k) == v)
    return list(session.scalars(q))


def _router_for(factory: sessionmaker[Session], router_id: int | None) -> tuple[str, int, str]:
    from provisioner.models import Router

    with transaction(factory) as s:
        r = s.get(Router, router_id) if router_id else None
        if r is None:
            raise PermanentNasError("the router of this session is gone")
        return r.host, r.coa_port, r.radius_secret


@handler("coa")
def _coa(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    """Push a new rate to a live session; a NAK falls back to ending the session."""
    from nas_adapters.radius_client import send_coa, send_disconnect

    host, port, secret = _router_for(factory, row.router_id)
    reply = send_coa(host, port, secret, row.payload)
    if not reply.accepted:
        ident = {k: v for k, v in row.payload.items() if k != "Mikrotik-Rate-Limit"}
        # CoA refused (e.g. the router cannot change this session): reconnect it instead.
        send_disconnect(host, port, secret, ident)


@handler("disconnect")
def _disconnect(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    from nas_adapters.radius_client import send_disconnect

    host, port, secret = _router_for(factory, row.router_id)
    reply = send_disconnect(host, port, secret, row.payload)
    if not reply.accepted and reply.error_cause not in (503,):  # 503: session already gone
        raise PermanentNasError(f"Disconnect-NAK from {host} (Error-Cause {reply.error_cause})")


@handler("other")
def _other(factory: sessionmaker[Session], settings: Settings, row: Outbox) -> None:
    from nas_adapters.other import run_action

    run_action(row.payload, url=settings.other_action_url, command=settings.other_action_command)
