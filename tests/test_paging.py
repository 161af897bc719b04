"""Every list endpoint pages the same way ({items, total, limit, offset}) and filters;
each role's total counts only what it may see.

One seeded database (``tests.test_api``'s world, plus customers spread over statuses,
packages, resellers and expiry dates, top-ups and activations) is shared by the module;
nothing here writes after the seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from provisioner import registry
from provisioner.db import transaction
from provisioner.models import Reseller, utcnow
from tests.test_api import World, activate, make_world

EXTRA = [  # username, reseller, package, status, expires in days (None: never)
    ("alpha-1", "resA", "pkg-a", "active", 3),
    ("alpha-2", "resA", "pkg-a", "suspended", 20),
    ("alpha-3", "resA", None, "new", None),
    ("beta-1", "resB", "pkg-b", "active", 10),
    ("beta-2", "resB", "pkg-b", "expired", -5),
    ("gamma-1", None, "public-basic", "active", 1),
]


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for w in make_world(tmp_path_factory.mktemp("paging")):
        now = utcnow()
        with transaction(w.ctx.factory) as s:
            for username, reseller, package, status, days in EXTRA:
                registry.create_customer(
                    s,
                    "seed",
                    {
                        "username": username,
                        "password": "pw",
                        "customer_type": "pppoe",
                        "router": "r1",
                        "package": package,
                        "reseller": reseller,
                        "status": status,
                        "expires_at": None if days is None else now + timedelta(days=days),
                    },
                )
            ids = {r.name: r.id for r in s.query(Reseller)}
        for _ in range(3):
            r = w.call(
                "POST", "/topups", "admin", {"account": f"reseller:{ids['resA']}", "amount": "300"}
            )
            assert r.status_code == 201, r.text
        for i, customer in enumerate(("cust-a", "cust-a")):  # bought, then renewed
            body = {"customer": customer, "package": "pkg-a", "idempotency_key": f"k{i}"}
            assert w.call("POST", "/activations", "reseller", body).status_code == 201
        yield w


@pytest.fixture
def world(paged: World) -> World:
    activate(paged.ctx)
    return paged


def page(world: World, path: str, role: str = "admin") -> dict[str, Any]:
    r = world.call("GET", path, role)
    assert r.status_code == 200, (path, r.text)
    body = r.json()
    assert set(body) >= {"items", "total", "limit", "offset"}, body
    return body


def items(world: World, path: str, role: str = "admin") -> list[Any]:
    return list(page(world, path, role)["items"])


# Every list endpoint, with a key that names an item, for each role that may list it.
LISTS = [
    ("/packages", "name", ("admin", "reseller", "customer")),
    ("/public/packages", "name", ("admin", "customer")),
    ("/master-packages", "name", ("admin",)),
    ("/resellers", "name", ("admin",)),
    ("/routers", "name", ("admin",)),
    ("/routers/r1/runs", "id", ("admin",)),
    ("/customers", "username", ("admin", "reseller")),
    ("/activations", "id", ("admin", "reseller", "customer")),
    ("/tokens", "id", ("admin",)),
]


@pytest.mark.parametrize(
    ("path", "key", "role"),
    [(p, k, r) for p, k, roles in LISTS for r in roles],
    ids=[f"{p} as {r}" for p, _, roles in LISTS for r in roles],
)
def test_pages_add_up_to_the_whole_list(world: World, path: str, key: str, role: str) -> None:
    whole = page(world, f"{path}?limit=1000", role)
    assert whole["total"] == len(whole["items"]) and whole["offset"] == 0
    walked: list[Any] = []
    for offset in range(0, whole["total"] + 1, 2):
        p = page(world, f"{path}?limit=2&offset={offset}", role)
        assert (p["total"], p["limit"], p["offset"]) == (whole["total"], 2, offset)
        assert len(p["items"]) == min(2, max(0, whole["total"] - offset))
        walked += [i[key] for i in p["items"]]
    assert walked == [i[key] for i in whole["items"]]
    assert page(world, f"{path}?offset={whole['total'] + 5}", role)["items"] == []
    assert page(world, path, role)["limit"] == 50  # the default


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=x"])
@pytest.mark.parametrize("path", [p for p, _, _ in LISTS])
def test_paging_out_of_bounds_is_a_422_naming_it(world: World, path: str, query: str) -> None:
    r = world.call("GET", f"{path}?{query}", "admin")
    assert r.status_code == 422, r.text
    assert r.json()["field"] == query.split("=")[0]


def test_totals_count_only_what_the_caller_may_see(world: World) -> None:
    assert page(world, "/customers")["total"] == 2 + len(EXTRA)
    assert page(world, "/customers", "reseller")["total"] == 4  # cust-a, alpha-1..3
    assert page(world, "/customers", "resB")["total"] == 3
    assert page(world, "/packages")["total"] == 4
    assert page(world, "/packages", "reseller")["total"] == 1
    assert page(world, "/packages", "customer")["total"] == 1  # the public one
    assert page(world, "/activations")["total"] == 2
    assert page(world, "/activations", "customer")["total"] == 2  # cust-a's
    assert page(world, "/activations", "resB")["total"] == 0
    assert page(world, "/resellers", "reseller")["total"] == 0  # none below it


def usernames(world: World, query: str, role: str = "admin") -> list[str]:
    return [c["username"] for c in items(world, f"/customers?{query}", role)]


def test_customer_filters(world: World) -> None:
    assert usernames(world, "q=ALPHA") == ["alpha-1", "alpha-2", "alpha-3"]
    assert usernames(world, "q=a-%") == []  # % is a character, not a wildcard
    assert usernames(world, "status=active") == ["alpha-1", "beta-1", "cust-a", "gamma-1"]
    assert usernames(world, "reseller=resB") == ["beta-1", "beta-2", "cust-b"]
    assert usernames(world, "package=pkg-a") == ["alpha-1", "alpha-2", "cust-a"]
    assert usernames(world, "router=r1&limit=2") == ["alpha-1", "alpha-2"]
    assert usernames(world, "expiring_within_days=7") == ["alpha-1", "gamma-1"]
    assert usernames(world, "expiring_within_days=30&status=active") == [
        "alpha-1",
        "beta-1",
        "gamma-1",
    ]
    assert usernames(world, "expiring_within_days=0") == []
    # combined, and scoped: a reseller filters within its own
    assert usernames(world, "q=a&status=active", "reseller") == ["alpha-1", "cust-a"]
    assert page(world, "/customers?q=alpha&limit=1")["total"] == 3


@pytest.mark.parametrize(
    ("query", "role", "status", "field"),
    [
        ("status=sleeping", "admin", 422, "status"),
        ("reseller=resB", "reseller", 403, None),  # admins only
        ("package=pkg-b", "reseller", 404, None),  # not its package: as if none
        ("reseller=nobody", "admin", 404, None),
        ("router=nowhere", "admin", 404, None),
        ("expiring_within_days=-1", "admin", 422, "expiring_within_days"),
        ("q=" + "x" * 65, "admin", 422, "q"),
    ],
)
def test_customer_filters_refused(
    world: World, query: str, role: str, status: int, field: str | None
) -> None:
    r = world.call("GET", f"/customers?{query}", role)
    assert r.status_code == status, r.text
    if field:
        assert r.json()["field"] == field


def test_activation_filters(world: World) -> None:
    every = items(world, "/activations")
    assert [a["customer"] for a in every] == ["cust-a", "cust-a"]
    assert every[0]["id"] > every[1]["id"]  # newest first
    assert items(world, "/activations?customer=cust-a") == every
    assert items(world, "/activations?customer=alpha-1") == []
    statuses = {a["status"] for a in every}
    for status in statuses:
        want = [a["id"] for a in every if a["status"] == status]
        assert [a["id"] for a in items(world, f"/activations?status={status}")] == want
    since = every[-1]["at"]
    assert len(items(world, f"/activations?since={since[:19]}")) == 2
    assert items(world, "/activations?since=2999-01-01") == []
    r = world.call("GET", "/activations?since=yesterday", "admin")
    assert r.status_code == 422 and r.json()["field"] == "since"


@pytest.mark.parametrize(
    ("path", "q", "want"),
    [
        ("/packages", "PKG", ["pkg-a", "pkg-b"]),
        ("/master-packages", "home", ["m-home"]),
        ("/resellers", "resa", ["resA"]),
        ("/routers", "r", ["r1"]),
        ("/routers", "nope", []),
    ],
)
def test_name_search(world: World, path: str, q: str, want: list[str]) -> None:
    got = page(world, f"{path}?q={q}")
    assert [i["name"] for i in got["items"]] == want and got["total"] == len(want)


def test_a_ledger_pages_newest_first_and_its_balance_is_of_every_row(world: World) -> None:
    whole = world.call("GET", "/balance", "reseller").json()
    entries = whole["entries"]
    assert entries["total"] == 5  # 3 top-ups, 2 activations
    assert [e["kind"] for e in entries["items"]][:2] == ["activation", "activation"]
    first = world.call("GET", "/balance?limit=2&offset=1", "reseller").json()
    assert first["balance"] == whole["balance"]  # not the page's sum
    assert first["entries"]["items"] == entries["items"][1:3]
    for path in ("/resellers/resA/ledger", "/balances/reseller:resA"):
        other = world.call("GET", f"{path}?limit=1", "admin").json()
        assert other["entries"]["total"] == 5 and len(other["entries"]["items"]) == 1
    assert world.call("GET", "/balance?limit=0", "reseller").status_code == 422
