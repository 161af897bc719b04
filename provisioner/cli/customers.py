"""``provisioner customer …``: customers, their login, router, package and status."""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner import bulk, registry
from provisioner.cli.common import (
    ACTOR,
    JSON,
    Limit,
    Offset,
    emit,
    emit_page,
    given,
    handled,
    session,
)
from provisioner.read import ADMIN, customers

Opt = typer.Option
app = typer.Typer(no_args_is_help=True, help="Customers.")

TYPE_HELP = "pppoe | hotspot | static | other"
ROUTER_HELP = "the router (NAS) it connects through; not needed for type other"
PACKAGE_HELP = "its package (activations set it too)"
IP_HELP = "static IPv4 address; static customers get one from the package's pool if not given"
MAC_HELP = "MAC address, e.g. AA:BB:CC:DD:EE:FF (binds a local-mode hotspot user)"
STATUS_HELP = "new | active | expired | suspended; only active customers get service"
EXPIRES_HELP = "when the subscription ends: ISO date/time, e.g. 2025-12-31T23:59 (UTC if no zone)"
CLEAR = '; "" clears it'


@app.command("add")
@handled
def add(
    username: str,
    password: Annotated[str, Opt(help="the PPPoE/hotspot login password")],
    customer_type: Annotated[str, Opt("--type", help=TYPE_HELP)],
    router: Annotated[str | None, Opt(help=ROUTER_HELP)] = None,
    package: Annotated[str | None, Opt(help=PACKAGE_HELP)] = None,
    reseller: Annotated[str | None, Opt(help="the reseller it belongs to")] = None,
    static_ip: Annotated[str | None, Opt("--ip", help=IP_HELP)] = None,
    mac_address: Annotated[str | None, Opt("--mac", help=MAC_HELP)] = None,
    status: Annotated[str | None, Opt(help=STATUS_HELP + "; default new")] = None,
    expires_at: Annotated[str | None, Opt("--expires", help=EXPIRES_HELP)] = None,
) -> None:
    """Add a customer: RADIUS rows now; a router holding it (local mode, static) syncs soon."""
    with session() as s:
        c = registry.create_customer(
            s,
            ACTOR,
            given(
                username=username,
                password=password,
                customer_type=customer_type,
                router=router,
                package=package,
                reseller=reseller,
                static_ip=static_ip,
                mac_address=mac_address,
                status=status,
                expires_at=expires_at,
            ),
        )
        shown = customers.view(c)
    emit(shown, False, title=f"customer {shown.username} added")  # once it is committed


@app.command("edit")
@handled
def edit(
    ref: str,
    username: Annotated[str | None, Opt(help="new username")] = None,
    password: Annotated[str | None, Opt(help="new password")] = None,
    router: Annotated[str | None, Opt(help=ROUTER_HELP + CLEAR)] = None,
    package: Annotated[str | None, Opt(help=PACKAGE_HELP + CLEAR)] = None,
    reseller: Annotated[str | None, Opt(help="the reseller it belongs to" + CLEAR)] = None,
    static_ip: Annotated[str | None, Opt("--ip", help=IP_HELP + CLEAR)] = None,
    mac_address: Annotated[str | None, Opt("--mac", help=MAC_HELP + CLEAR)] = None,
    status: Annotated[str | None, Opt(help=STATUS_HELP)] = None,
    expires_at: Annotated[str | None, Opt("--expires", help=EXPIRES_HELP + CLEAR)] = None,
) -> None:
    """Change a customer: RADIUS rows now; a router holding it (local mode, static) syncs soon."""
    with session() as s:
        c = registry.update_customer(
            s,
            ACTOR,
            ref,
            given(
                username=username,
                password=password,
                router=router,
                package=package,
                reseller=reseller,
                static_ip=static_ip,
                mac_address=mac_address,
                status=status,
                expires_at=expires_at,
            ),
        )
        emit(customers.view(c), False, title=f"customer {c.username} changed")


@app.command("list")
@handled
def list_(
    as_json: JSON = False,
    reseller: Annotated[str | None, Opt(help="only this reseller's customers")] = None,
    search: Annotated[str | None, Opt("--search", help="usernames that contain this")] = None,
    status: Annotated[str | None, Opt(help="new | active | expired | suspended")] = None,
    package: Annotated[str | None, Opt(help="only customers on this package")] = None,
    router: Annotated[str | None, Opt(help="only customers on this router")] = None,
    expiring: Annotated[
        int | None, Opt("--expiring-within", min=0, help="paid period ends within N days")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> None:
    """List customers: type, package, router, reseller, status, expiry, static IP."""
    with session() as s:
        page = customers.search(
            s, ADMIN, q=search, status=status, reseller=reseller, package=package,
            router=router, expiring_within_days=expiring, limit=limit, offset=offset,
        )  # fmt: skip
    emit_page(
        page,
        as_json,
        [
            "username",
            "customer_type",
            "package",
            "router",
            "reseller",
            "status",
            "expires_at",
            "static_ip",
        ],
    )


@app.command("show")
@handled
def show(ref: str, as_json: JSON = False) -> None:
    """Show one customer (by username, or id:N; no password)."""
    with session() as s:
        emit(customers.get(s, ADMIN, ref), as_json)


@app.command("usage")
@handled
def usage(ref: str, as_json: JSON = False) -> None:
    """Usage in the current billing cycle: bytes used, the fair usage threshold, whether
    the customer is throttled and the rate its sessions get."""
    with session() as s:
        emit(customers.usage(s, ADMIN, ref), as_json)


@app.command("remove")
@handled
def remove(ref: str) -> None:
    """Remove a customer and its RADIUS rows (refused once it has activations: suspend it)."""
    with session() as s:
        registry.delete_customer(s, ACTOR, ref)
    typer.echo(f"customer {ref} removed")


@app.command("import")
@handled
def import_(
    file: Annotated[
        typer.FileText, typer.Argument(help="a CSV file with a header line; - for stdin")
    ],
    dry_run: Annotated[bool, Opt("--dry-run", help="check every row, store nothing")] = False,
    as_json: JSON = False,
) -> None:
    """Add customers from CSV, all or nothing: every row is checked as ``customer add``
    checks it, and only a file without a refusal is stored (RADIUS rows at once, one sync
    per router). Columns: username, password, customer_type (required), router, package,
    reseller, static_ip, mac_address, status, expires_at. Exit 1 listing every refused
    row by line."""
    text = file.read()
    with session() as s:
        result = bulk.import_csv(s, ADMIN, text, dry_run=dry_run)
    if as_json:
        emit(result, True)
    else:
        for e in result.errors:
            typer.echo(f"line {e.line}: {e.field + ': ' if e.field else ''}{e.error}", err=True)
        if result.errors:
            typer.echo(f"{len(result.errors)} errors in {result.rows} rows; nothing stored")
        elif dry_run:
            typer.echo(f"{result.rows} rows would be added (dry run; nothing stored)")
        else:
            typer.echo(f"{result.created} customers added")
    if result.errors:
        raise typer.Exit(1)


@app.command("export")
@handled
def export(
    reseller: Annotated[str | None, Opt(help="only this reseller's customers")] = None,
) -> None:
    """Every customer as CSV, in ``customer import``'s columns without the password."""
    with session() as s:
        typer.echo(bulk.export_csv(s, ADMIN, reseller=reseller), nl=False)
