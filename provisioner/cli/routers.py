"""``provisioner router …``: routers (NAS), their credentials (never printed) and syncs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from provisioner import registry
from provisioner.cli.common import (
    ACTOR,
    JSON,
    Limit,
    Offset,
    Search,
    emit,
    emit_page,
    fail,
    given,
    handled,
    session,
    warn,
)
from provisioner.read import ADMIN, routers

Opt = typer.Option
app = typer.Typer(no_args_is_help=True, help="Routers (NAS).")

TYPES_HELP = "customer types it serves, comma-separated, of pppoe,hotspot,static"
RELOAD = (
    "FreeRADIUS reads its clients (the nas table) only at start-up: restart it so it "
    "answers {host} with the new secret (docker compose restart freeradius)"
)
MODE_HELP = "radius (customers authenticate via FreeRADIUS) | local (secrets on the router)"
ENABLED_HELP = "a disabled router is left out of drift repair and of diff/sync without names"


def _password(given: str | None, from_stdin: bool) -> str:
    """The API password: given, read from stdin, or prompted on a terminal (only there:
    without one, a prompt would hang or warn)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if given is not None:
        return given
    if sys.stdin.isatty():
        return str(typer.prompt("API password", hide_input=True, default="", show_default=False))
    raise fail("no API password: pass --password-stdin, PROVISIONER_ROUTER_PASSWORD or --password")


@app.command("add")
@handled
def add(
    name: str,
    host: Annotated[str, Opt(help="IP address (IPv4 or IPv6) of the API and the RADIUS client")],
    username: Annotated[str, Opt(help="API user")],
    radius_secret: Annotated[str, Opt("--radius-secret", help="shared RADIUS/CoA secret")],
    password: Annotated[
        str | None,
        Opt(
            envvar="PROVISIONER_ROUTER_PASSWORD",
            help="API password; better: --password-stdin, PROVISIONER_ROUTER_PASSWORD, "
            "or the prompt (a password on the command line is in the shell's history)",
        ),
    ] = None,
    password_stdin: Annotated[
        bool, Opt("--password-stdin", help="read the API password from standard input")
    ] = False,
    api_port: Annotated[int, Opt(help="RouterOS API port: 8728, or 8729 with --tls")] = 8728,
    api_tls: Annotated[
        bool, Opt("--tls/--no-tls", help="API-SSL (then use --api-port 8729)")
    ] = False,
    customer_types: Annotated[str, Opt("--types", help=TYPES_HELP)] = "pppoe,hotspot,static",
    mode: Annotated[str, Opt(help=MODE_HELP)] = "radius",
    coa_port: Annotated[int, Opt(help="CoA/Disconnect port on the router")] = 3799,
) -> None:
    """Register a router: its RADIUS client row now, a sync soon (credentials never printed)."""
    password = _password(password, password_stdin)
    with session() as s:
        r = registry.create_router(
            s,
            ACTOR,
            {
                "name": name,
                "host": host,
                "username": username,
                "password": password,
                "radius_secret": radius_secret,
                "api_port": api_port,
                "api_tls": api_tls,
                "customer_types": customer_types,
                "mode": mode,
                "coa_port": coa_port,
            },
        )
        added, host = r.name, r.host
    typer.echo(f"router {added} added")  # once it is committed
    warn([RELOAD.format(host=host)])


@app.command("edit")
@handled
def edit(
    ref: str,
    name: Annotated[str | None, Opt(help="new name")] = None,
    host: Annotated[str | None, Opt(help="IP address (IPv4 or IPv6)")] = None,
    username: Annotated[str | None, Opt(help="API user")] = None,
    password: Annotated[str | None, Opt(help="API password")] = None,
    radius_secret: Annotated[
        str | None, Opt("--radius-secret", help="shared RADIUS/CoA secret")
    ] = None,
    api_port: Annotated[int | None, Opt(help="RouterOS API port")] = None,
    api_tls: Annotated[bool | None, Opt("--tls/--no-tls", help="API-SSL or plain API")] = None,
    customer_types: Annotated[str | None, Opt("--types", help=TYPES_HELP)] = None,
    mode: Annotated[str | None, Opt(help=MODE_HELP)] = None,
    coa_port: Annotated[int | None, Opt(help="CoA/Disconnect port on the router")] = None,
    enabled: Annotated[bool | None, Opt("--enabled/--disabled", help=ENABLED_HELP)] = None,
) -> None:
    """Change a router (its RADIUS client row follows at once; it is synced soon)."""
    with session() as s:
        r = registry.update_router(
            s,
            ACTOR,
            ref,
            given(
                name=name,
                host=host,
                username=username,
                password=password,
                radius_secret=radius_secret,
                api_port=api_port,
                api_tls=api_tls,
                customer_types=customer_types,
                mode=mode,
                coa_port=coa_port,
                enabled=enabled,
            ),
        )
        typer.echo(f"router {r.name} changed")
        if host is not None or radius_secret is not None:
            warn([RELOAD.format(host=r.host)])


@app.command("list")
@handled
def list_(
    as_json: JSON = False, search: Search = None, limit: Limit = 50, offset: Offset = 0
) -> None:
    """List routers with their last sync: time, status, error."""
    with session() as s:
        rows = routers.page(s, ADMIN, q=search, limit=limit, offset=offset)
    emit_page(
        rows,
        as_json,
        [
            "name",
            "host",
            "api_port",
            "customer_types",
            "mode",
            "last_sync",
            "last_status",
            "last_error",
        ],
    )


@app.command("runs")
@handled
def runs(
    ref: str,
    limit: Annotated[int, Opt(help="at most this many, newest first")] = 20,
    offset: Offset = 0,
    as_json: Annotated[
        bool, Opt("--json", help="print JSON, with the changes each run applied")
    ] = False,
) -> None:
    """A router's sync history, newest first: trigger, outcome, changes, error."""
    with session() as s:
        rows = routers.runs(s, ADMIN, ref, limit, offset)
    emit_page(rows, as_json, ["started_at", "trigger", "status", "planned", "applied", "error"])


@app.command("show")
@handled
def show(ref: str, as_json: JSON = False) -> None:
    """Show one router (no credentials)."""
    with session() as s:
        emit(routers.get(s, ADMIN, ref), as_json)


@app.command("remove")
@handled
def remove(
    ref: str,
    reason: Annotated[str, Opt(help="why (kept in the audit log)")] = "",
) -> None:
    """Remove a router and its RADIUS client row (refused while it serves customers)."""
    with session() as s:
        registry.delete_router(s, ACTOR, ref, reason)
    typer.echo(f"router {ref} removed")
