"""``provisioner package …``: name, prices and visibility over a master package."""

from __future__ import annotations

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
    given,
    handled,
    session,
    warn,
)
from provisioner.read import ADMIN, packages, paging

Opt = typer.Option
app = typer.Typer(no_args_is_help=True, help="Packages: name, prices and visibility.")
COLUMNS = [
    "name",
    "master_package",
    "customer_price",
    "operator_price",
    "type",
    "billing",
    "visibility",
]


@app.command("add")
@handled
def add(
    name: str,
    master_package: Annotated[str, Opt("--master")],
    customer_price: Annotated[str, Opt("--customer-price")],
    operator_price: Annotated[str, Opt("--operator-price")],
    visibility: Annotated[str, Opt(help="public | private")] = "private",
) -> None:
    """Add a package (type and billing come from its master package)."""
    with session() as s:
        p, warnings = registry.create_package(
            s,
            ACTOR,
            {
                "name": name,
                "master_package": master_package,
                "customer_price": customer_price,
                "operator_price": operator_price,
                "visibility": visibility,
            },
        )
        shown = packages.view(p)
    emit(shown, False, title=f"package {shown.name} added")  # once it is committed
    warn(warnings)


@app.command("edit")
@handled
def edit(
    ref: str,
    name: Annotated[str | None, Opt()] = None,
    master_package: Annotated[str | None, Opt("--master")] = None,
    customer_price: Annotated[str | None, Opt("--customer-price")] = None,
    operator_price: Annotated[str | None, Opt("--operator-price")] = None,
    visibility: Annotated[str | None, Opt(help="public | private")] = None,
) -> None:
    """Change a package; a new master package re-provisions its customers (RADIUS, routers)."""
    with session() as s:
        p, warnings = registry.update_package(
            s,
            ACTOR,
            ref,
            given(
                name=name,
                master_package=master_package,
                customer_price=customer_price,
                operator_price=operator_price,
                visibility=visibility,
            ),
        )
        emit(packages.view(p), False, title=f"package {p.name} changed")
    warn(warnings)


@app.command("list")
@handled
def list_(
    as_json: JSON = False,
    reseller: Annotated[str | None, Opt(help="as this reseller sees them, at its prices")] = None,
    search: Search = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> None:
    """List packages: master package, prices, type, billing, visibility."""
    with session() as s:
        if reseller:
            needle = (search or "").lower()
            found = [
                p for p in packages.as_reseller(s, ADMIN, reseller) if needle in p.name.lower()
            ]
            page = paging.of(found, limit=limit, offset=offset)
        else:
            page = packages.page(s, ADMIN, q=search, limit=limit, offset=offset)
    emit_page(page, as_json, COLUMNS)


@app.command("show")
@handled
def show(ref: str, as_json: JSON = False) -> None:
    """Show one package (by name, or id:N)."""
    with session() as s:
        emit(packages.get(s, ADMIN, ref), as_json)


@app.command("remove")
@handled
def remove(ref: str) -> None:
    """Remove a package and its reseller assignments (refused while customers use it)."""
    with session() as s:
        registry.delete_package(s, ACTOR, ref)
    typer.echo(f"package {ref} removed")
