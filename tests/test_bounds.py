"""Bad input is a 422 naming the field, never a 500 (issue 11): numbers past the database's
integers, dates past year 9999, over-long strings, NUL characters, a check that ran after a
query. Every test runs on SQLite and PostgreSQL (the 500s differed between them); the
registry's own refusals (what the CLI and the web panels reach) are checked beside the API's.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from provisioner import cards, config, registry, validation
from provisioner.api import create_app
from provisioner.api import routes as routes_package
from provisioner.config import Settings
from provisioner.context import open_context
from provisioner.db import transaction
from provisioner.errors import ValidationError
from provisioner.models import Reseller
from tests.conftest import drop_pg_database, pg_database
from tests.test_api import World, activate, seed

BIG = 3_000_000_000  # past PostgreSQL's integer
HUGE = 2**63 + 5  # past SQLite's (and BigInteger)
MB10 = "x" * 10_000_000
KB500 = "x" * 500_000  # long, and within the API's 1 MiB body limit (``api.limits``)


def api_world(backend: str, tmp: Path) -> Iterator[World]:
    """The real app on a fresh, seeded database of ``backend``; a 500 is an answer here
    (the client does not raise), so a test can say which request gave it."""
    name = None
    if backend == "postgresql":
        name, url = pg_database()
    else:
        url = f"sqlite:///{tmp}/db.sqlite3"
    settings = Settings(
        database_url=url,
        key_file=tmp / "key",
        sync_debounce_seconds=0.0,
        router_timeout_seconds=2.0,
    )
    ctx = open_context(settings, upgrade=backend == "sqlite")
    try:
        tokens = seed(ctx)
        with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
            yield World(ctx, client, tokens)
    finally:
        ctx.close()
        config.use(None)
        if name:
            drop_pg_database(name)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    yield from api_world(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
def api(shared_world: World) -> World:
    activate(shared_world.ctx)
    return shared_world


def refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.text


# ---- numbers past the database's integers ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/customers/{BIG}", None),
        ("GET", f"/customers/id:{HUGE}", None),
        ("GET", "/customers/id:\u00b2", None),  # a digit to str.isdigit, not to int()
        ("PATCH", f"/customers/id:{HUGE}", {"status": "suspended"}),
        ("GET", f"/master-packages/id:{HUGE}", None),
        ("GET", f"/packages/id:{HUGE}", None),
        ("GET", f"/resellers/id:{HUGE}", None),
        ("GET", f"/routers/id:{HUGE}", None),
        ("GET", f"/routers/{BIG}/runs", None),
        ("GET", f"/routers/id:{HUGE}/runs", None),
        ("GET", f"/activations/{BIG}", None),
        ("GET", f"/activations/{HUGE}", None),
        ("GET", f"/activations?customer=id:{HUGE}", None),
        ("DELETE", f"/tokens/{BIG}", None),
        ("DELETE", f"/tokens/{HUGE}", None),
        ("GET", f"/balances/reseller:{HUGE}", None),
        ("GET", "/balances/customer:\u00b2", None),
        ("GET", f"/balances/customer:{'9' * 5000}", None),  # past int()'s 4300 digits
        (
            "POST",
            "/customers",
            {"username": "n1", "password": "p", "customer_type": "pppoe", "router": f"id:{HUGE}"},
        ),
        ("PATCH", "/customers/cust-a", {"package": f"id:{HUGE}"}),
        ("PATCH", "/customers/cust-a", {"reseller": f"id:{BIG}"}),
        (
            "POST",
            "/activations",
            {"customer": f"id:{HUGE}", "package": "pkg-a", "idempotency_key": "k1"},
        ),
        (
            "POST",
            "/activations",
            {"customer": "cust-a", "package": f"id:{HUGE}", "idempotency_key": "k2"},
        ),
        ("POST", "/topups", {"account": f"reseller:{HUGE}", "amount": "1"}),
        ("POST", "/topups", {"account": f"reseller:{'9' * 70}", "amount": "1"}),
        ("POST", "/cards/redeem", {"serial": "S", "pin": "1", "customer": f"id:{HUGE}"}),
        ("POST", "/resellers/resA/packages", {"package": f"id:{HUGE}"}),
    ],
)
def test_a_reference_past_the_database_integer_is_not_found(
    api: World, method: str, path: str, body: Any
) -> None:
    r = api.call(method, path, "admin", body)
    assert r.status_code in (404, 422), r.text


def test_an_activation_or_token_id_past_the_database_integer_is_a_field_error(
    api: World,
) -> None:
    refused(api.call("GET", f"/activations/{BIG}", "admin"), "act_id")
    refused(api.call("DELETE", f"/tokens/{HUGE}", "admin"), "token_id")


def test_a_card_life_past_year_9999_is_a_field_error(api: World) -> None:
    refused(
        api.call("POST", "/cards", "admin", {"count": 1, "value": "10", "days": 9999999}), "days"
    )
    with pytest.raises(ValidationError) as exc, transaction(api.ctx.factory) as s:
        cards.generate(s, 1, "10", 9999999, "b")  # the CLI's way in
    assert exc.value.field == "days"


MASTER = {"name": "m-new", "customer_type": "pppoe", "rate_down": "10M", "rate_up": "5M"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rate_down": "99999999999999999999G"}, "rate_down"),
        ({"rate_up": 10**20}, "rate_up"),
        ({"volume_cap": "99999999999999999999T"}, "volume_cap"),
        ({"volume_cap": 2**63}, "volume_cap"),
        ({"duration_days": 10**20}, "duration_days"),
        ({"duration_days": 1e20}, "duration_days"),
        ({"shared_users": 2**40}, "shared_users"),
        ({"priority": 2**70}, "priority"),
        (
            {"burst_down": "20M", "burst_threshold_down": "8M", "burst_time": "99999999999w"},
            "burst_time",
        ),
    ],
)
def test_a_number_past_its_column_is_a_field_error(
    api: World, change: dict[str, Any], field: str
) -> None:
    refused(api.call("POST", "/master-packages", "admin", {**MASTER, **change}), field)
    data = {**MASTER, **change}
    if isinstance(data.get("duration_days"), float):
        return  # JSON's number; the CLI reads whole numbers
    with pytest.raises(ValidationError) as exc, transaction(api.ctx.factory) as s:
        registry.create_master_package(s, "test", data)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/customers/cust-a", {"expires_at": "9999-12-31T23:00:00-05:00"}, "expires_at"),
        ("PATCH", "/customers/cust-a", {"expires_at": "0001-01-01T00:00:00+05:00"}, "expires_at"),
        ("PATCH", "/customers/cust-a", {"expires_at": "9999-12-31"}, "expires_at"),
        ("GET", "/activations?since=9999-12-31T23:00:00-05:00", None, "since"),
        ("GET", "/activations?since=0001-01-01T00:00:00%2B05:00", None, "since"),
    ],
)
def test_a_date_past_what_utc_holds_is_a_field_error(
    api: World, method: str, path: str, body: Any, field: str
) -> None:
    """Shifted to UTC it would be past year 9999 (an OverflowError), or so near it that
    the next period added to it would be."""
    refused(api.call(method, path, "admin", body), field)


def test_an_empty_expiry_still_clears_it(api: World) -> None:
    r = api.call("PATCH", "/customers/cust-b", "admin", {"expires_at": ""})
    assert r.status_code == 200 and r.json()["expires_at"] is None, r.text


def test_an_empty_customer_type_is_refused_before_any_lookup(api: World) -> None:
    """m-home has customers: the type is checked first, not compared with theirs (409)."""
    r = api.call("PATCH", "/master-packages/m-home", "admin", {"customer_type": ""})
    refused(r, "customer_type")
    assert "pppoe, hotspot" in r.json()["reason"]
    with pytest.raises(ValidationError) as exc, transaction(api.ctx.factory) as s:
        registry.update_master_package(s, "test", "m-home", {"customer_type": ""})
    assert exc.value.field == "customer_type"


# ---- strings: a maximum length, no NUL -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/resellers", {"name": "r-long", "contact": KB500}, "contact"),
        ("PATCH", "/resellers/resA", {"contact": "x" * 201}, "contact"),
        (
            "POST",
            "/customers",
            {"username": "u-long", "password": KB500, "customer_type": "other"},
            "password",
        ),
        ("PATCH", "/routers/r1", {"password": "p" * 129}, "password"),
        ("PATCH", "/routers/r1", {"radius_secret": KB500}, "radius_secret"),
        (
            "POST",
            "/master-packages",
            {**MASTER, "pool_name": "p", "pool_ranges": "1" * 513},
            "pool_ranges",
        ),
        (
            "POST",
            "/activations",
            {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k" * 129},
            "idempotency_key",
        ),
        ("POST", "/tokens", {"role": "admin", "name": "n" * 129}, "name"),
        ("GET", "/customers/" + "u" * 65, None, "username"),
    ],
)
def test_an_over_long_string_is_a_field_error_and_nothing_is_stored(
    api: World, method: str, path: str, body: Any, field: str
) -> None:
    refused(api.call(method, path, "admin", body), field)
    r = api.call("GET", "/resellers", "admin")
    assert r.status_code == 200 and len(r.text) < 10_000


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/resellers", {"name": "r\0"}, "name"),
        ("POST", "/resellers", {"name": "r-nul", "contact": "a\0b"}, "contact"),
        (
            "POST",
            "/customers",
            {"username": "u-nul", "password": "p\0", "customer_type": "other"},
            "password",
        ),
        ("PATCH", "/customers/cust-a", {"mac_address": "\0"}, "mac_address"),
        (
            "POST",
            "/packages",
            {"name": "p", "master_package": "m\0", "customer_price": "1", "operator_price": "1"},
            "master_package",
        ),
        (
            "POST",
            "/activations",
            {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k\0"},
            "idempotency_key",
        ),
        ("POST", "/topups", {"account": "reseller:r\0", "amount": "1"}, "account"),
        ("POST", "/cards/redeem", {"serial": "S\0", "pin": "1", "customer": "cust-a"}, "serial"),
        ("POST", "/sync", {"routers": ["r\0"]}, "routers.0"),
        ("POST", "/resellers/resA/settlements", {"amount": "1", "reference": "r\0"}, "reference"),
        ("GET", "/packages/p%00", None, "name"),
        ("GET", "/customers/c%00", None, "username"),
        ("GET", "/activations?customer=c%00", None, "customer"),
        ("GET", "/diff?router=r%00", None, "router.0"),
    ],
)
def test_a_nul_character_is_a_field_error(
    api: World, method: str, path: str, body: Any, field: str
) -> None:
    r = api.call(method, path, "admin", body)
    refused(r, field)
    assert "NUL" in r.json()["reason"]


@pytest.mark.parametrize(
    ("write", "field"),
    [
        (lambda s: registry.create_reseller(s, "t", {"name": "r", "contact": "a\0b"}), "contact"),
        (lambda s: registry.create_reseller(s, "t", {"name": "r", "contact": MB10}), "contact"),
        (lambda s: registry.update_router(s, "t", "r1", {"password": "p" * 129}), "password"),
        (lambda s: registry.update_router(s, "t", "r1", {"radius_secret": "s\0"}), "radius_secret"),
        (lambda s: registry.update_customer(s, "t", "cust-a", {"password": "\0"}), "password"),
        (
            lambda s: registry.create_master_package(s, "t", {**MASTER, "local_address": "\0"}),
            "local_address",
        ),
        (
            lambda s: registry.update_router(s, "t", "r1", {"customer_types": ["pppoe\0"]}),
            "customer_types",
        ),
    ],
)
def test_the_registry_refuses_nul_and_over_long_strings_too(
    api: World, write: Any, field: str
) -> None:
    """The CLI and the web panels write through the registry, not the API's models."""
    with pytest.raises(ValidationError) as exc, transaction(api.ctx.factory) as s:
        write(s)
    assert exc.value.field == field
    with transaction(api.ctx.factory) as s:
        assert registry.count(s, Reseller) == 2


def test_a_name_with_nul_is_no_row_in_a_lookup(api: World) -> None:
    """References from the CLI (no API model in between) find nothing, on PostgreSQL too."""
    with pytest.raises(Exception) as exc, transaction(api.ctx.factory) as s:
        registry.assign_package(s, "t", "res\0A", "pkg-a")
    assert getattr(exc.value, "status", None) == 404


def test_validation_bounds_the_columns() -> None:
    assert validation.rate("rate_down", "9223372036854775807") == 2**63 - 1
    with pytest.raises(ValidationError):
        validation.rate("rate_down", str(2**63))
    with pytest.raises(ValidationError):
        validation.volume("volume_cap", str(2**63))
    with pytest.raises(ValidationError):
        validation.positive_int("shared_users", 2**31)


# ---- every value a client sends is bounded in the schema -------------------------------


def _unbounded(schema: Any, where: str, spec: dict[str, Any], out: list[str]) -> None:
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            _unbounded(spec["components"]["schemas"][name], f"{where}>{name}", spec, out)
            return
        kind = schema.get("type")
        if kind == "string" and "maxLength" not in schema and "enum" not in schema:
            out.append(where)
        if kind == "integer" and ("maximum" not in schema or "minimum" not in schema):
            out.append(where)
        if kind == "array" and "maxItems" not in schema:
            out.append(where)
        for key in ("anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(schema.get(key, [])):
                _unbounded(sub, f"{where}|{i}", spec, out)
        for prop, sub in schema.get("properties", {}).items():
            _unbounded(sub, f"{where}.{prop}", spec, out)
        if isinstance(schema.get("items"), dict):
            _unbounded(schema["items"], f"{where}[]", spec, out)


def test_every_string_a_client_sends_has_a_maximum_length_and_every_number_a_range(
    api: World,
) -> None:
    spec = api.client.get("/openapi.json").json()
    out: list[str] = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            label = f"{method.upper()} {path}"
            for p in op.get("parameters", []):
                if p["in"] != "header" or p["name"].lower() != "authorization":
                    _unbounded(p["schema"], f"{label} {p['in']} {p['name']}", spec, out)
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                _unbounded(body["schema"], f"{label} body", spec, out)
    assert out == []


def _takes_nul(annotation: Any, metadata: list[Any]) -> bool | None:
    """Whether a field of this type lets a string with NUL through (None: takes no string)."""
    adapter = TypeAdapter(Annotated[(annotation, *metadata)] if metadata else annotation)
    for fine, nul in (("a", "a\0"), (["a"], ["a\0"])):
        try:
            adapter.validate_python(fine)
        except pydantic.ValidationError:
            continue
        try:
            adapter.validate_python(nul)
        except pydantic.ValidationError:
            return False
        return True
    return None


# Refused later, with the line and field: every row goes through the registry's rules.
NUL_CHECKED_DOWNSTREAM = {"POST /customers/import body"}


def _routes() -> list[APIRoute]:
    """Every route of the API, from each module of ``provisioner.api.routes``."""
    out = []
    for info in pkgutil.iter_modules(routes_package.__path__):
        module = importlib.import_module(f"{routes_package.__name__}.{info.name}")
        out += [r for r in module.router.routes if isinstance(r, APIRoute)]
    return out


def _params(dependant: Any) -> list[Any]:
    """A route's path, query and header parameters, its dependencies' too."""
    out = [*dependant.path_params, *dependant.query_params, *dependant.header_params]
    for sub in dependant.dependencies:
        out += _params(sub)
    return out


def test_every_string_a_client_sends_refuses_nul() -> None:
    out = []
    for route in _routes():
        for method in route.methods:
            label = f"{method} {route.path}"
            for p in _params(route.dependant):
                if _takes_nul(p.field_info.annotation, p.field_info.metadata):
                    out.append(f"{label} {p.name}")
            body = route.body_field
            if body is None:
                continue
            model = body.field_info.annotation
            if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
                for name, f in model.model_fields.items():
                    if _takes_nul(f.annotation, f.metadata):
                        out.append(f"{label} body {name}")
            elif _takes_nul(model, body.field_info.metadata):
                out.append(f"{label} body")
    assert sorted(set(out) - NUL_CHECKED_DOWNSTREAM) == []


def test_a_body_past_its_limit_is_413_and_one_without_a_token_is_not_read(api: World) -> None:
    """1 MiB for JSON (the CSV import has its own, ``api.limits.MAX_CSV``): 413 from the
    Content-Length, or counted while a chunked body is read; nothing stored. Without a
    token the answer is 401 before the body is read, whatever its size."""
    big = {"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k-big", "x": MB10}
    r = api.call("POST", "/activations", "admin", big)
    assert r.status_code == 413 and "larger than 1048576 bytes" in r.json()["reason"], r.text
    r = api.client.post("/api/v1/activations", json=big)  # no token
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"

    def chunks() -> Any:
        yield b'{"customer": "cust-a", "package": "pkg-a", "idempotency_key": "k-big", "x": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    r = api.client.post(
        "/api/v1/activations", content=chunks(),
        headers={**api.as_("admin"), "content-type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 413, r.text
    r = api.call("GET", "/activations", "admin")
    assert r.json()["total"] == 0


@pytest.mark.parametrize(
    "amount", ["1_000", "\u0661\u0660\u0660", "\uff15", ".5", "+5", "1E2", " 5 0", "5.", "0x10"]
)
def test_money_is_plain_ascii_decimals(api: World, amount: str) -> None:
    """Python's Decimal reads all of these; an operator would not see what was stored."""
    r = api.call("POST", "/topups", "admin", {"account": "reseller:resA", "amount": amount})
    refused(r, "amount")


def test_minus_zero_is_stored_and_shown_as_zero(api: World) -> None:
    r = api.call("PATCH", "/packages/pkg-a", "admin", {"customer_price": "-0"})
    assert r.status_code == 200, r.text
    assert r.json()["package"]["customer_price"] == "0.00"


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None.__class__.__name__])
def test_booleans_are_booleans(api: World, value: Any) -> None:
    r = api.call("POST", "/resellers", "admin", {"name": "r-bool", "may_have_subresellers": value})
    refused(r, "may_have_subresellers")


@pytest.mark.parametrize("name", ["id:1", "ID:7", "12345", "\uff11\uff12"])
def test_a_reseller_named_like_a_reference_is_refused(api: World, name: str) -> None:
    refused(api.call("POST", "/resellers", "admin", {"name": name}), "name")


def test_names_are_stored_in_one_spelling(api: World) -> None:
    """Fullwidth letters and a ligature are the letters they show (NFKC)."""
    r = api.call("POST", "/resellers", "admin", {"name": "\uff2e\uff4f\uff52\uff54h \ufb01ber"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "North fiber"
    assert api.call("POST", "/resellers", "admin", {"name": "North fiber"}).status_code == 409


def test_a_reseller_learns_nothing_of_routers_from_the_customer_filter(api: World) -> None:
    known = api.call("GET", "/customers?router=r1", "reseller")
    unknown = api.call("GET", "/customers?router=no-such-router", "reseller")
    assert known.status_code == unknown.status_code == 200
    assert unknown.json()["total"] == 0
    assert api.call("GET", "/customers?router=no-such-router", "admin").status_code == 404


def test_options_answers_the_methods_of_its_path(api: World) -> None:
    r = api.client.options("/api/v1/customers/cust-a")
    assert r.status_code == 204, r.text
    assert r.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
    assert api.client.options("/api/v1/customers").headers["allow"] == "GET, OPTIONS, POST"
    assert api.client.options("/api/v1/no-such-thing").status_code == 404


@pytest.mark.parametrize(
    "name", ["res\u0410", "RES\u0430", "r\u0435sA", "\uff52\uff45\uff53\uff21"]
)  # Cyrillic А, а, е; fullwidth letters
def test_a_lookalike_of_an_existing_name_is_refused(api: World, name: str) -> None:
    """resA exists: a name that reads the same (Unicode's confusables, UTS #39) would be
    topped up and sold in its place. Refused for resellers and packages alike."""
    r = api.call("POST", "/resellers", "admin", {"name": name})
    assert r.status_code == 409 and r.json()["field"] == "name", r.text
    reason = r.json()["reason"]  # fullwidth letters: NFKC makes them "resA" itself
    assert "looks like the reseller 'resA'" in reason or "'resA' exists" in reason, reason
    body = {"name": "pkg-\u0430", "master_package": "m-home", "customer_price": "1",
            "operator_price": "1"}  # pkg-a with a Cyrillic а  # fmt: skip
    r = api.call("POST", "/packages", "admin", body)
    assert r.status_code == 409 and "looks like the package 'pkg-a'" in r.json()["reason"]
    fine = {"name": f"res-{ord(name[-1])}"}  # a name people can tell apart is taken
    assert api.call("POST", "/resellers", "admin", fine).status_code == 201


def test_a_query_parameter_given_twice_is_refused_unless_it_is_a_list(api: World) -> None:
    refused(api.call("GET", "/packages?q=a&q=b", "admin"), "q")
    r = api.call("GET", "/diff?router=r1&router=r1", "admin")
    assert r.status_code == 200, r.text  # declared a list
