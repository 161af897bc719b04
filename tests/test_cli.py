"""The CLI as an admin meets it: help texts, tables that keep whole values, listings.

Commands run in-process through typer's ``CliRunner`` on a fresh SQLite registry; the
runner's stdout is not a terminal, exactly like ``provisioner … | grep``.
"""

from __future__ import annotations

import importlib
import io
import json
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import outbox
from provisioner.context import Context
from provisioner.db import transaction
from tests.support.factories import Factory

# The module, not the ``app`` that ``provisioner.cli`` re-exports under the same name.
cli_app = importlib.import_module("provisioner.cli.common")
cli_root = importlib.import_module("provisioner.cli").app

# 60 characters: longer than any column rich would give it in 80.
LONG_PACKAGE = "Home Fibre 100M/50M unlimited, night boost, static IP, Dhaka"
LONG_HOST = "2001:db8:4d1e:77a0:9abc:def0:1234:5678"  # an IPv6 NAS: hosts are addresses


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a command on this test's registry; no COLUMNS: a pipe's default of 80 applies."""
    monkeypatch.setattr(cli_app, "_ctx", ctx)
    monkeypatch.delenv("COLUMNS", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(cli_root, list(args))
        assert result.exit_code == code, result.output
        return result

    return invoke


def _help(*args: str) -> str:
    """``provisioner ARGS --help``, whitespace collapsed."""
    result = CliRunner().invoke(cli_root, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_top_level_help_describes_the_product() -> None:
    text = _help()
    assert "Run an ISP's packages on MikroTik routers and FreeRADIUS" in text
    assert "helpers every command uses" not in text


# ---- tables keep whole values ----------------------------------------------------------


def _line_with(output: str, value: str) -> str:
    lines = [line for line in output.splitlines() if value in line]
    assert len(lines) == 1, output
    return lines[0]


def test_piped_lists_show_whole_values_one_line_per_row(ctx: Context, cli: Any) -> None:
    assert len(LONG_PACKAGE) == 60
    make = Factory(ctx)
    router = make.router(host=LONG_HOST, customer_types="pppoe,hotspot,static")
    master = make.master()
    make.package(master, name=LONG_PACKAGE)
    user = make.customer(LONG_PACKAGE, router)

    for args, value, same_line in (
        (["package", "list"], LONG_PACKAGE, ["500.00", "400.00", "public"]),
        (["customer", "list"], LONG_PACKAGE, [user, router, "pppoe"]),
        (["router", "list"], LONG_HOST, [router, "pppoe,hotspot,static", "never synced"]),
    ):
        output = cli(*args).output
        assert "…" not in output, args
        line = _line_with(output, value)  # whole, on the row's one line
        for other in same_line:
            assert other in line, (args, line)
        assert len(line) > 80  # the table grew past the 80 columns rich assumes for a pipe


def test_on_a_narrow_terminal_cells_fold_instead_of_being_cut(
    ctx: Context, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make = Factory(ctx)
    master = make.master()
    make.package(master, name=LONG_PACKAGE.replace(" ", "-"))  # no spaces: one long word
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=40, color_system=None)
    monkeypatch.setattr(cli_app, "console", terminal)

    cli("package", "show", LONG_PACKAGE.replace(" ", "-"))
    text = screen.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 40
    # the name's cell, read down its rows until the next key, is the whole name
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()]
    rows = [c for c in cells if len(c) == 2]
    start = next(i for i, (key, _) in enumerate(rows) if key == "name")
    pieces = [rows[start][1]]
    for key, value in rows[start + 1 :]:
        if key:
            break
        pieces.append(value)
    assert len(pieces) > 1 and "".join(pieces) == LONG_PACKAGE.replace(" ", "-")


# ---- every command says what it does ---------------------------------------------------


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Every leaf command of the click tree typer builds, as ("router add", command)."""
    if hasattr(cmd, "commands"):
        return [
            found for name, sub in cmd.commands.items() for found in _commands(sub, (*path, name))
        ]
    return [(" ".join(path), cmd)]


COMMANDS = _commands(typer.main.get_command(cli_root))
# Options an admin types daily: each says what it takes.
DOCUMENTED_OPTIONS = ("customer add", "customer edit", "router add", "router edit")


def test_the_walk_finds_the_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"diff", "router add", "customer list", "card redeem"} <= names
    assert len(names) > 40


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_a_one_line_help(name: str, command: Any) -> None:
    first = (command.help or "").strip().splitlines()
    assert first and first[0].strip(), f"'provisioner {name} --help' says nothing"
    # the line the command list shows (click shortens it at the first sentence)
    assert len(first[0]) <= 100


@pytest.mark.parametrize("name", DOCUMENTED_OPTIONS)
def test_common_commands_document_every_option(name: str) -> None:
    command = dict(COMMANDS)[name]
    bare = [p.opts[0] for p in command.params if p.param_type_name == "option" and not p.help]
    assert not bare, f"provisioner {name}: options without help: {bare}"


def test_help_names_the_allowed_values() -> None:
    text = _help("customer", "edit")
    assert "new | active | expired | suspended" in text
    assert "ISO date/time" in text
    text = _help("router", "add")
    assert "radius (customers authenticate via FreeRADIUS) | local" in text
    assert "pppoe,hotspot,static" in text and "API-SSL" in text


# ---- activation list ---------------------------------------------------------------------


def test_activation_list_newest_first_with_filters(ctx: Context, cli: Any) -> None:
    make = Factory(ctx)
    radius_router = make.router(mode="radius")  # RADIUS alone serves its PPPoE customers
    local_router = make.router(mode="local")  # holds its customers' secrets: a sync is work
    pppoe = make.package(make.master())
    other = make.package(make.master(customer_type="other", pool_name=None, pool_ranges=None))
    users = [
        make.customer(pppoe, radius_router),
        make.customer(pppoe, local_router),
        make.customer(other, None, customer_type="other"),
    ]
    for n, (user, package) in enumerate(zip(users, [pppoe, pppoe, other], strict=True)):
        cli("activate", user, package, "--key", f"order-{n}")
    # the "other" customer's action is a command that fails: its activation fails
    failing = ctx.settings.model_copy(update={"other_action_command": "false"})
    outbox.drain(ctx.factory, failing)

    rows = json.loads(cli("activation", "list", "--json").output)["items"]
    assert [r["customer"] for r in rows] == users[::-1]  # newest first
    assert [r["status"] for r in rows] == ["failed", "pending", "applied"]
    assert "command exited 1" in rows[0]["error"]
    assert all(r["payer"] == "admin" and r["price"] == "0.00" for r in rows)
    for r in rows:  # each row is what 'activation show' says, plus when it was made
        shown = json.loads(cli("activation", "show", str(r["id"]), "--json").output)
        assert {k: v for k, v in r.items() if k != "at"} == shown
        assert r["at"][:4].isdigit() and r["at"].endswith("+00:00")

    failed_view = cli("activation", "show", str(rows[0]["id"])).output
    assert "other failed after 1 attempt(s): " in failed_view and "command exited 1" in failed_view
    assert "none (nothing to do on a NAS)" in cli("activation", "show", str(rows[2]["id"])).output

    def listed(*args: str) -> list[str]:
        output = cli("activation", "list", "--json", *args).output
        return [r["customer"] for r in json.loads(output)["items"]]

    assert listed("--status", "failed") == [users[2]]
    assert listed("--status", "pending") == [users[1]]
    assert listed("--status", "applied") == [users[0]]
    assert listed("--customer", users[1]) == [users[1]]
    assert listed("--limit", "2") == [users[2], users[1]]
    assert listed("--customer", users[0], "--status", "failed") == []

    table = cli("activation", "list").output
    for column in ("id", "at", "customer", "package", "payer", "price", "status", "error"):
        assert column in table
    assert _line_with(table, users[2]).count("command exited 1") == 1

    bad = cli("activation", "list", "--status", "done", code=1).output
    assert "status: must be one of pending, applied, failed" in bad
    ghost = cli("activation", "list", "--customer", "ghost", code=1).output
    assert "no customer named 'ghost'" in ghost


# ---- router runs -------------------------------------------------------------------------


def test_router_runs_newest_first_without_secrets(
    ctx: Context, cli: Any, sim: SimulatedRouter
) -> None:
    make = Factory(ctx)
    router = make.router(sim, radius_secret="rad-Secret-77ab2")  # local mode: secrets on it
    user = make.customer(make.package(make.master()), router, password="cust-Pass-4411")
    cli("sync")  # writes the profile, pool and the customer's PPP secret
    cli("sync")  # nothing left to do
    sim.refuse = True
    cli("sync", code=1)

    runs = json.loads(cli("router", "runs", router, "--json").output)["items"]
    assert [r["status"] for r in runs] == ["unreachable", "ok", "ok"]  # newest first
    assert all(r["trigger"] == "cli" for r in runs)
    failed, idle, first = runs
    assert failed["error"] and failed["applied"] == 0 and failed["changes"] == []
    assert idle["planned"] == idle["applied"] == 0 and idle["changes"] == []
    assert first["planned"] == first["applied"] == len(first["changes"]) > 0
    assert first["finished_at"] >= first["started_at"]
    secret = next(c for c in first["changes"] if c["key"] == user)
    assert {"name": "password", "old": None, "new": "(sensitive)"} in secret["props"]
    text = cli("router", "runs", router, "--json").output + cli("router", "runs", router).output
    assert "cust-Pass-4411" not in text and "rad-Secret-77ab2" not in text
    assert '"pw"' not in text  # the router's API password

    table = cli("router", "runs", router).output
    for column in ("started at", "trigger", "status", "planned", "applied", "error"):
        assert column in table
    assert failed["error"] in _line_with(table, "unreachable")  # whole, on one line
    page = json.loads(cli("router", "runs", router, "--limit", "1", "--json").output)
    assert page["items"] == [failed] and page["total"] == 3
    assert "no router named 'nope'" in cli("router", "runs", "nope", code=1).output


def test_adding_a_router_or_changing_its_secret_says_freeradius_must_restart(cli: Any) -> None:
    added = cli(
        "router", "add", "core-1", "--host", "127.0.0.9", "--username", "api",
        "--password", "pw", "--radius-secret", "s3cret",
    ).output  # fmt: skip
    assert "only at start-up: restart it so it answers 127.0.0.9" in added
    assert "restart" not in cli("router", "edit", "core-1", "--types", "pppoe").output
    assert "restart it" in cli("router", "edit", "core-1", "--radius-secret", "n3w").output


def test_router_remove_keeps_its_reason_and_the_cli_is_one_actor(cli: Any, ctx: Context) -> None:
    from provisioner.models import AuditLog

    cli(
        "router", "add", "core-1", "--host", "127.0.0.9", "--username", "api",
        "--password", "pw", "--radius-secret", "s3cret",
    )  # fmt: skip
    cli("router", "remove", "core-1", "--reason", "moved to the new rack")
    with transaction(ctx.factory) as s:
        rows = s.query(AuditLog).filter_by(entity="routers").order_by(AuditLog.id).all()
    assert [(r.action, r.actor) for r in rows] == [("create", "admin:cli"), ("delete", "admin:cli")]
    assert rows[1].after == {"reason": "moved to the new rack"}
    assert rows[1].before is not None and rows[1].before["password"] == "(redacted)"


def test_a_newcomer_can_top_up_by_name_and_read_a_reseller(cli: Any, make: Factory) -> None:
    make.package(make.master(name="home"), name="Home 10")
    cli("reseller", "add", "North Net")
    cli("reseller", "assign", "North Net", "Home 10", "--price", "380")
    listed = cli("reseller", "list").output
    assert "North Net" in listed and "id" in listed.splitlines()[1]
    shown = " ".join(cli("reseller", "show", "North Net").output.split())
    assert "Home 10 at 380.00" in shown and "{" not in shown  # not a Python repr
    out = cli("topup", "reseller:North Net", "4000").output
    [row] = json.loads(cli("reseller", "list", "--json").output)["items"]
    assert out.strip() == f"reseller:{row['id']}: balance 4000.00 BDT"
    assert json.loads(cli("balance", "reseller:North Net", "--json").output)["balance"] == "4000.00"
    assert "no reseller 'South Net'" in cli("topup", "reseller:South Net", "1", code=1).output


def test_router_add_reads_its_password_without_a_terminal(cli: Any, ctx: Context) -> None:
    runner = CliRunner()
    base = ["router", "add", "core-1", "--host", "127.0.0.9", "--username", "api",
            "--radius-secret", "s3cret"]  # fmt: skip
    result = runner.invoke(cli_root, base, input="")  # no terminal: no prompt, no warning
    assert result.exit_code == 1 and "GetPassWarning" not in result.output
    assert "--password-stdin" in result.output
    result = runner.invoke(cli_root, [*base, "--password-stdin"], input="api-Pw-91\n")
    assert result.exit_code == 0, result.output
    from provisioner.db import transaction
    from provisioner.models import Router

    with transaction(ctx.factory) as s:
        assert s.query(Router).one().password == "api-Pw-91"


def test_a_fresh_database_has_no_pending_radius_diff(cli: Any) -> None:
    result = cli("radius", "diff")
    assert "Plan: 0 to add, 0 to change, 0 to remove, 0 conflicts." in result.output


def test_radius_diff_and_sync_by_username_range(
    ctx: Context, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read 2 usernames at a time, ``radius diff`` prints the plan read at once, exit 2;
    ``radius sync`` writes it range by range, and the diff after is empty, exit 0."""
    from sqlalchemy import delete, update

    from provisioner import radius_store
    from provisioner.models import Customer
    from provisioner.radius_tables import radcheck

    make = Factory(ctx)
    router, pkg = make.router(mode="radius"), make.package(make.master(name="home"))
    for user in ("alice", "bob", "carol", "gone", "zed"):
        make.customer(pkg, router, username=user)
    with transaction(ctx.factory) as s:
        s.execute(delete(Customer.__table__).where(Customer.username == "gone"))
        s.execute(delete(radcheck).where(radcheck.c.username == "bob"))
        s.execute(update(radcheck).where(radcheck.c.username == "zed").values(value="x"))
    whole = cli("radius", "diff", code=2).output
    monkeypatch.setattr(radius_store, "BATCH", 2)
    assert cli("radius", "diff", code=2).output == whole
    assert "+ bob|Cleartext-Password" in whole and "- gone|Cleartext-Password" in whole
    assert "~ zed|Cleartext-Password" in whole and "- gone|home" in whole
    assert "Plan: 1 to add, 1 to change, 2 to remove, 0 conflicts." in whole
    out = cli("radius", "sync").output
    assert (
        out == "RADIUS tables: 4 rows written (1 to add, 1 to change, 2 to remove, 0 conflicts)\n"
    )
    assert "Plan: 0 to add, 0 to change, 0 to remove" in cli("radius", "diff").output
