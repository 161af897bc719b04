"""Signed webhooks against real HTTP receivers that verify every signature with the
``standardwebhooks`` verifier, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from provisioner import events, webhooks
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import NotFound, ValidationError
from provisioner.models import DeliveryAttempt, Event, Reseller, WebhookDelivery, WebhookEndpoint
from tests.support.factories import Factory
from tests.support.receiver import Receiver

ADMIN = Principal("admin", name="test")
FAST = {"webhook_backoff_seconds": 0.05, "webhook_backoff_max_seconds": 0.2,
        "webhook_poll_seconds": 0.05}  # fmt: skip


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def endpoint(ctx: Context, receiver: Receiver, types: list[str], **kw: Any) -> int:
    with transaction(ctx.factory) as s:
        ep, secret = webhooks.create(s, ADMIN, receiver.url, types, **kw)
        receiver.secret = secret
        return ep.id


def a_customer(ctx: Context) -> str:
    make = Factory(ctx)
    router = make.router(None, mode="radius")  # no NAS work: applied in the same commit
    make.package(make.master(name="home"), name="Home")
    return make.customer(None, router, status="new")


def until(check: Any, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"not reached: {what}")
        time.sleep(0.02)


def test_fails_twice_then_accepts_delivered_once_with_three_attempts(
    ctx_factory: Any, backend: str, receivers: list[Receiver]
) -> None:
    ctx = ctx_factory(backend, **FAST)
    rx = Receiver(fail_first=2)
    receivers.append(rx)
    ep_id = endpoint(ctx, rx, ["activation.applied"])
    user = a_customer(ctx)
    act_id, _ = run_activation(ctx.factory, ADMIN, ActivationRequest(user, "Home", "k1"))

    def delivered() -> bool:
        webhooks.drain(ctx.factory, ctx.settings)
        return len(rx.accepted()) == 1

    until(delivered, "delivered")
    webhooks.drain(ctx.factory, ctx.settings)
    assert [r.answered for r in rx.got] == [500, 500, 204]
    assert all(r.verified for r in rx.got), "every try carries a valid signature"
    assert len({r.webhook_id for r in rx.got}) == 1, "the same webhook-id on every retry"
    body = rx.got[-1].body
    assert body["type"] == "activation.applied"
    assert body["data"]["customer"] == user and body["data"]["activation_id"] == act_id
    assert body["id"].startswith("evt_")
    with reading(ctx.factory) as s:
        d = s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == ep_id)).one()
        assert (d.status, d.attempts, d.last_status) == ("delivered", 3, 204)
        log = webhooks.attempts(s, d.id)
        assert [a.status_code for a in log] == [500, 500, 204]
        assert all(a.response_ms >= 0 for a in log)
        assert s.scalar(select(Event.fanned_out).where(Event.id == d.event_id)) is True


def test_a_hanging_receiver_delays_neither_another_receiver_nor_an_activation(
    ctx_factory: Any, backend: str, receivers: list[Receiver]
) -> None:
    ctx = ctx_factory(backend, **FAST)
    stuck = Receiver(hang=threading.Event())
    live = Receiver()
    receivers += [stuck, live]
    endpoint(ctx, stuck, ["*"], timeout_seconds=60.0, concurrency=2)
    endpoint(ctx, live, ["*"])
    user = a_customer(ctx)
    sender = webhooks.Dispatcher(ctx.factory, ctx.settings).start()
    try:
        with transaction(ctx.factory) as s:
            for i in range(5):
                events.emit(s, "webhook.test", {"n": i})
        until(lambda: len(live.accepted()) == 5, "the live receiver has all five")
        assert stuck.waiting == 2, "the hanging one holds its own two slots, no more"
        act_id, created = run_activation(ctx.factory, ADMIN, ActivationRequest(user, "Home", "k"))
        assert created
        until(lambda: len(live.accepted()) == 6, "and the activation's event")
        assert live.accepted()[-1].body["data"]["activation_id"] == act_id
        assert stuck.waiting == 2 and not stuck.got, "still hanging all along"
    finally:
        stuck.hang.set()  # type: ignore[union-attr]
        sender.stop(wait=True)


def test_an_operator_gets_only_its_subtrees_events_and_admins_theirs(
    ctx: Context, make: Factory
) -> None:
    parent, other = make.reseller(may_have_subresellers=True), make.reseller()
    with reading(ctx.factory) as s:
        pid = s.scalar(select(Reseller.id).where(Reseller.name == parent))
        oid = s.scalar(select(Reseller.id).where(Reseller.name == other))
    op = Principal("reseller", reseller_id=pid)
    with transaction(ctx.factory) as s:
        mine, _ = webhooks.create(s, op, "http://8.8.8.8:9/a", ["*"])
        admins, _ = webhooks.create(s, ADMIN, "http://127.0.0.1:9/b", ["customer.expired"])
        events.emit(s, "customer.expired", {}, reseller_id=pid)
        events.emit(s, "customer.expired", {}, reseller_id=oid)
        events.emit(s, "customer.suspended", {}, reseller_id=None)
    webhooks.fan_out(ctx.factory)
    with reading(ctx.factory) as s:
        got = {(d.endpoint_id, s.get(Event, d.event_id).reseller_id)  # type: ignore[union-attr]
               for d in s.scalars(select(WebhookDelivery))}  # fmt: skip
        assert got == {(mine.id, pid), (admins.id, pid), (admins.id, oid)}
        assert [e.id for e in webhooks.endpoints(s, op)] == [mine.id]
        with pytest.raises(NotFound):
            webhooks.endpoint(s, op, admins.id)


def test_bad_endpoints_are_refused_naming_the_field(ctx: Context) -> None:
    with transaction(ctx.factory) as s:
        with pytest.raises(ValidationError) as e:
            webhooks.create(s, ADMIN, "ftp://x", ["*"])
        assert e.value.field == "url"
        with pytest.raises(ValidationError) as e:
            webhooks.create(s, ADMIN, "http://x", ["no.such"])
        assert e.value.field == "events"


def test_secret_is_encrypted_at_rest_and_rotation_changes_the_signature(
    ctx: Context, receivers: list[Receiver]
) -> None:
    rx = Receiver()
    receivers.append(rx)
    ep_id = endpoint(ctx, rx, ["webhook.test"])
    old = rx.secret
    with ctx.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT secret FROM webhook_endpoints").scalar()
    assert old not in raw and old[6:] not in raw
    with transaction(ctx.factory) as s:
        _, new = webhooks.rotate(s, ADMIN, ep_id)
        webhooks.send_test(s, ADMIN, ep_id)
    assert new != old
    webhooks.drain(ctx.factory, ctx.settings)
    assert not rx.got[-1].verified, "signed with the new secret, not the old"
    rx.secret = new
    with transaction(ctx.factory) as s:
        d = s.scalars(select(WebhookDelivery)).one()
        webhooks.redeliver(s, ADMIN, ep_id, d.id)
    webhooks.drain(ctx.factory, ctx.settings)
    assert rx.got[-1].verified and rx.got[-1].webhook_id == rx.got[0].webhook_id


def test_a_day_of_failures_disables_the_endpoint_with_its_own_event(
    ctx_factory: Any, receivers: list[Receiver]
) -> None:
    ctx = ctx_factory("sqlite", webhook_retry_seconds=0.3, **FAST)
    rx = Receiver(fail_first=10_000)
    receivers.append(rx)
    ep_id = endpoint(ctx, rx, ["webhook.test"])
    with transaction(ctx.factory) as s:
        webhooks.send_test(s, ADMIN, ep_id)

    def disabled() -> bool:
        webhooks.drain(ctx.factory, ctx.settings)
        with reading(ctx.factory) as s:
            return not s.get(WebhookEndpoint, ep_id).enabled  # type: ignore[union-attr]

    until(disabled, "disabled")
    with reading(ctx.factory) as s:
        d = s.scalars(select(WebhookDelivery)).one()
        assert d.status == "failed" and d.attempts >= 2
        assert s.scalar(select(Event.type).where(Event.type == "webhook.disabled"))
        n = s.scalar(select(DeliveryAttempt.id).order_by(DeliveryAttempt.id.desc()).limit(1))
        assert n == d.attempts
