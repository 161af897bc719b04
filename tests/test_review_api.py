"""Review findings on the HTTP API: scope and money through the real app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner import registry
from provisioner.db import transaction
from provisioner.models import Reseller
from tests.test_api import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def _reseller_id(world: World, name: str) -> int:
    with transaction(world.ctx.factory) as s:
        return int(registry.get_by_name(s, Reseller, name).id)


def test_another_resellers_idempotency_key_leaks_nothing(world: World) -> None:
    for name in ("resA", "resB"):
        topup = {"account": f"reseller:{_reseller_id(world, name)}", "amount": "1000"}
        assert world.call("POST", "/topups", "admin", topup).status_code == 201
    mine = {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "order-1"}
    assert world.call("POST", "/activations", "reseller", mine).status_code == 201
    theirs = {"customer": "cust-b", "package": "pkg-b", "idempotency_key": "order-1"}
    r = world.call("POST", "/activations", "resB", theirs)
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "idempotency_key"
    assert "cust-a" not in r.text and "350" not in r.text
    assert world.call("GET", "/balance", "resB").json()["balance"] == "1000.00"


def test_a_huge_amount_is_a_field_error_not_a_500(world: World) -> None:
    account = f"reseller:{_reseller_id(world, 'resA')}"
    r = world.call("POST", "/topups", "admin", {"account": account, "amount": "1e30"})
    assert r.status_code == 422 and r.json()["field"] == "amount", r.text
    body = {
        "name": "huge",
        "master_package": "m-home",
        "customer_price": "99999999999999999999999999999",
        "operator_price": "1",
    }
    r = world.call("POST", "/packages", "admin", body)
    assert r.status_code == 422 and r.json()["field"] == "customer_price", r.text
    assert world.call("GET", "/balance", "reseller").json()["balance"] == "0.00"


def test_a_reseller_cannot_give_service_without_an_activation(world: World) -> None:
    """Service is what a reseller pays for (an activation): it may suspend its customers,
    not set them active, extend their expiry or move an active one to another package."""
    new = {"username": "cust-a2", "password": "pw", "customer_type": "pppoe", "router": "r1"}
    for extra, field in (
        ({"status": "active"}, "status"),
        ({"expires_at": "2099-01-01T00:00:00"}, "expires_at"),
    ):
        r = world.call("POST", "/customers", "reseller", {**new, **extra})
        assert r.status_code == 403 and r.json()["field"] == field, r.text
    assert world.call("GET", "/customers/cust-a2", "admin").status_code == 404
    for change, field in (
        ({"status": "active"}, "status"),
        ({"expires_at": "2099-01-01T00:00:00"}, "expires_at"),
    ):
        r = world.call("PATCH", "/customers/cust-a", "reseller", change)
        assert r.status_code == 403 and r.json()["field"] == field, r.text
    a = world.call("GET", "/customers/cust-a", "admin").json()
    assert a["status"] == "new" and a["expires_at"] is None
    # Paid for: an active customer may be suspended and set active again, within its period.
    topup = {"account": f"reseller:{_reseller_id(world, 'resA')}", "amount": "1000"}
    assert world.call("POST", "/topups", "admin", topup).status_code == 201
    buy = {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k1"}
    assert world.call("POST", "/activations", "reseller", buy).status_code == 201
    for status in ("suspended", "active"):
        r = world.call("PATCH", "/customers/cust-a", "reseller", {"status": status})
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    # ...but not moved to a dearer package for the rest of the period it paid for.
    with transaction(world.ctx.factory) as s:
        registry.create_package(
            s,
            "t",
            {
                "name": "pkg-a-pro",
                "master_package": "m-home",
                "customer_price": "2000",
                "operator_price": "1500",
            },
        )
        registry.assign_package(s, "t", "resA", "pkg-a-pro")
    for status in ("active", "suspended"):  # suspended, it would be set active again
        assert world.call("PATCH", "/customers/cust-a", "admin", {"status": status}).is_success
        r = world.call("PATCH", "/customers/cust-a", "reseller", {"package": "pkg-a-pro"})
        assert r.status_code == 403 and r.json()["field"] == "package", r.text
    assert world.call("GET", "/customers/cust-a", "admin").json()["package"] == "pkg-a"
    # The admin still sets anything.
    r = world.call("PATCH", "/customers/cust-a", "admin", {"expires_at": "2099-01-01T00:00:00"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("account", "status"),
    [("reseller:999", 404), ("customer:999", 404), ("resller:1", 422), ("reseller:", 422)],
)
def test_a_topup_to_an_account_nobody_owns_is_refused(
    world: World, account: str, status: int
) -> None:
    # The money would sit in a phantom account (and a later customer or reseller given
    # that id would inherit it).
    r = world.call("POST", "/topups", "admin", {"account": account, "amount": "100"})
    assert r.status_code == status and r.json()["field"] == "account", r.text
    assert world.call("GET", f"/balances/{account}", "admin").json()["entries"] == []


def test_a_customer_never_sees_its_resellers_operator_price(world: World) -> None:
    topup = {"account": f"reseller:{_reseller_id(world, 'resA')}", "amount": "1000"}
    assert world.call("POST", "/topups", "admin", topup).status_code == 201
    buy = {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k1"}
    made = world.call("POST", "/activations", "reseller", buy).json()
    assert made["price"] == "350.00"  # the reseller sees what it paid
    for path in (f"/activations/{made['id']}", "/activations"):
        r = world.call("GET", path, "customer")
        assert r.status_code == 200, r.text
        # The operator price is the reseller's business (the package listing hides it too).
        assert "350" not in r.text and "reseller:" not in r.text, r.text
    assert world.call("GET", f"/activations/{made['id']}", "admin").json()["price"] == "350.00"
