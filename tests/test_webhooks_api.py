"""/api/v1/webhooks, /events, contacts and reminders through the HTTP API: roles, the
secret shown once, the delivery log, a redelivery, and 422s naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from provisioner import events, registry, webhooks
from provisioner.api import create_app
from provisioner.auth import create_token
from provisioner.context import Context
from provisioner.db import transaction
from tests.support.receiver import Receiver

API = "/api/v1"


@pytest.fixture
def api(ctx: Context) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    with transaction(ctx.factory) as s:
        registry.create_reseller(s, "t", {"name": "resA"})
        registry.create_reseller(s, "t", {"name": "resB"})
        registry.create_customer(s, "t", {"username": "cust-a", "password": "p",
                                          "customer_type": "other", "reseller": "resA"})
        tokens = {
            "admin": create_token(s, role="admin", name="a"),
            "resA": create_token(s, role="reseller", reseller="resA"),
            "resB": create_token(s, role="reseller", reseller="resB"),
            "customer": create_token(s, role="customer", customer="cust-a"),
        }
    heads = {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}
    with TestClient(create_app(ctx)) as client:
        yield client, heads


def test_endpoints_lifecycle_secret_once_log_and_redelivery(
    ctx: Context, api: Any
) -> None:
    client, h = api
    rx = Receiver(fail_first=1)
    try:
        r = client.post(f"{API}/webhooks", headers=h["admin"],
                        json={"url": rx.url, "events": ["webhook.test"]})
        assert r.status_code == 201, r.text
        ep = r.json()
        assert ep["secret"].startswith("whsec_") and ep["owner"] == "admin"
        rx.secret = ep["secret"]
        listed = client.get(f"{API}/webhooks", headers=h["admin"]).json()
        assert [e["id"] for e in listed] == [ep["id"]] and "secret" not in listed[0]
        assert "secret" not in client.get(f"{API}/webhooks/{ep['id']}", headers=h["admin"]).json()
        r = client.post(f"{API}/webhooks/{ep['id']}/test", headers=h["admin"])
        assert r.status_code == 202
        webhooks.drain(ctx.factory, ctx.settings)  # first try: HTTP 500
        d = client.get(f"{API}/webhooks/{ep['id']}/deliveries", headers=h["admin"]).json()
        assert d[0]["status"] == "pending" and d[0]["attempts"] == 1 and d[0]["last_status"] == 500
        r = client.post(f"{API}/webhooks/{ep['id']}/deliveries/{d[0]['id']}/redeliver",
                        headers=h["admin"])  # fmt: skip
        assert r.status_code == 202
        webhooks.drain(ctx.factory, ctx.settings)
        one = client.get(f"{API}/webhooks/{ep['id']}/deliveries/{d[0]['id']}",
                         headers=h["admin"]).json()  # fmt: skip
        assert one["status"] == "delivered" and [a["status_code"] for a in one["log"]] == [500, 204]
        assert rx.got[0].webhook_id == rx.got[1].webhook_id == one["webhook_id"]
        assert all(x.verified for x in rx.got)
        r = client.post(f"{API}/webhooks/{ep['id']}/rotate", headers=h["admin"])
        assert r.json()["secret"] not in (ep["secret"], None)
        r = client.patch(f"{API}/webhooks/{ep['id']}", headers=h["admin"], json={"enabled": False})
        assert r.json()["enabled"] is False
        assert client.delete(f"{API}/webhooks/{ep['id']}", headers=h["admin"]).status_code == 204
        assert client.get(f"{API}/webhooks/{ep['id']}", headers=h["admin"]).status_code == 404
    finally:
        rx.close()


def test_roles_an_operator_sees_its_own_endpoints_and_subtree_events(ctx: Context, api: Any) -> None:
    client, h = api
    mine = client.post(f"{API}/webhooks", headers=h["resA"],
                       json={"url": "http://8.8.8.8:9/x", "events": ["*"]}).json()  # fmt: skip
    assert mine["owner"].startswith("reseller:")
    assert client.get(f"{API}/webhooks/{mine['id']}", headers=h["resB"]).status_code == 404
    assert client.get(f"{API}/webhooks", headers=h["resB"]).json() == []
    assert client.get(f"{API}/webhooks", headers=h["customer"]).status_code == 403
    assert client.get(f"{API}/webhooks", headers=h["admin"]).json()[0]["id"] == mine["id"]
    with transaction(ctx.factory) as s:
        from sqlalchemy import select

        from provisioner.models import Reseller

        a = s.scalar(select(Reseller.id).where(Reseller.name == "resA"))
        events.emit(s, "customer.expired", {"customer": "cust-a"}, reseller_id=a)
        events.emit(s, "customer.expired", {"customer": "elsewhere"}, reseller_id=None)
    seen_a = client.get(f"{API}/events", headers=h["resA"]).json()
    assert [e["data"]["customer"] for e in seen_a] == ["cust-a"]
    assert client.get(f"{API}/events", headers=h["resB"]).json() == []
    assert len(client.get(f"{API}/events", headers=h["admin"]).json()) == 2
    after = seen_a[0]["seq"]
    assert client.get(f"{API}/events?after={after}", headers=h["resA"]).json() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://x", "events": ["*"]}, "url"),
    ({"url": "http://x", "events": ["nope"]}, "events"),
    ({"url": "http://x", "events": []}, "events"),
    ({"url": "http://x", "events": ["*"], "concurrency": 0}, "concurrency"),
    ({"events": ["*"]}, "url"),
])  # fmt: skip
def test_bad_input_is_a_422_naming_the_field(api: Any, body: dict[str, Any], field: str) -> None:
    client, h = api
    r = client.post(f"{API}/webhooks", headers=h["admin"], json=body)
    assert r.status_code == 422, r.text
    assert field in r.text


def test_contact_and_schema(ctx: Context, api: Any) -> None:
    client, h = api
    r = client.put(f"{API}/customers/cust-a/contact", headers=h["resA"],
                   json={"email": "a@example.net", "language": "bn"})  # fmt: skip
    assert r.status_code == 200, r.text
    got = client.get(f"{API}/customers/cust-a/contact", headers=h["admin"]).json()
    assert got["email"] == "a@example.net" and got["language"] == "bn"
    assert client.put(f"{API}/customers/cust-a/contact", headers=h["resB"],
                      json={"opt_out": True}).status_code == 404  # fmt: skip
    schema = client.get(f"{API}/events/schema", headers=h["admin"]).json()
    assert set(events.TYPES) <= set(schema["$defs"])


def test_balance_low_once_per_fall_below_the_operators_threshold(ctx: Context, api: Any) -> None:
    from provisioner import ledger

    client, h = api
    r = client.put(f"{API}/resellers/me/balance-alert", headers=h["resA"], json={"threshold": "500"})
    assert r.status_code == 200, r.text
    assert r.json() == {"reseller": "resA", "threshold": "500.00", "alerted": False}
    assert client.put(f"{API}/resellers/resA/balance-alert", headers=h["resB"],
                      json={"threshold": "1"}).status_code == 404  # fmt: skip
    bad = client.put(f"{API}/resellers/me/balance-alert", headers=h["resA"],
                     json={"threshold": "1e3"})  # fmt: skip
    assert bad.status_code == 422 and "threshold" in bad.text

    def check() -> list[dict[str, Any]]:
        with transaction(ctx.factory) as s:
            events.check_balances(s, "BDT")
        return [e["data"] for e in client.get(f"{API}/events?type=balance.low",
                                              headers=h["resA"]).json()]  # fmt: skip

    assert [(e["reseller"], e["balance"], e["threshold"]) for e in check()] == [
        ("resA", "0.00", "500.00")]  # fmt: skip
    assert len(check()) == 1, "once while it stays below"
    with transaction(ctx.factory) as s:
        ledger.topup(s, "t", "reseller:resA", "1000")
    assert len(check()) == 1
    client.put(f"{API}/resellers/me/balance-alert", headers=h["resA"], json={"threshold": "2000"})
    got = check()
    assert len(got) == 2 and got[-1]["balance"] == "1000.00"
    assert client.get(f"{API}/events?type=balance.low", headers=h["resB"]).json() == []
