"""Retention: events and finished deliveries older than ``event_retention_days`` are
removed in batches (``webhooks.prune``, the scheduler's ``retention`` job); what is
younger, or still waiting to be delivered, stays. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from provisioner import events, webhooks
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.models import DeliveryAttempt, Event, WebhookDelivery, utcnow

ADMIN = Principal("admin", name="test")


def test_old_events_and_finished_deliveries_go_in_batches_the_rest_stays(
    any_ctx: Context,
) -> None:
    ctx = any_ctx
    now = utcnow()
    old = now - timedelta(days=31)
    with transaction(ctx.factory) as s:
        ep, _ = webhooks.create(s, ADMIN, "http://10.9.9.9:9/hook", ["*"])
        for _ in range(5):
            events.emit(s, "customer.expired", {"customer": "x"}, at=old)
        events.emit(s, "customer.expired", {"customer": "young"}, at=now - timedelta(days=29))
    webhooks.fan_out(ctx.factory)
    with transaction(ctx.factory) as s:
        rows = list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        assert len(rows) == 6
        # Old: 3 delivered, 1 failed, 1 still pending (its endpoint was disabled); young:
        # delivered. Every one with an attempt logged.
        for d, status in zip(rows, ["delivered"] * 3 + ["failed", "pending", "delivered"],
                             strict=True):  # fmt: skip
            d.status = status
            s.add(DeliveryAttempt(delivery_id=d.id, at=d.created_at, status_code=204,
                                  response_ms=1, error=None))  # fmt: skip
        pending_id, young_id = rows[4].event_id, rows[5].event_id
        unsent = Event(**events.row("customer.expired", {}, at=old))  # not yet fanned out
        s.add(unsent)
    with transaction(ctx.factory) as s:
        s.execute(update(Event).where(Event.id == unsent.id).values(fanned_out=False))

    removed = webhooks.prune(ctx.factory, ctx.settings, now=now, batch=2)

    assert removed["deliveries"] == 4 and removed["attempts"] == 4 and removed["events"] == 4
    with reading(ctx.factory) as s:
        left = {e.id for e in s.scalars(select(Event))}
        assert left == {pending_id, young_id, unsent.id}
        assert {d.event_id for d in s.scalars(select(WebhookDelivery))} == {pending_id, young_id}
        assert s.scalar(select(func.count()).select_from(DeliveryAttempt)) == 2
    # Nothing more to do: a second pass removes nothing.
    assert not any(webhooks.prune(ctx.factory, ctx.settings, now=now).values())
    # A shorter retention is bounded below by how far ahead customer.expiring looks
    # (reminder_days_ahead 3: kept 4 days), so that event is not emitted twice.
    with transaction(ctx.factory) as s:
        events.emit(s, "customer.expired", {}, at=now - timedelta(days=2))
    webhooks.fan_out(ctx.factory)
    with transaction(ctx.factory) as s:
        s.execute(update(WebhookDelivery).values(status="delivered"))
    short = ctx.settings.model_copy(update={"event_retention_days": 1})
    assert ctx.settings.reminder_days_ahead == 3
    # Gone now: 29 days old, and the 31 days old (the pending one, and the one fanned out
    # late), all delivered by now; the two days old stays.
    assert webhooks.prune(ctx.factory, short, now=now)["deliveries"] == 3
    assert webhooks.prune(ctx.factory, short, now=now + timedelta(days=1))["events"] == 0
    assert webhooks.prune(ctx.factory, short, now=now + timedelta(days=3))["events"] == 1


def test_the_scheduler_runs_retention(any_ctx: Context) -> None:
    """The ``retention`` job (one instance, every ``retention_interval_seconds``) prunes."""
    import time

    from provisioner import scheduler

    ctx = any_ctx
    with transaction(ctx.factory) as s:
        events.emit(s, "customer.expired", {}, at=utcnow() - timedelta(days=40))
        events.emit(s, "customer.expired", {}, at=utcnow())
    webhooks.fan_out(ctx.factory)  # no endpoints: nothing refers to them
    ctx.settings.retention_interval_seconds = 0.2
    sched = scheduler.start(ctx)
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            with reading(ctx.factory) as s:
                if s.scalar(select(func.count()).select_from(Event)) == 1:
                    break
            time.sleep(0.1)
    finally:
        sched.shutdown(wait=True)
    with reading(ctx.factory) as s:
        assert [e.at > utcnow() - timedelta(days=1) for e in s.scalars(select(Event))] == [True]
