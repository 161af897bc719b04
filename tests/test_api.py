"""The HTTP API: authentication, a role-by-endpoint matrix, reseller/customer scoping,
service-layer errors passed through unchanged (and nothing written), no credentials out.

Every test runs the real app (``create_app``) on a fresh, migrated SQLite file, seeded
through the registry service layer. The read-only role matrix shares one seeded database
per module; tests that write get their own.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, select

from provisioner import config, invoices, registry, secrets
from provisioner.api import create_app
from provisioner.auth import create_token
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.errors import ProvisionerError
from provisioner.models import (
    AuditLog,
    Customer,
    Invoice,
    LedgerEntry,
    MasterPackage,
    Package,
    Reseller,
    ResellerPackage,
    Router,
)
from provisioner.radius_tables import radcheck

API = "/api/v1"
ROUTER_PASSWORD = "rtr-Pass-9f3c1"
RADIUS_SECRET = "rad-Secret-77ab2"
ROLES = ("admin", "reseller", "customer")


def unused_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    ctx: Context
    client: TestClient
    tokens: dict[str, str]

    def as_(self, role: str | None) -> dict[str, str]:
        """Headers for a role: admin, reseller (resA), resB, customer (cust-a), or none."""
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def call(self, method: str, path: str, role: str | None, body: Any = None) -> httpx.Response:
        return self.client.request(method, API + path, headers=self.as_(role), json=body)

    def count(self, model: Any) -> int:
        with transaction(self.ctx.factory) as s:
            return registry.count(s, model)


def seed(ctx: Context) -> dict[str, str]:
    """One master; a public, a private and two reseller packages; two resellers with a
    package and a customer each; one router on 127.0.0.1 with a port nobody listens on."""
    with transaction(ctx.factory) as s:
        registry.create_router(
            s,
            "seed",
            {
                "name": "r1",
                "host": "127.0.0.1",
                "api_port": unused_port(),
                "username": "admin",
                "password": ROUTER_PASSWORD,
                "radius_secret": RADIUS_SECRET,
                "customer_types": "pppoe,hotspot",
            },
        )
        registry.create_master_package(
            s,
            "seed",
            {
                "name": "m-home",
                "customer_type": "pppoe",
                "rate_down": "10M",
                "rate_up": "5M",
                "pool_name": "pool-home",
                "pool_ranges": "10.50.0.2-10.50.0.254",
            },
        )
        for name, visibility, customer_price, operator_price in (
            ("public-basic", "public", "500", "400"),
            ("private-pro", "private", "900", "700"),
            ("pkg-a", "private", "600", "450"),
            ("pkg-b", "private", "650", "500"),
        ):
            registry.create_package(
                s,
                "seed",
                {
                    "name": name,
                    "master_package": "m-home",
                    "customer_price": customer_price,
                    "operator_price": operator_price,
                    "visibility": visibility,
                },
            )
        for reseller, package, price in (("resA", "pkg-a", "350"), ("resB", "pkg-b", None)):
            registry.create_reseller(s, "seed", {"name": reseller})
            registry.assign_package(s, "seed", reseller, package, price)
        for username, reseller, package in (
            ("cust-a", "resA", "pkg-a"),
            ("cust-b", "resB", "pkg-b"),
        ):
            registry.create_customer(
                s,
                "seed",
                {
                    "username": username,
                    "password": f"{username}-pw",
                    "customer_type": "pppoe",
                    "router": "r1",
                    "package": package,
                    "reseller": reseller,
                },
            )
        return {
            "admin": create_token(s, role="admin", name="tester"),
            "reseller": create_token(s, role="reseller", reseller="resA"),
            "resB": create_token(s, role="reseller", reseller="resB"),
            "customer": create_token(s, role="customer", customer="cust-a"),
        }


def activate(ctx: Context) -> None:
    """Make this context's settings and key the process's (both are process-wide)."""
    config.use(ctx.settings)
    secrets.configure(ctx.settings.secret_key, ctx.settings.key_file)


def make_world(tmp: Path) -> Iterator[World]:
    settings = Settings(
        database_url=f"sqlite:///{tmp}/db.sqlite3",
        key_file=tmp / "key",
        sync_debounce_seconds=0.0,
        router_timeout_seconds=2.0,
    )
    ctx = open_context(settings)
    try:
        tokens = seed(ctx)
        with TestClient(create_app(ctx)) as client:
            yield World(ctx, client, tokens)
    finally:
        ctx.close()
        config.use(None)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One seeded database for tests that change nothing (the role matrix)."""
    yield from make_world(tmp_path_factory.mktemp("api"))


@pytest.fixture
def matrix(shared: World) -> World:
    activate(shared.ctx)  # a test in between may have installed its own settings and key
    return shared


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A seeded database of this test's own, free to change."""
    yield from make_world(tmp_path)


# ---- authentication --------------------------------------------------------------------


def test_health_needs_no_token(matrix: World) -> None:
    r = matrix.call("GET", "/health", None)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer prov_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWRtaW46cHc="},
    ],
    ids=["missing", "unknown", "empty", "basic"],
)
def test_without_a_valid_token_401(matrix: World, headers: dict[str, str]) -> None:
    r = matrix.client.get(f"{API}/packages", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    body = r.json()
    assert body["field"] is None and "token" in body["reason"] and body["error"] == body["reason"]


def test_openapi_docs(matrix: World) -> None:
    assert matrix.client.get("/docs").status_code == 200
    spec = matrix.client.get("/openapi.json").json()
    assert f"{API}/master-packages" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


# ---- the role matrix -------------------------------------------------------------------
# (method, path, body, expected status for admin, reseller resA, customer cust-a).
# Nothing here changes the database: admins are sent to missing rows (404) or empty
# bodies (422), which proves they got past the role check without writing anything.

A, R, C = "admin", "reseller", "customer"
ADMIN_ONLY: list[tuple[str, str, Any, int]] = [
    ("GET", "/master-packages", None, 200),
    ("POST", "/master-packages", {}, 422),
    ("GET", "/master-packages/m-home", None, 200),
    ("PATCH", "/master-packages/nope", {}, 404),
    ("DELETE", "/master-packages/nope", None, 404),
    ("POST", "/packages", {}, 422),
    ("PATCH", "/packages/nope", {}, 404),
    ("DELETE", "/packages/nope", None, 404),
    ("GET", "/routers", None, 200),
    ("POST", "/routers", {}, 422),
    ("GET", "/routers/r1", None, 200),
    ("GET", "/routers/r1/runs", None, 200),
    ("GET", "/routers/nope/runs", None, 404),
    ("PATCH", "/routers/nope", {}, 404),
    ("DELETE", "/routers/nope", None, 404),
    ("GET", "/diff?router=nope", None, 404),
    ("POST", "/sync", {"routers": ["nope"]}, 404),
    ("GET", "/radius/diff", None, 200),
    ("POST", "/radius/sync", None, 200),  # the seeded tables are in step: writes nothing
    ("GET", "/balances/reseller:999", None, 404),  # an account nobody owns
    ("POST", "/topups", {}, 422),
    ("POST", "/cards", {}, 422),
]
SHARED: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", "/health", None, {A: 200, R: 200, C: 200}),
    ("GET", "/packages", None, {A: 200, R: 200, C: 200}),
    ("GET", "/packages/public-basic", None, {A: 200, R: 404, C: 200}),
    ("GET", "/packages/pkg-a", None, {A: 200, R: 200, C: 404}),
    ("GET", "/resellers/me", None, {A: 403, R: 200, C: 403}),
    # The operator tree: a reseller sees the operators below it (resA has none); a
    # sibling (resB) is 404 to it, as one that does not exist.
    ("GET", "/resellers", None, {A: 200, R: 200, C: 403}),
    ("POST", "/resellers", {}, {A: 422, R: 422, C: 403}),
    ("GET", "/resellers/resB", None, {A: 200, R: 404, C: 403}),
    ("PATCH", "/resellers/resB", {}, {A: 200, R: 404, C: 403}),
    ("PATCH", "/resellers/nope", {}, {A: 404, R: 404, C: 403}),
    ("DELETE", "/resellers/nope", None, {A: 404, R: 404, C: 403}),
    ("POST", "/resellers/nope/packages", {"package": "pkg-a"}, {A: 404, R: 404, C: 403}),
    ("DELETE", "/resellers/nope/packages/pkg-a", None, {A: 404, R: 404, C: 403}),
    ("POST", "/resellers/resB/settlements", {"amount": "0"}, {A: 422, R: 404, C: 403}),
    ("GET", "/resellers/resB/ledger", None, {A: 200, R: 404, C: 403}),
    ("GET", "/customers", None, {A: 200, R: 200, C: 403}),
    ("POST", "/customers/import?dry_run=true", "", {A: 422, R: 422, C: 403}),
    ("POST", "/customers", {}, {A: 422, R: 422, C: 403}),
    ("GET", "/customers/me", None, {A: 403, R: 403, C: 200}),
    ("GET", "/customers/cust-a", None, {A: 200, R: 200, C: 403}),
    ("GET", "/customers/cust-b", None, {A: 200, R: 404, C: 403}),
    ("GET", "/customers/cust-a/usage", None, {A: 200, R: 200, C: 200}),
    ("GET", "/customers/cust-b/usage", None, {A: 200, R: 404, C: 404}),
    ("PATCH", "/customers/nope", {}, {A: 404, R: 404, C: 403}),
    ("DELETE", "/customers/nope", None, {A: 404, R: 404, C: 403}),
    ("POST", "/activations", {}, {A: 422, R: 422, C: 422}),
    ("GET", "/activations/999999", None, {A: 404, R: 404, C: 404}),
    ("GET", "/activations", None, {A: 200, R: 200, C: 200}),
    ("GET", "/activations?customer=cust-b", None, {A: 200, R: 404, C: 404}),
    ("GET", "/balance", None, {A: 403, R: 200, C: 200}),
    ("POST", "/cards/redeem", {}, {A: 422, R: 422, C: 422}),
    ("GET", "/public/packages", None, {A: 200, R: 200, C: 200}),
    ("GET", "/invoices", None, {A: 200, R: 200, C: 200}),
    ("GET", "/invoices?customer=cust-b", None, {A: 200, R: 404, C: 404}),
    ("GET", "/invoices?reseller=resB", None, {A: 200, R: 404, C: 422}),
    ("GET", "/invoices/999999", None, {A: 404, R: 404, C: 404}),
    ("GET", "/invoices/999999/print", None, {A: 404, R: 404, C: 404}),
    ("POST", "/invoices/999999/payments", {}, {A: 404, R: 404, C: 404}),
]
PUBLIC = {"/health", "/public/packages"}
TABLE = [(m, p, b, {A: s, R: 403, C: 403}) for m, p, b, s in ADMIN_ONLY] + SHARED
MATRIX = [(m, p, b, role, want[role]) for m, p, b, want in TABLE for role in ROLES]
MATRIX += [(m, p, b, None, 200 if p in PUBLIC else 401) for m, p, b, _ in TABLE]


@pytest.mark.parametrize(
    ("method", "path", "body", "role", "expected"),
    MATRIX,
    ids=[f"{m} {p} as {role or 'anonymous'}" for m, p, _, role, _ in MATRIX],
)
def test_role_matrix(
    matrix: World, method: str, path: str, body: Any, role: str | None, expected: int
) -> None:
    r = matrix.call(method, path, role, body)
    assert r.status_code == expected, r.text
    if expected >= 400:
        assert set(r.json()) >= {"error", "field", "reason"}


def test_role_matrix_covers_every_endpoint(matrix: World) -> None:
    """A new route without a row in the matrix fails here, not in production."""
    from fastapi.routing import APIRoute

    missing = []
    for route in matrix.client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or not route.path.startswith(API):
            continue
        for method in route.methods:
            covered = any(
                m == method and route.path_regex.match(API + p.split("?")[0])
                for m, p, _, _ in TABLE
            )
            if not covered:
                missing.append(f"{method} {route.path}")
    assert not missing


# ---- reseller and customer scope -------------------------------------------------------


def test_reseller_cannot_see_or_touch_another_resellers_customer(world: World) -> None:
    listed = world.call("GET", "/customers", "reseller").json()["items"]
    assert [c["username"] for c in listed] == ["cust-a"]
    missing = world.call("GET", "/customers/no-such-user", "reseller").json()["reason"]
    for method, body in (("GET", None), ("PATCH", {"status": "suspended"}), ("DELETE", None)):
        r = world.call(method, "/customers/cust-b", "reseller", body)
        assert r.status_code == 404, (method, r.text)
        # the same answer as for a customer that does not exist: nothing leaks
        assert r.json()["reason"] == missing.replace("no-such-user", "cust-b")
    b = world.call("GET", "/customers/cust-b", "admin").json()
    assert b["status"] == "new" and b["reseller"] == "resB"  # the PATCH did nothing
    # reseller B sees its own customer, and only that one
    theirs = world.call("GET", "/customers", "resB").json()["items"]
    assert [c["username"] for c in theirs] == ["cust-b"]


def test_reseller_sees_only_its_packages_at_its_price(world: World) -> None:
    mine = world.call("GET", "/packages", "reseller").json()["items"]
    assert [p["name"] for p in mine] == ["pkg-a"]
    assert mine[0]["operator_price"] == "350.00"  # its own price, not the package's 450.00
    assert world.call("GET", "/packages/pkg-a", "reseller").json()["operator_price"] == "350.00"
    assert world.call("GET", "/packages/pkg-a", "admin").json()["operator_price"] == "450.00"
    # reseller B's package does not exist as far as reseller A can tell
    r = world.call("GET", "/packages/pkg-b", "reseller")
    assert r.status_code == 404
    assert r.json()["reason"] == "no package named 'pkg-b'"
    assert "pkg-b" not in world.call("GET", "/packages", "reseller").text
    # without an own price, the package's operator price applies
    assert world.call("GET", "/packages", "resB").json()["items"][0]["operator_price"] == "500.00"
    me = world.call("GET", "/resellers/me", "reseller").json()
    assert me["name"] == "resA"
    assert me["packages"] == [
        {"package": "pkg-a", "price": "350.00", "effective_price": "350.00", "customer_price": None}
    ]


def test_reseller_creates_customers_only_for_itself_and_its_packages(world: World) -> None:
    new = {"username": "cust-a2", "password": "pw", "customer_type": "pppoe", "router": "r1"}
    before = world.count(Customer)
    for extra, field in (
        ({"package": "pkg-b"}, "package"),  # B's package
        ({"package": "no-such-package"}, "package"),  # refused the same way
        ({"reseller": "resB"}, "reseller"),
        ({"reseller": None}, "reseller"),
    ):
        r = world.call("POST", "/customers", "reseller", {**new, **extra})
        assert r.status_code == 403, r.text
        assert r.json()["field"] == field
    assert world.count(Customer) == before
    r = world.call("POST", "/customers", "reseller", {**new, "package": "pkg-a"})
    assert r.status_code == 201, r.text
    assert r.json()["reseller"] == "resA" and r.json()["package"] == "pkg-a"
    # moving its customer to a package it does not sell is refused as well
    r = world.call("PATCH", "/customers/cust-a2", "reseller", {"package": "private-pro"})
    assert r.status_code == 403
    assert world.call("GET", "/customers/cust-a2", "admin").json()["package"] == "pkg-a"
    r = world.call("PATCH", "/customers/cust-a2", "reseller", {"status": "suspended"})
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    with transaction(world.ctx.factory) as s:
        reseller_id = registry.get_by_name(s, Reseller, "resA").id
        actors = set(s.scalars(select(AuditLog.actor).where(AuditLog.entity == "customers")))
    assert f"reseller:{reseller_id}" in actors
    assert world.call("DELETE", "/customers/cust-a2", "reseller").status_code == 204
    assert world.count(Customer) == before


def test_customer_sees_public_packages_and_itself(world: World) -> None:
    r = world.call("GET", "/packages", "customer")
    assert [p["name"] for p in r.json()["items"]] == ["public-basic"]
    assert r.json()["items"][0]["price"] == "500.00"
    assert "operator_price" not in r.text and "400" not in r.text
    one = world.call("GET", "/packages/public-basic", "customer")
    assert one.status_code == 200 and "operator_price" not in one.text
    for private in ("private-pro", "pkg-a"):
        r = world.call("GET", f"/packages/{private}", "customer")
        assert r.status_code == 404 and r.json()["reason"] == f"no package named {private!r}"
    me = world.call("GET", "/customers/me", "customer").json()
    assert me["username"] == "cust-a" and "password" not in me


# ---- service errors pass through; nothing is written -----------------------------------


def service_error(ctx: Context, call: Callable[[Any], Any]) -> ProvisionerError:
    """What the service layer (and so the CLI) says to the same input; rolled back."""
    with pytest.raises(ProvisionerError) as info, transaction(ctx.factory) as s:
        call(s)
    return info.value


MASTER = {"name": "m-new", "customer_type": "pppoe", "rate_down": "20M", "rate_up": "10M"}
PACKAGE = {
    "name": "p-new",
    "master_package": "m-home",
    "customer_price": "100",
    "operator_price": "80",
}
INVALID: list[tuple[str, str, dict[str, Any], Callable[[Any], Any], str, str]] = [
    (
        "POST",
        "/master-packages",
        {**MASTER, "rate_down": "fast"},
        lambda s: registry.create_master_package(s, "t", {**MASTER, "rate_down": "fast"}),
        "rate_down",
        "",
    ),
    (
        "POST",
        "/master-packages",
        {**MASTER, "pool_name": "pool-new", "pool_ranges": "10.50.0.100-10.50.1.10"},
        lambda s: registry.create_master_package(
            s, "t", {**MASTER, "pool_name": "pool-new", "pool_ranges": "10.50.0.100-10.50.1.10"}
        ),
        "pool_ranges",
        "overlaps",
    ),
    (
        "PATCH",
        "/master-packages/m-home",
        {"rate_up": "fast"},
        lambda s: registry.update_master_package(s, "t", "m-home", {"rate_up": "fast"}),
        "rate_up",
        "",
    ),
    (
        "POST",
        "/packages",
        {**PACKAGE, "customer_price": "-5"},
        lambda s: registry.create_package(s, "t", {**PACKAGE, "customer_price": "-5"}),
        "customer_price",
        "must not be negative",
    ),
    (
        "POST",
        "/packages",
        {**PACKAGE, "customer_type": "hotspot"},
        lambda s: registry.create_package(s, "t", {**PACKAGE, "customer_type": "hotspot"}),
        "customer_type",
        "inherited",
    ),
    (
        "PATCH",
        "/packages/pkg-a",
        {"operator_price": "-1"},
        lambda s: registry.update_package(s, "t", "pkg-a", {"operator_price": "-1"}),
        "operator_price",
        "must not be negative",
    ),
    (
        "POST",
        "/resellers/resA/packages",
        {"package": "pkg-b", "price": "-1"},
        lambda s: registry.assign_package(s, "t", "resA", "pkg-b", "-1"),
        "price",
        "must not be negative",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "call", "field", "fragment"),
    INVALID,
    ids=[f"{m} {p} {f}" for m, p, _, _, f, _ in INVALID],
)
def test_validation_errors_are_the_services_and_write_nothing(
    world: World,
    method: str,
    path: str,
    body: dict[str, Any],
    call: Callable[[Any], Any],
    field: str,
    fragment: str,
) -> None:
    models = (MasterPackage, Package, AuditLog, Reseller)
    before = {m: world.count(m) for m in models}
    master_before = world.call("GET", "/master-packages/m-home", "admin").json()
    r = world.call(method, path, "admin", body)
    assert r.status_code == 422, r.text
    expected = service_error(world.ctx, call)
    assert r.json() == {"error": str(expected), "field": field, "reason": expected.reason}
    assert fragment in r.json()["reason"]
    assert {m: world.count(m) for m in models} == before
    assert world.call("GET", "/master-packages/m-home", "admin").json() == master_before


def test_request_shape_errors_use_the_same_shape(world: World) -> None:
    r = world.call("POST", "/packages", "admin", {**PACKAGE, "customer_price": 5.5})
    assert r.status_code == 422
    assert r.json()["field"] == "customer_price"
    assert r.json()["error"].startswith("customer_price: ")
    assert "5.5" not in r.text  # submitted values are not echoed (they may be secrets)


def test_a_refused_update_is_rolled_back(world: World) -> None:
    # the service changes the row, then finds customers still on the old type: 409
    r = world.call("PATCH", "/master-packages/m-home", "admin", {"customer_type": "hotspot"})
    assert r.status_code == 409
    assert r.json()["field"] == "customer_type"
    assert world.call("GET", "/master-packages/m-home", "admin").json()["customer_type"] == "pppoe"


def test_a_failed_commit_is_never_reported_as_success(world: World) -> None:
    """The request's transaction commits before the response is sent, not after it."""
    flushed_reseller = []

    def after_flush(session: Any, _ctx: Any) -> None:
        flushed_reseller.extend(o for o in session.new if isinstance(o, Reseller))

    def before_commit(_session: Any) -> None:
        if flushed_reseller:
            flushed_reseller.clear()
            raise RuntimeError("the database refused the commit")

    event.listen(world.ctx.factory, "after_flush", after_flush)
    event.listen(world.ctx.factory, "before_commit", before_commit)
    try:
        client = TestClient(world.client.app, raise_server_exceptions=False)
        r = client.post(f"{API}/resellers", json={"name": "resC"}, headers=world.as_("admin"))
    finally:
        event.remove(world.ctx.factory, "after_flush", after_flush)
        event.remove(world.ctx.factory, "before_commit", before_commit)
    assert r.status_code == 500
    assert r.json()["error"].startswith("internal error")
    assert world.call("GET", "/resellers/resC", "admin").status_code == 404


def test_deleting_a_master_package_in_use_is_409_naming_its_packages(world: World) -> None:
    r = world.call("DELETE", "/master-packages/m-home", "admin")
    assert r.status_code == 409
    reason = r.json()["reason"]
    for name in ("public-basic", "private-pro", "pkg-a", "pkg-b", "cust-a"):
        assert name in reason
    assert world.call("GET", "/master-packages/m-home", "admin").status_code == 200


def test_admin_crud_commits(world: World) -> None:
    r = world.call("POST", "/master-packages", "admin", MASTER)
    assert r.status_code == 201 and r.json()["rate_limit"] == "10M/20M"
    r = world.call("POST", "/packages", "admin", {**PACKAGE, "master_package": "m-new"})
    assert r.status_code == 201
    assert r.json()["warnings"] == [] and r.json()["package"]["visibility"] == "private"
    r = world.call("PATCH", "/packages/p-new", "admin", {"operator_price": "120"})
    assert r.status_code == 200 and r.json()["package"]["operator_price"] == "120.00"
    assert "exceeds customer_price" in r.json()["warnings"][0]
    name = "Home 10M/5M"  # display names may contain a slash
    r = world.call("PATCH", "/packages/p-new", "admin", {"name": name})
    assert r.status_code == 200, r.text
    path = f"/packages/{quote(name, safe='')}"
    assert world.call("GET", path, "admin").json()["name"] == name
    r = world.call("POST", "/resellers/resB/packages", "admin", {"package": name, "price": "90"})
    assert r.status_code == 200 and r.json()["effective_price"] == "90.00"
    assert name in world.call("GET", "/packages", "resB").text
    unassign = f"/resellers/resB/packages/{quote(name, safe='')}"
    assert world.call("DELETE", unassign, "admin").status_code == 204
    assert world.call("DELETE", path, "admin").status_code == 204
    assert world.call("DELETE", "/master-packages/m-new", "admin").status_code == 204
    assert world.call("GET", "/master-packages/m-new", "admin").status_code == 404
    with transaction(world.ctx.factory) as s:
        actors = set(s.scalars(select(AuditLog.actor).where(AuditLog.entity == "packages")))
    assert actors == {"seed", "admin:tester"}


# ---- credentials never leave -----------------------------------------------------------


def test_router_responses_never_carry_credentials(world: World) -> None:
    texts = [
        world.call("GET", "/routers", "admin").text,
        world.call("GET", "/routers/r1", "admin").text,
        world.call("PATCH", "/routers/r1", "admin", {"password": ROUTER_PASSWORD + "2"}).text,
        world.call(
            "POST",
            "/routers",
            "admin",
            {
                "name": "r2",
                "host": "127.0.0.2",
                "username": "admin",
                "password": ROUTER_PASSWORD,
                "radius_secret": RADIUS_SECRET,
            },
        ).text,
        world.call(
            "POST",
            "/routers",
            "admin",
            {
                "name": "r3",
                "host": "not-an-ip",
                "username": "a",
                "password": ROUTER_PASSWORD,
                "radius_secret": RADIUS_SECRET,
            },
        ).text,
    ]
    assert '"name":"r2"' in texts[3] and "not-an-ip" in texts[4]
    for text in texts:
        assert ROUTER_PASSWORD not in text and RADIUS_SECRET not in text
        assert "radius_secret" not in text and '"password"' not in text


def test_radius_diff_masks_passwords_and_sync_repairs(world: World) -> None:
    with transaction(world.ctx.factory) as s:
        s.execute(delete(radcheck).where(radcheck.c.username == "cust-a"))
    r = world.call("GET", "/radius/diff", "admin")
    assert r.status_code == 200
    assert "cust-a-pw" not in r.text and RADIUS_SECRET not in r.text
    changes = r.json()["plans"][0]["changes"]
    password = next(c for c in changes if c["key"] == "cust-a|Cleartext-Password")
    assert password["action"] == "add"
    assert {"name": "value", "old": None, "new": "(sensitive)"} in password["props"]
    assert "+ cust-a|Cleartext-Password" in r.json()["text"]
    r = world.call("POST", "/radius/sync", "admin")
    assert r.status_code == 200 and r.json()["written"] == len(changes)
    assert "cust-a-pw" not in r.text
    after = world.call("GET", "/radius/diff", "admin").json()
    assert after["plans"][0]["changes"] == []
    assert after["summary"].startswith("0 to add, 0 to change, 0 to remove")


# ---- routers that do not answer ----------------------------------------------------------


def test_diff_and_sync_with_an_unreachable_router(world: World) -> None:
    r = world.call("GET", "/diff?router=r1&adopt=false", "admin")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["target"] for p in body["plans"]] == ["r1"]
    assert body["plans"][0]["error"]
    assert body["plans"][0]["changes"] == []
    assert "1 unreachable" in body["summary"]
    assert "router r1: UNREACHABLE" in body["text"]
    assert ROUTER_PASSWORD not in r.text
    r = world.call("POST", "/sync", "admin", {"routers": ["r1"]})
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert result["router"] == "r1" and result["status"] == "unreachable" and result["error"]
    rows = world.call("GET", "/routers", "admin").json()["items"]
    assert rows[0]["last_status"] == "unreachable"
    r = world.call("GET", "/routers/r1/runs", "admin")
    assert r.status_code == 200, r.text
    (run,) = r.json()["items"]
    assert run["status"] == "unreachable" and run["trigger"] == "api"
    assert run["error"] == result["error"] and run["changes"] == []
    assert ROUTER_PASSWORD not in r.text and RADIUS_SECRET not in r.text
    assert world.call("GET", "/routers/r1/runs?limit=0", "admin").status_code == 422
    with transaction(world.ctx.factory) as s:
        assert s.scalar(select(Router.enabled).where(Router.name == "r1")) is True


# ---- activations over HTTP --------------------------------------------------------------


def test_reseller_activation_over_http_is_idempotent_and_scoped(world: World) -> None:
    assert (
        world.call(
            "POST", "/topups", "admin", {"account": "reseller:1", "amount": "500"}
        ).status_code
        == 201
    )
    body = {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "order-1"}
    first = world.call("POST", "/activations", "reseller", body)
    assert first.status_code == 201, first.text
    assert first.json()["price"] == "350.00" and first.json()["customer"] == "cust-a"
    again = world.call("POST", "/activations", "reseller", body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert world.call("GET", "/balance", "reseller").json()["balance"] == "150.00"
    # Not enough left: the refusal names balance and price; nothing is charged.
    poor = world.call("POST", "/activations", "reseller", {**body, "idempotency_key": "order-2"})
    assert (
        poor.status_code == 402
        and "has 150.00 BDT, the package costs 350.00 BDT" in poor.json()["error"]
    )
    # Another reseller's customer, or a package not assigned: 404, and nothing changes.
    other = world.call(
        "POST",
        "/activations",
        "reseller",
        {"customer": "cust-b", "package": "pkg-a", "idempotency_key": "x1"},
    )
    assert other.status_code == 404
    unassigned = world.call(
        "POST",
        "/activations",
        "reseller",
        {"customer": "cust-a", "package": "private-pro", "idempotency_key": "x2"},
    )
    assert unassigned.status_code == 404
    assert world.call("GET", f"/activations/{first.json()['id']}", "resB").status_code == 404
    assert world.call("GET", f"/activations/{first.json()['id']}", "customer").status_code == 200
    assert world.call("GET", "/balance", "reseller").json()["balance"] == "150.00"


def test_activation_listing_is_scoped_by_role(world: World) -> None:
    with transaction(world.ctx.factory) as s:
        ids = {name: registry.get_by_name(s, Reseller, name).id for name in ("resA", "resB")}
    for reseller_id in ids.values():
        topup = {"account": f"reseller:{reseller_id}", "amount": "2000"}
        assert world.call("POST", "/topups", "admin", topup).status_code == 201
    made = []
    for role, customer, package, key in (
        ("reseller", "cust-a", "pkg-a", "a-1"),
        ("resB", "cust-b", "pkg-b", "b-1"),
        ("reseller", "cust-a", "pkg-a", "a-2"),
    ):
        body = {"customer": customer, "package": package, "idempotency_key": key}
        r = world.call("POST", "/activations", role, body)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    first, theirs, second = made

    def ids_of(role: str, query: str = "") -> list[int]:
        r = world.call("GET", f"/activations{query}", role)
        assert r.status_code == 200, r.text
        return [row["id"] for row in r.json()["items"]]

    assert ids_of("admin") == [second, theirs, first]  # newest first
    assert ids_of("reseller") == [second, first]
    assert ids_of("resB") == [theirs]
    assert ids_of("customer") == [second, first]
    assert "cust-b" not in world.call("GET", "/activations", "reseller").text
    assert ids_of("reseller", "?customer=cust-a&limit=1") == [second]
    assert ids_of("admin", "?customer=cust-b") == [theirs]
    # another reseller's customer reads exactly like one that does not exist
    for role in ("reseller", "customer"):
        r = world.call("GET", "/activations?customer=cust-b", role)
        missing = world.call("GET", "/activations?customer=nobody", role)
        assert r.status_code == missing.status_code == 404
        assert r.json()["reason"] == missing.json()["reason"].replace("nobody", "cust-b")
    # each row is GET /activations/{id}, plus when it was made; the filter agrees with it
    rows = world.call("GET", "/activations", "admin").json()["items"]
    for row in rows:
        one = world.call("GET", f"/activations/{row['id']}", "admin").json()
        assert {k: v for k, v in row.items() if k != "at"} == one
    for status in ("pending", "applied", "failed"):
        want = [row["id"] for row in rows if row["status"] == status]
        assert ids_of("admin", f"?status={status}") == want
    for query, field in (("?status=done", "status"), ("?limit=0", "limit")):
        r = world.call("GET", f"/activations{query}", "admin")
        assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_customer_buys_public_package_with_a_card(world: World) -> None:
    cards = world.call("POST", "/cards", "admin", {"count": 1, "value": "500"}).json()["cards"]
    serial, pin = cards[0]["serial"], cards[0]["pin"]
    private = world.call(
        "POST",
        "/activations",
        "customer",
        {
            "customer": "cust-a",
            "package": "private-pro",
            "idempotency_key": "c0",
            "payer": "card",
            "card_serial": serial,
            "card_pin": pin,
        },
    )
    assert private.status_code == 404
    bought = world.call(
        "POST",
        "/activations",
        "customer",
        {
            "customer": "cust-a",
            "package": "public-basic",
            "idempotency_key": "c1",
            "payer": "card",
            "card_serial": serial,
            "card_pin": pin,
        },
    )
    assert bought.status_code == 201, bought.text
    assert world.call("GET", "/balance", "customer").json()["balance"] == "0.00"
    again = world.call("POST", "/cards/redeem", "customer", {"serial": serial, "pin": pin})
    assert again.status_code == 422 and "already redeemed" in again.json()["error"]
    listing = world.call("GET", "/public/packages", None).json()["items"]
    assert [p["name"] for p in listing] == ["public-basic"] and "operator_price" not in listing[0]


def test_metrics_count_work_without_names(world: World) -> None:
    world.call("POST", "/activations", "reseller", {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "m1"})
    text = world.client.get("/metrics").text
    assert 'provisioner_customers{status="new"}' in text
    assert "provisioner_activations_total" in text
    assert "cust-a" not in text and ROUTER_PASSWORD not in text


def test_reads_answer_while_a_writer_holds_the_sqlite_lock(world: World) -> None:
    """GET requests are WAL readers: a long write elsewhere (a sync recording its run, an
    activation) does not hold up the package list or a token check."""
    writing, answered = threading.Event(), threading.Event()

    def writer() -> None:
        with transaction(world.ctx.factory) as s:
            registry.create_reseller(s, "test", {"name": "holding-the-lock"})
            writing.set()
            answered.wait(timeout=20)  # bounded: the test never hangs

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert writing.wait(timeout=20)
        r = world.call("GET", "/packages", "admin")
        done_while_locked = t.is_alive()  # the writer still holds the lock (waits up to 20 s)
    finally:
        answered.set()
        t.join(timeout=20)
    assert r.status_code == 200 and done_while_locked


def test_every_operation_declares_its_success_schema(matrix: World) -> None:
    """Every operation in /openapi.json has a 2xx response with a declared schema (a 204
    has no body); the faces share the read side's models."""
    spec = matrix.client.get("/openapi.json").json()
    missing = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            if not ok:
                missing.append(f"{method.upper()} {path}: no 2xx response")
            for code, r in ok.items():
                content = r.get("content", {})  # JSON, or a page to print (text/html)
                schema = (content.get("application/json") or content.get("text/html") or {}).get(
                    "schema"
                )
                if code != "204" and not schema:
                    missing.append(f"{method.upper()} {path} {code}: no schema")
    assert missing == []
    assert len(spec["paths"]) >= 20


def _enum_of(schema: dict[str, Any]) -> list[str] | None:
    for s in [schema, *schema.get("anyOf", [])]:
        if "enum" in s:
            return list(s["enum"])
    return None


def test_requests_document_their_choices_as_enums_and_what_is_required(world: World) -> None:
    """The request side of /openapi.json says what the code takes: a field or query
    parameter with a fixed set of values is an enum of exactly those, a field the code
    cannot do without is required; a value outside the enum is still a 422 naming the
    field, in the registry's words."""
    spec = world.client.get("/openapi.json").json()
    bodies = spec["components"]["schemas"]

    def field(model: str, name: str) -> dict[str, Any]:
        return dict(bodies[model]["properties"][name])

    types = ["pppoe", "hotspot", "static", "other"]
    for model, name, values in [
        ("MasterPackageCreate", "customer_type", types),
        ("MasterPackageUpdate", "billing", ["daily", "monthly"]),
        ("PackageUpdate", "visibility", ["public", "private"]),
        ("ResellerUpdate", "billing", ["prepaid", "postpaid"]),
        ("RouterUpdate", "mode", ["radius", "local"]),
        ("CustomerCreate", "customer_type", types),
        ("CustomerUpdate", "status", ["new", "active", "expired", "suspended"]),
        ("ActivationCreate", "payer", ["auto", "admin", "reseller", "customer", "card"]),
        ("TokenCreate", "role", ["admin", "reseller", "customer"]),
    ]:
        assert _enum_of(field(model, name)) == values, (model, name)
    listed = field("RouterUpdate", "customer_types")["anyOf"]
    assert {"type": "string", "enum": ["pppoe", "hotspot", "static"]} in [
        s.get("items") for s in listed
    ]
    for path, values in [
        ("/customers", ["new", "active", "expired", "suspended"]),
        ("/activations", ["pending", "applied", "failed"]),
        ("/invoices", ["open", "paid", "void"]),
    ]:
        params = {p["name"]: p for p in spec["paths"][f"{API}{path}"]["get"]["parameters"]}
        assert _enum_of(params["status"]["schema"]) == values, path
    assert set(bodies["ActivationCreate"]["required"]) == {"customer", "package", "idempotency_key"}
    assert bodies["ActivationCreate"]["properties"]["idempotency_key"]["minLength"] == 1

    bad = [
        ("POST", "/master-packages", {"name": "x", "customer_type": "PPPoE", "rate_down": "1M",
                                      "rate_up": "1M"}, "customer_type"),
        ("PATCH", "/customers/cust-a", {"status": "gone"}, "status"),
        ("POST", "/activations", {"customer": "cust-a", "package": "pkg-a"}, "idempotency_key"),
        ("POST", "/activations", {"customer": "cust-a", "package": "pkg-a",
                                  "idempotency_key": ""}, "idempotency_key"),
        ("POST", "/activations", {"customer": "cust-a", "package": "pkg-a",
                                  "idempotency_key": "k", "payer": "bank"}, "payer"),
        ("GET", "/customers?status=gone", None, "status"),
    ]  # fmt: skip
    for method, path, body, name in bad:
        r = world.call(method, path, "admin", body)
        assert r.status_code == 422 and r.json()["field"] == name, (path, r.text)
    r = world.call("PATCH", "/customers/cust-a", "admin", {"status": "gone"})
    assert r.json()["reason"] == "must be one of new, active, expired, suspended"


# ---- found in review ----------------------------------------------------------


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
    assert world.call("GET", f"/balances/{account}", "admin").status_code == status
    assert world.count(LedgerEntry) == 0


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
        # Quoted: a bare "350" matched a timestamp's microseconds (".693509") once.
        assert '"350.00"' not in r.text and "reseller:" not in r.text, r.text
    assert world.call("GET", f"/activations/{made['id']}", "admin").json()["price"] == "350.00"


def test_a_rename_clash_is_409_naming_the_field(world: World) -> None:
    r = world.call("PATCH", "/resellers/resA", "admin", {"name": "resB"})
    assert r.status_code == 409 and r.json()["field"] == "name", r.text
    r = world.call("POST", "/master-packages", "admin", {**MASTER, "name": "m-other"})
    assert r.status_code == 201, r.text
    r = world.call("PATCH", "/master-packages/m-other", "admin", {"name": "m-home"})
    assert r.status_code == 409 and r.json()["field"] == "name", r.text
    with transaction(world.ctx.factory) as s:
        assert {m.name for m in s.query(MasterPackage)} >= {"m-home", "m-other"}


def test_an_integrity_error_is_logged_as_one_line_without_its_parameters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sqlalchemy.exc import IntegrityError
    from starlette.requests import Request

    from provisioner.api import errors

    exc = IntegrityError(
        "INSERT INTO customers (username, password) VALUES (?, ?)",
        {"username": "b1", "password": "hunter2-secret"},
        Exception("UNIQUE constraint failed: customers.username\nmore detail"),
    )
    request = Request({"type": "http", "method": "POST", "path": "/api/v1/customers", "headers": []})
    with caplog.at_level("INFO"):
        response = errors._integrity_error(request, exc)
    assert response.status_code == 409
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert record.getMessage() == (
        "POST /api/v1/customers refused, a concurrent change won: "
        "UNIQUE constraint failed: customers.username"
    )


def test_invoices_scoped_printed_and_paid(world: World) -> None:
    now = datetime.now(UTC)
    ids = {}
    with transaction(world.ctx.factory) as s:
        for name in ("cust-a", "cust-b"):
            c = registry.get_by_name(s, Customer, name, "username")
            inv = Invoice(
                customer_id=c.id, amount=Decimal("600"), period_start=now,
                period_end=now + timedelta(days=30), due_at=now, status="open",
            )  # fmt: skip
            s.add(inv)
            s.flush()
            ids[name] = inv.id
    a, b = ids["cust-a"], ids["cust-b"]
    assert [i["id"] for i in world.call("GET", "/invoices", "reseller").json()] == [a]
    assert [i["id"] for i in world.call("GET", "/invoices", "customer").json()] == [a]
    assert {i["id"] for i in world.call("GET", "/invoices?status=open", "admin").json()} == {a, b}
    assert [i["id"] for i in world.call("GET", "/invoices?reseller=resB", "admin").json()] == [b]
    page = world.call("GET", f"/invoices/{a}/print", "customer")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "cust-a" in page.text and "600.00" in page.text
    pdf = world.call("GET", f"/invoices/{a}/print?format=pdf", "reseller")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert world.call("GET", f"/invoices/{b}/print?format=pdf", "reseller").status_code == 404
    assert world.call("POST", f"/invoices/{b}/payments", "reseller", {}).status_code == 404
    r = world.call("POST", f"/invoices/{a}/payments", "customer", {})
    assert r.status_code == 402, r.text  # its balance is 0
    r = world.call("POST", f"/invoices/{a}/payments", "admin", {"reference": "cash 1"})
    assert r.status_code == 201, r.text
    paid = r.json()
    assert paid["status"] == "paid" and paid["payments"][0]["method"] == "admin"
    assert paid["payments"][0]["reference"] == "cash 1"
    assert world.call("POST", f"/invoices/{a}/payments", "admin", {}).status_code == 409


def test_no_operator_price_reaches_a_customer(world: World) -> None:
    """Every operator price in the database (the packages' and each reseller's own) is
    collected, and none appears in anything a customer can reach: every API read as the
    customer, its activation and invoices (and their print), and every portal page."""
    import re

    topup = {"account": f"reseller:{_reseller_id(world, 'resA')}", "amount": "5000"}
    assert world.call("POST", "/topups", "admin", topup).status_code == 201
    buy = {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k1"}
    made = world.call("POST", "/activations", "reseller", buy).json()
    with transaction(world.ctx.factory) as s:
        c = registry.get_by_name(s, Customer, "cust-a", "username")
        assert c.expires_at is not None
        due = c.expires_at - timedelta(days=1)
        operator = set(s.scalars(select(Package.operator_price))) | set(
            s.scalars(select(ResellerPackage.price).where(ResellerPackage.price.is_not(None)))
        )
        shown = set(s.scalars(select(Package.customer_price))) | set(
            s.scalars(select(ResellerPackage.customer_price).where(
                ResellerPackage.customer_price.is_not(None)))
        )  # fmt: skip
    invoices.run(world.ctx.factory, due)  # an open invoice beside the activation's paid one
    secret = {f"{p:.2f}" for p in operator - shown}
    assert "350.00" in secret and "450.00" in secret
    reached: dict[str, str] = {}
    for path, item in world.client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if "get" in item and "{" not in path:
            r = world.call("GET", path.removeprefix("/api/v1"), "customer")
            if r.status_code == 200:
                reached[path] = r.text
    invoice_ids = [i["id"] for i in world.call("GET", "/invoices", "customer").json()]
    assert len(invoice_ids) == 2
    for path in (f"/activations/{made['id']}", *(f"/invoices/{i}" for i in invoice_ids),
                 *(f"/invoices/{i}/print" for i in invoice_ids)):  # fmt: skip
        r = world.call("GET", path, "customer")
        assert r.status_code == 200, (path, r.text)
        reached[path] = r.text
    portal = TestClient(world.client.app)
    form = portal.get("/portal/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    r = portal.post("/portal/login", data={"csrf": csrf.group(1), "username": "cust-a",
                                           "password": "cust-a-pw"})  # fmt: skip
    assert r.status_code == 200 and "/portal/login" not in str(r.url), r.text
    for path in ("/portal/", "/portal/packages", f"/portal/activations/{made['id']}"):
        r = portal.get(path)
        assert r.status_code == 200, (path, r.text)
        reached[path] = r.text
    assert len(reached) > 10, sorted(reached)
    leaks = {path: p for path, text in reached.items() for p in secret if p in text}
    assert not leaks, leaks
