"""The "other" adapter as a subscriber of the same delivery: signed (the standardwebhooks
verifier), retried, logged, redeliverable, carrying the master's rates, cap, IPv6 prefix (none for Other customers yet)
and the event id; its activation follows the outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from provisioner import outbox, webhooks
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.db import reading, transaction
from provisioner.models import Activation, WebhookDelivery, WebhookEndpoint
from tests.support.factories import Factory
from tests.support.receiver import Receiver

ADMIN = Principal("admin", name="test")


def fibre(ctx: Any) -> str:
    make = Factory(ctx)
    master = make.master(
        name="ftth", customer_type="other", pool_name=None, pool_ranges=None,
        rate_down="20M", rate_up="10M", volume_cap="100G",
    )  # fmt: skip
    pkg = make.package(master, name="Fiber")
    make.customer(None, None, username="onu1", customer_type="other", status="new")
    return pkg


def test_other_adapter_delivers_signed_retried_and_enriched(
    ctx_factory: Any, backend: str
) -> None:
    rx = Receiver(fail_first=1)
    try:
        ctx = ctx_factory(backend, other_action_url=rx.url)
        pkg = fibre(ctx)
        act_id, _ = run_activation(ctx.factory, ADMIN, ActivationRequest("onu1", pkg, "a1"))
        with transaction(ctx.factory) as s:  # the endpoint was made from other_action_url
            ep = webhooks.other_endpoint(s, ctx.settings)
            assert ep is not None and ep.kind == "other"
            _, rx.secret = webhooks.rotate(s, ADMIN, ep.id)
        assert outbox.drain(ctx.factory, ctx.settings)["retry"] == 1  # HTTP 500 first
        with transaction(ctx.factory) as s:
            assert s.get(Activation, act_id).status == "pending"  # type: ignore[union-attr]
            s.execute(outbox.update(outbox.Outbox).values(next_attempt_at=outbox.utcnow()))
        assert outbox.drain(ctx.factory, ctx.settings)["done"] == 1
        with reading(ctx.factory) as s:
            assert s.get(Activation, act_id).status == "applied"  # type: ignore[union-attr]
            d = s.scalars(select(WebhookDelivery)).one()
            assert (d.status, d.attempts) == ("delivered", 2)
        assert [r.answered for r in rx.got] == [500, 204]
        assert all(r.verified for r in rx.got[1:]), "signed with the endpoint's secret"
        assert rx.got[0].webhook_id == rx.got[1].webhook_id
        body = rx.got[1].body
        assert (body["customer"], body["package"], body["status"]) == ("onu1", "Fiber", "active")
        assert (body["rate_down"], body["rate_up"]) == (20_000_000, 10_000_000)
        assert body["volume_cap"] == 100 * 2**30
        assert "ipv6_prefix" in body and body["ipv6_prefix"] is None  # PPPoE only, so far
        assert body["event_id"].startswith("evt_")
        with transaction(ctx.factory) as s:  # by hand, again: same webhook-id, same body
            webhooks.redeliver(s, ADMIN, d.endpoint_id, d.id)
        webhooks.drain(ctx.factory, ctx.settings)
        assert rx.got[-1].webhook_id == rx.got[0].webhook_id and rx.got[-1].body == body
    finally:
        rx.close()


def test_a_refusal_fails_the_activation_and_no_webhook_endpoint_sees_other_action(
    ctx_factory: Any,
) -> None:
    rx, everything = Receiver(refuse=410), Receiver()
    try:
        ctx = ctx_factory("sqlite", other_action_url=rx.url)
        with transaction(ctx.factory) as s:
            everything.secret = webhooks.create(s, ADMIN, everything.url, ["*"])[1]
            ep, rx.secret = webhooks.create(s, ADMIN, rx.url, [], kind="other")
        pkg = fibre(ctx)
        act_id, _ = run_activation(ctx.factory, ADMIN, ActivationRequest("onu1", pkg, "a1"))
        assert outbox.drain(ctx.factory, ctx.settings)["failed"] == 1
        with reading(ctx.factory) as s:
            act = s.get(Activation, act_id)
            assert act is not None and act.status == "failed" and "HTTP 410" in (act.error or "")
            d = s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == ep.id)).one()
            assert (d.status, d.last_status) == ("failed", 410)
            kinds = s.scalars(select(WebhookEndpoint.kind).order_by(WebhookEndpoint.id)).all()
            assert kinds == ["webhook", "other"], "the registered one, none made from the URL"
        webhooks.drain(ctx.factory, ctx.settings)
        assert [r.body["type"] for r in everything.got] == ["activation.failed"]
        assert all(r.verified for r in rx.got) and len(rx.got) == 1
    finally:
        rx.close()
        everything.close()
