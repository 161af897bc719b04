"""Events written in the change's own transaction, on SQLite and PostgreSQL: a customer's
suspension, restoration and expiry, an activation applied, a router's failed sync; none
from a change that rolled back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from provisioner import registry, sync
from provisioner.activation import ActivationRequest, expire_due, run_activation
from provisioner.auth import Principal
from provisioner.db import reading, transaction
from provisioner.models import Customer, Event, utcnow
from tests.support.factories import Factory

ADMIN = Principal("admin", name="test")


def types(ctx: Any) -> list[tuple[str, Any]]:
    with reading(ctx.factory) as s:
        return [(e.type, e.body.get("customer") or e.body.get("router"))
                for e in s.scalars(select(Event).order_by(Event.id))]  # fmt: skip


def test_customer_events_follow_its_status(ctx_factory: Any, backend: str) -> None:
    ctx = ctx_factory(backend)
    make = Factory(ctx)
    router = make.router(None, mode="radius")
    make.package(make.master(name="home"), name="Home")
    user = make.customer(None, router, status="new")
    run_activation(ctx.factory, ADMIN, ActivationRequest(user, "Home", "k1"))
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "admin", user, {"status": "suspended"})
    with transaction(ctx.factory) as s:
        registry.update_customer(s, "admin", user, {"status": "active"})
    with pytest.raises(RuntimeError), transaction(ctx.factory) as s:
        registry.update_customer(s, "admin", user, {"status": "suspended"})
        raise RuntimeError("rolled back: its event with it")
    with transaction(ctx.factory) as s:
        s.execute(update(Customer).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert expire_due(ctx.factory) == 1
    assert types(ctx) == [
        ("activation.applied", user), ("customer.suspended", user),
        ("customer.restored", user), ("customer.expired", user),
    ]  # fmt: skip
    with reading(ctx.factory) as s:
        uids = list(s.scalars(select(Event.uid)))
        assert len(set(uids)) == 4 and all(u.startswith("evt_") for u in uids)


def test_a_failed_sync_is_an_event(ctx: Any, make: Factory) -> None:
    make.router(None, name="dead-one")  # nothing listens on its API port
    ids = sync.router_ids(ctx.factory)
    [r] = sync.sync_many(ctx.factory, ctx.settings, ids, trigger="reconcile")
    assert r.status in ("unreachable", "failed")
    assert ("router.sync_failed", "dead-one") in types(ctx)


def test_event_ids_grow_with_time() -> None:
    """An event's id is ``evt_`` and a UUID version 7: later ids sort after earlier ones,
    so the unique index on them grows at its right edge (random ids wrote each into a page
    anywhere in the index, bench/README.md, "eighth pass"); the rest is random."""
    import time
    import uuid

    from provisioner.events import new_uid

    first = [new_uid() for _ in range(50)]
    time.sleep(0.002)
    later = new_uid()
    assert len(set(first)) == 50 and all(u < later for u in first)
    for u in (*first, later):
        assert u.startswith("evt_") and len(u) == 36
        parsed = uuid.UUID(u.removeprefix("evt_"))
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert abs(int(u[4:16], 16) - time.time() * 1000) < 60_000  # milliseconds, now
