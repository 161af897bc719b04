"""Bad input gets a clear error, from the service layer and the CLI, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from provisioner import registry, validation
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.errors import ProvisionerError, ValidationError
from provisioner.models import AuditLog, Customer, MasterPackage, Package
from provisioner.radius_tables import radcheck, radgroupreply
from tests.support.factories import Factory

BASE = {"customer_type": "pppoe", "billing": "monthly", "rate_down": "10M", "rate_up": "5M"}

MASTER_CASES = [
    pytest.param({"rate_down": "fast"}, "rate_down", "invalid rate 'fast'", id="rate-junk"),
    pytest.param({"rate_up": "10Mbps"}, "rate_up", "invalid rate", id="rate-unit"),
    pytest.param(
        {"burst_down": "20M"}, "burst_down", "needs a burst threshold", id="burst-without-threshold"
    ),
    pytest.param(
        {"burst_down": "20M", "burst_threshold_down": "8M"},
        "burst_time",
        "needs a burst time",
        id="burst-without-time",
    ),
    pytest.param(
        {"burst_down": "5M", "burst_threshold_down": "4M", "burst_time": "8"},
        "burst_down",
        "must exceed the rate",
        id="burst-below-rate",
    ),
    pytest.param(
        {"burst_threshold_down": "4M"},
        "burst_down",
        "only apply with a burst",
        id="threshold-without-burst",
    ),
    pytest.param({"priority": 9}, "priority", "1 (highest) to 8", id="priority"),
    pytest.param({"min_down": "20M"}, "min_down", "must not exceed the rate", id="min-over-rate"),
    pytest.param(
        {"pool_name": "p", "pool_ranges": "10.0.0.300-10.0.0.400"},
        "pool_ranges",
        "is not an IPv4 range",
        id="pool-bad-ip",
    ),
    pytest.param(
        {"pool_name": "p", "pool_ranges": "10.0.0.9-10.0.0.2"},
        "pool_ranges",
        "ends before it starts",
        id="pool-reversed",
    ),
    pytest.param(
        {"pool_name": "p2", "pool_ranges": "10.99.0.100-10.99.0.110"},
        "pool_ranges",
        "overlaps pool 'pool-a'",
        id="pool-overlap",
    ),
    pytest.param(
        {"pool_name": "p"}, "pool_ranges", "needs both a name and ranges", id="pool-without-ranges"
    ),
    pytest.param({"name": "bad name!"}, "name", "not a valid RouterOS name", id="routeros-name"),
    pytest.param({"name": "taken"}, "name", "already used by master package", id="duplicate-name"),
    pytest.param({"profile_name": "default"}, "profile_name", "is reserved", id="reserved-profile"),
    pytest.param(
        {"customer_type": "dsl"}, "customer_type", "pppoe, hotspot, static, other", id="type"
    ),
    pytest.param({"billing": "weekly"}, "billing", "daily or monthly", id="billing"),
    pytest.param(
        {"customer_type": "static"}, "pool_name", "needs a pool", id="static-without-pool"
    ),
]


def counts(ctx: Context) -> tuple[int, ...]:
    with transaction(ctx.factory) as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in (MasterPackage, Package, Customer, AuditLog, radgroupreply, radcheck)
        )


def seeded(ctx: Context) -> Factory:
    make = Factory(ctx)
    make.master(name="taken", pool_name="pool-a", pool_ranges="10.99.0.2-10.99.0.200")
    return make


@pytest.mark.parametrize(("change", "field", "message"), MASTER_CASES)
def test_master_package_refusals(
    any_ctx: Context, change: dict[str, Any], field: str, message: str
) -> None:
    seeded(any_ctx)
    before = counts(any_ctx)
    with pytest.raises(ProvisionerError) as exc, transaction(any_ctx.factory) as s:
        registry.create_master_package(s, "test", {"name": "new", **BASE, **change})
    assert exc.value.field == field
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{field}: ")
    assert counts(any_ctx) == before


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        pytest.param(
            {"customer_price": "-1"}, "customer_price", "must not be negative", id="negative"
        ),
        pytest.param(
            {"operator_price": "12.345"},
            "operator_price",
            "more than 2 decimal places",
            id="inexact",
        ),
        pytest.param({"customer_price": "abc"}, "customer_price", "is not an amount", id="nan"),
        pytest.param(
            {"master_package": "nope"}, None, "no master package named 'nope'", id="unknown-master"
        ),
        pytest.param(
            {"customer_type": "hotspot"},
            "customer_type",
            "inherited from the master package",
            id="type-on-package",
        ),
        pytest.param(
            {"billing": "daily"},
            "billing",
            "inherited from the master package",
            id="billing-on-package",
        ),
    ],
)
def test_package_refusals(
    any_ctx: Context, data: dict[str, Any], field: str | None, message: str
) -> None:
    seeded(any_ctx)
    before = counts(any_ctx)
    with pytest.raises(ProvisionerError) as exc, transaction(any_ctx.factory) as s:
        registry.create_package(
            s,
            "test",
            {
                "name": "P",
                "master_package": "taken",
                "customer_price": "500",
                "operator_price": "400",
                **data,
            },
        )
    assert exc.value.field == field and message in str(exc.value)
    assert counts(any_ctx) == before


def test_operator_price_above_customer_price_is_a_warning(ctx: Context) -> None:
    seeded(ctx)
    with transaction(ctx.factory) as s:
        _, warnings = registry.create_package(
            s,
            "test",
            {
                "name": "loss",
                "master_package": "taken",
                "customer_price": "400",
                "operator_price": "500",
            },
        )
    assert warnings and "exceeds customer_price" in warnings[0]


def test_deleting_a_master_in_use_is_refused_with_its_users(any_ctx: Context) -> None:
    make = seeded(any_ctx)
    router = make.router(None)
    make.customer(make.package("taken", name="Home 10"), router, username="alice")
    before = counts(any_ctx)
    with pytest.raises(ProvisionerError) as exc, transaction(any_ctx.factory) as s:
        registry.delete_master_package(s, "test", "taken")
    assert "still used by packages Home 10; customers alice" in str(exc.value)
    assert counts(any_ctx) == before


def test_customer_type_must_match_package_and_router(ctx: Context) -> None:
    make = seeded(ctx)
    make.router(None, customer_types="pppoe")
    pkg = make.package("taken")
    with (
        pytest.raises(
            ProvisionerError, match="package: package 'p3' is for pppoe customers, not hotspot"
        ),
        transaction(ctx.factory) as s,
    ):
        registry.create_customer(
            s,
            "test",
            {
                "username": "x",
                "password": "p",
                "customer_type": "hotspot",
                "router": "r2",
                "package": pkg,
            },
        )
    with (
        pytest.raises(ProvisionerError, match="does not serve static"),
        transaction(ctx.factory) as s,
    ):
        registry.create_customer(
            s, "test", {"username": "x", "password": "p", "customer_type": "static", "router": "r2"}
        )


def test_static_addresses_are_never_given_twice(ctx: Context) -> None:
    make = Factory(ctx)
    router = make.router(None)
    pkg = make.package(
        make.master(
            name="biz", customer_type="static", pool_name="pb", pool_ranges="10.7.0.1-10.7.0.2"
        )
    )
    ips = []
    for i in range(2):
        with transaction(ctx.factory) as s:
            ips.append(
                registry.create_customer(
                    s,
                    "t",
                    {
                        "username": f"c{i}",
                        "password": "p",
                        "customer_type": "static",
                        "router": router,
                        "package": pkg,
                    },
                ).static_ip
            )
    assert ips == ["10.7.0.1", "10.7.0.2"]
    with (
        pytest.raises(ProvisionerError, match="has no free address"),
        transaction(ctx.factory) as s,
    ):
        registry.create_customer(
            s,
            "t",
            {
                "username": "c3",
                "password": "p",
                "customer_type": "static",
                "router": router,
                "package": pkg,
            },
        )
    with (
        pytest.raises(ProvisionerError, match="already used by customer 'c0'"),
        transaction(ctx.factory) as s,
    ):
        registry.create_customer(
            s,
            "t",
            {
                "username": "c4",
                "password": "p",
                "customer_type": "static",
                "router": router,
                "static_ip": "10.7.0.1",
            },
        )


# ---- the same refusals from the CLI ------------------------------------------------------


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Any:
    import importlib

    cli_app = importlib.import_module("provisioner.cli.common")
    from provisioner.cli import app as cli_root

    monkeypatch.setattr(cli_app, "_ctx", ctx)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli_root, list(args), env={"COLUMNS": "200"})

    return invoke


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["master-package", "add", "m", "--type", "pppoe", "--down", "fast", "--up", "1M"],
            "error: rate_down: invalid rate 'fast'",
        ),
        (
            [
                "master-package",
                "add",
                "m",
                "--type",
                "pppoe",
                "--down",
                "10M",
                "--up",
                "1M",
                "--burst-down",
                "20M",
            ],
            "error: burst_down: burst needs a burst threshold",
        ),
        (
            [
                "master-package",
                "add",
                "m",
                "--type",
                "pppoe",
                "--down",
                "10M",
                "--up",
                "1M",
                "--pool",
                "x",
                "--ranges",
                "10.99.0.50/28",
            ],
            "error: pool_ranges: overlaps pool 'pool-a'",
        ),
        (
            [
                "package",
                "add",
                "P",
                "--master",
                "taken",
                "--customer-price",
                "-5",
                "--operator-price",
                "1",
            ],
            "error: customer_price: must not be negative",
        ),
        (
            [
                "package",
                "add",
                "P",
                "--master",
                "ghost",
                "--customer-price",
                "5",
                "--operator-price",
                "1",
            ],
            "error: no master package named 'ghost'",
        ),
        (["master-package", "remove", "nope"], "error: no master package named 'nope'"),
    ],
)
def test_cli_errors_are_one_clear_line(
    ctx: Context, cli: Any, args: list[str], message: str
) -> None:
    seeded(ctx)
    before = counts(ctx)
    result = cli(*args)
    assert result.exit_code == 1
    assert " ".join(result.output.split()).startswith(message), result.output
    assert counts(ctx) == before


def test_cli_package_list_shows_the_seed_columns(ctx: Context, cli: Any) -> None:
    import json

    seeded(ctx)
    assert (
        cli(
            "package",
            "add",
            "Home 10",
            "--master",
            "taken",
            "--customer-price",
            "500",
            "--operator-price",
            "400",
            "--visibility",
            "public",
        ).exit_code
        == 0
    )
    result = cli("package", "list")
    assert result.exit_code == 0
    for col in (
        "name",
        "master package",
        "customer price",
        "operator price",
        "type",
        "billing",
        "visibility",
    ):
        assert col in result.output
    rows = json.loads(cli("package", "list", "--json").output)["items"]
    assert {k: rows[0][k] for k in ("name", "master_package", "customer_price", "operator_price", "type", "billing", "visibility")} == {
        "name": "Home 10", "master_package": "taken", "customer_price": "500.00", "operator_price": "400.00",
        "type": "pppoe", "billing": "monthly", "visibility": "public",
    }  # fmt: skip


def test_cli_diff_exit_codes(ctx: Context, cli: Any) -> None:
    from nas_adapters.routeros_sim import SimulatedRouter

    with SimulatedRouter(username="admin", password="pw") as sim:
        make = Factory(ctx)
        make.router(sim)
        assert cli("diff").exit_code == 0
        make.master(name="home")
        result = cli("diff")
        assert result.exit_code == 2 and "+ home" in result.output and "2 to add" in result.output
        assert cli("sync").exit_code == 0
        assert cli("diff").exit_code == 0
        sim.refuse = True
        result = cli("diff")
        assert result.exit_code == 1 and "UNREACHABLE" in result.output


# ---- found in review ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["1e30", "99999999999999999999999999999", "1e100000000", "10000000000", "-1e30"],
)
def test_a_huge_price_is_refused_with_the_field(value: str) -> None:
    # Quantizing these to cents exceeds decimal's precision (InvalidOperation): that must
    # be a field error, not an internal error.
    with pytest.raises(ValidationError) as exc:
        validation.price("customer_price", value)
    assert exc.value.field == "customer_price"


def test_a_rename_clash_names_the_field_and_the_cli_prints_one_line(
    ctx: Context, cli: Any
) -> None:
    """The clash check runs before the UPDATE (it used to be autoflushed first and come
    back as an anonymous 'concurrent change' 409, with a traceback in the CLI)."""
    make = Factory(ctx)
    make.master(name="one")
    make.master(name="two")
    a, b = make.reseller(), make.reseller()
    make.router(None, name="ra")
    make.router(None, name="rb")
    cases = [
        (["master-package", "edit", "one", "--name", "two"], "error: name: 'two' is already used by master package 'two'"),
        (["master-package", "edit", "one", "--profile", "two"], "error: profile_name: 'two' is already used by master package 'two'"),
        (["reseller", "edit", a, "--name", b], f"error: name: a reseller named {b!r} exists"),
        (["router", "edit", "ra", "--name", "rb"], "error: name: 'rb' is already used by router 'rb'"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 1, result.output
        assert " ".join(result.output.split()) == message
        assert "Traceback" not in result.output


def test_an_unexpected_error_in_the_cli_is_one_line(
    ctx: Context, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioner.read import masters

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(masters, "page", broken)
    result = cli("master-package", "list")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: RuntimeError: disk on fire (PROVISIONER_DEBUG=1 shows where)"
    ]
