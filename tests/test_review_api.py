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
