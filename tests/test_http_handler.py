"""The request handler every route uses (``http_handler``): planned once per route, it
answers as FastAPI's own handler answers, successes and refusals alike.

Each request below is sent twice to the same app (SQLite, seeded as ``test_api`` seeds),
once through the planned handler and once through FastAPI's (``http_handler.ACTIVE``),
and the two answers are compared whole: status, JSON body and content type.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from provisioner import http_handler, web
from provisioner.api.routes import API_ROUTERS
from tests.test_api import World, activate, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def test_every_route_of_the_api_and_the_panels_is_planned() -> None:
    """No route falls back to FastAPI's handler for good: each is planned (a fallback
    would be silent, and the speed it costs with it)."""
    assert http_handler.AVAILABLE, "this FastAPI's internals are not the planned ones"
    routers = [r for r, _ in API_ROUTERS] + [
        m.router for m in (web.auth, web.admin, web.desk, web.portal, web.dashboard, web.invoices)
    ]
    routes = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) > 100

    async def fastapi(request: Any) -> Any:
        raise AssertionError("not planned")

    unplanned = [r.path for r in routes if http_handler.lean(r, fastapi) is fastapi]
    assert unplanned == []


def both(world: World, method: str, path: str, role: str | None, **kw: Any) -> list[Any]:
    """The answer through each handler: (status, JSON or text, content type)."""
    out = []
    for active in (True, False):
        args = dict(kw)
        http_handler.ACTIVE = active
        try:
            headers = {**world.as_(role), **args.pop("headers", {})}
            r = world.client.request(method, "/api/v1" + path, headers=headers, **args)
        finally:
            http_handler.ACTIVE = True
        is_json = r.headers.get("content-type", "").startswith("application/json")
        out.append((r.status_code, r.json() if is_json else r.text, r.headers.get("content-type")))
    return out


REFUSALS: list[tuple[str, str, str | None, dict[str, Any]]] = [
    ("GET", "/health", None, {}),
    ("GET", "/customers", None, {}),  # no token
    ("GET", "/customers", "admin", {"params": {"limit": "0"}}),
    ("GET", "/customers", "admin", {"params": {"limit": "many", "offset": "-1"}}),
    ("GET", "/customers/no-such-user", "admin", {}),
    ("GET", "/customers/cust-b", "reseller", {}),  # another reseller's
    ("GET", "/customers", "reseller", {}),
    ("GET", "/activations", "admin", {"params": {"limit": "2"}}),
    ("GET", "/balance", "reseller", {}),
    ("GET", "/packages", "customer", {}),
    ("POST", "/activations", "reseller", {"content": b"{", "headers": {"content-type": "application/json"}}),
    ("POST", "/activations", "reseller", {}),  # no body
    ("POST", "/activations", "reseller", {"content": b"customer=x", "headers": {"content-type": "text/plain"}}),
    ("POST", "/activations", "reseller", {"json": {"customer": "cust-a"}}),
    ("POST", "/activations", "reseller", {"json": {"customer": 5, "package": [], "idempotency_key": ""}}),
    ("POST", "/activations", "reseller", {"json": {"customer": "nobody", "package": "pkg-a", "idempotency_key": "k1"}}),
    ("POST", "/activations", "customer", {"json": {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k2", "payer": "reseller:1"}}),
    ("POST", "/activations", None, {"json": {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k3"}}),
    ("POST", "/customers", "admin", {"json": {"username": "x"}}),
    ("POST", "/customers", "admin", {"json": {"username": "new-1", "password": "pw-123456", "customer_type": "pppoe", "router": "r1", "package": "no-such"}}),
    ("DELETE", "/customers/no-such-user", "admin", {}),
    ("PATCH", "/packages/public-basic", "admin", {"json": {"customer_price": "-1"}}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "role", "kw"), REFUSALS)
def test_same_answer_as_fastapi(
    world: World, method: str, path: str, role: str | None, kw: dict[str, Any]
) -> None:
    activate(world.ctx)
    planned, fastapi = both(world, method, path, role, **kw)
    assert planned == fastapi


def test_an_activation_answers_the_same_through_either(world: World) -> None:
    """A sale through each handler: 201 and the same view; the key used again, 200 and
    the first activation, through either."""
    activate(world.ctx)
    topup = world.call("POST", "/topups", "admin", {"account": "reseller:1", "amount": "5000"})
    assert topup.status_code == 201, topup.text
    answers = []
    for active, customer in ((True, "cust-a"), (False, "cust-a")):
        http_handler.ACTIVE = active
        try:
            r = world.client.post(
                "/api/v1/activations", headers=world.as_("reseller"),
                json={"customer": customer, "package": "pkg-a", "idempotency_key": f"same-{active}"},
            )  # fmt: skip
            again = world.client.post(
                "/api/v1/activations", headers=world.as_("reseller"),
                json={"customer": customer, "package": "pkg-a", "idempotency_key": f"same-{active}"},
            )  # fmt: skip
        finally:
            http_handler.ACTIVE = True
        assert (r.status_code, again.status_code) == (201, 200)
        assert again.json() == r.json()
        answers.append(r.json())
    first, second = answers
    differ = {k for k in first if first[k] != second[k]}
    assert differ <= {"id", "idempotency_key", "created_at", "starts_at", "expires_at", "status"}
    assert set(first) == set(second)
