"""An operator's webhook endpoints never reach internal addresses (SSRF): refused when
set (a 422 naming ``url``) and again before each send, since what a name resolves to
may change; an admin's may (an ISP's own systems sit on its private network) unless
``webhook_restrict_admins``. On SQLite and PostgreSQL, with a real receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from provisioner import registry, webhooks
from provisioner.api import create_app
from provisioner.auth import Principal, create_token
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.errors import ValidationError
from provisioner.models import Reseller, WebhookDelivery, WebhookEndpoint
from tests.support.receiver import Receiver

API = "/api/v1"
ADMIN = Principal("admin", name="test")
INTERNAL = [
    "http://127.0.0.1:8080/hook",  # loopback
    "http://localhost/hook",  # a name resolving to loopback
    "http://10.1.2.3/hook",  # private
    "http://192.168.88.1/hook",  # private (a MikroTik's default)
    "http://100.64.0.1/hook",  # carrier-grade NAT: an ISP's internal network
    "http://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
    "http://[::1]/hook",  # IPv6 loopback
    "http://[fd00::1]/hook",  # unique-local
    "http://[fe80::1]/hook",  # IPv6 link-local
    "http://224.0.0.1/hook",  # multicast
    "http://0.0.0.0/hook",  # unspecified
    "http://[::ffff:127.0.0.1]/hook",  # loopback mapped into IPv6
]


@pytest.fixture
def api(any_ctx: Context) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    ctx = any_ctx
    with transaction(ctx.factory) as s:
        registry.create_reseller(s, "t", {"name": "resA"})
        tokens = {
            "admin": create_token(s, role="admin", name="a"),
            "resA": create_token(s, role="reseller", reseller="resA"),
        }
    with TestClient(create_app(ctx)) as client:
        yield client, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


@pytest.mark.parametrize("url", INTERNAL)
def test_an_operator_cannot_register_an_internal_address(api: Any, url: str) -> None:
    client, h = api
    r = client.post(f"{API}/webhooks", headers=h["resA"], json={"url": url, "events": ["*"]})
    assert r.status_code == 422, r.text
    assert "url" in r.text and "internal address" in r.text
    assert client.get(f"{API}/webhooks", headers=h["resA"]).json() == []


def test_an_operator_may_register_a_public_address_but_not_edit_it_inward(api: Any) -> None:
    client, h = api
    r = client.post(f"{API}/webhooks", headers=h["resA"],
                    json={"url": "https://8.8.8.8/hook", "events": ["*"]})  # fmt: skip
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    r = client.patch(f"{API}/webhooks/{ep}", headers=h["resA"], json={"url": "http://10.0.0.5/"})
    assert r.status_code == 422 and "url" in r.text
    # An admin editing an operator's endpoint is held to the operator's rule too.
    r = client.patch(f"{API}/webhooks/{ep}", headers=h["admin"], json={"url": "http://10.0.0.5/"})
    assert r.status_code == 422 and "url" in r.text
    got = client.get(f"{API}/webhooks/{ep}", headers=h["resA"]).json()
    assert got["url"] == "https://8.8.8.8/hook"
    bad = client.post(f"{API}/webhooks", headers=h["resA"],
                      json={"url": "file:///etc/passwd", "events": ["*"]})  # fmt: skip
    assert bad.status_code == 422 and "url" in bad.text


def test_an_admin_may_name_a_private_address_unless_restricted(
    any_ctx: Context, api: Any
) -> None:
    client, h = api
    r = client.post(f"{API}/webhooks", headers=h["admin"],
                    json={"url": "http://10.1.2.3/accounting", "events": ["*"]})  # fmt: skip
    assert r.status_code == 201, r.text
    with transaction(any_ctx.factory) as s:
        with pytest.raises(ValidationError) as exc:
            webhooks.create(s, ADMIN, "http://10.1.2.3/accounting", ["*"], restrict_admins=True)
        assert exc.value.field == "url"
        n = len(webhooks.endpoints(s, ADMIN))
    assert n == 1


def test_a_restricted_endpoint_turned_internal_is_refused_at_delivery(any_ctx: Context) -> None:
    """What passed when set but reaches an internal address at send time (DNS changed;
    stood in by the row changed under it, and by admins restricted afterwards) is not
    sent: the try is logged as refused and retried later, the receiver gets nothing."""
    rx = Receiver()
    try:
        loose = any_ctx
        with transaction(loose.factory) as s:
            registry.create_reseller(s, "t", {"name": "op"})
            rid = s.scalar(select(Reseller.id).where(Reseller.name == "op"))
            op = Principal("reseller", reseller_id=rid)
            mine, _ = webhooks.create(s, op, "http://8.8.8.8:9/hook", ["*"])
            admins, secret = webhooks.create(s, ADMIN, rx.url, ["webhook.test"])
            rx.secret = secret
            s.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == mine.id)
                      .values(url=rx.url))  # fmt: skip
            webhooks.send_test(s, op, mine.id)
        webhooks.drain(loose.factory, loose.settings, rounds=1)
        assert rx.got == []
        with reading(loose.factory) as s:
            d = s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == mine.id)).one()
            assert d.status == "pending" and d.attempts == 1
            assert d.last_error is not None and "internal address" in d.last_error
        # The admin's own receiver on 127.0.0.1 is allowed by default...
        with transaction(loose.factory) as s:
            webhooks.send_test(s, ADMIN, admins.id)
        webhooks.drain(loose.factory, loose.settings, rounds=1)
        assert len(rx.got) == 1 and rx.got[0].verified
        # ...and refused once admins are restricted too.
        strict = loose.settings.model_copy(update={"webhook_restrict_admins": True})
        with transaction(loose.factory) as s:
            webhooks.send_test(s, ADMIN, admins.id)
        webhooks.drain(loose.factory, strict, rounds=1)
        assert len(rx.got) == 1
    finally:
        rx.close()
