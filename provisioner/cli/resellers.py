"""``provisioner reseller …``: resellers and the packages each may sell."""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner import registry
from provisioner.cli.common import ACTOR, JSON, emit, given, handled, session
from provisioner.read import ADMIN, resellers
from provisioner.read.models import AssignmentOut

Opt = typer.Option
app = typer.Typer(no_args_is_help=True, help="Resellers and their packages.")


@app.command("add")
@handled
def add(name: str, contact: Annotated[str, Opt(help="free text: phone, e-mail")] = "") -> None:
    """Add a reseller (assign it packages with 'reseller assign')."""
    with session() as s:
        r = registry.create_reseller(s, ACTOR, {"name": name, "contact": contact})
        typer.echo(f"reseller {r.name} added")


@app.command("edit")
@handled
def edit(
    ref: str,
    name: Annotated[str | None, Opt()] = None,
    contact: Annotated[str | None, Opt()] = None,
) -> None:
    """Rename a reseller or change its contact."""
    with session() as s:
        r = registry.update_reseller(s, ACTOR, ref, given(name=name, contact=contact))
        typer.echo(f"reseller {r.name} changed")


@app.command("list")
@handled
def list_(as_json: JSON = False) -> None:
    """List resellers with the packages they may sell."""
    with session() as s:
        found = resellers.list_(s, ADMIN)
    if as_json:
        emit(found, True)
        return
    rows = [{**r.model_dump(), "packages": _packages(r.packages, prices=False)} for r in found]
    emit(rows, False, ["id", "name", "contact", "packages"])


def _packages(assigned: list[AssignmentOut], *, prices: bool = True) -> str:
    """ "Home 10 at 400.00, Turbo at 620.00" (or just the names)."""
    if not prices:
        return ", ".join(a.package for a in assigned)
    return ", ".join(f"{a.package} at {a.effective_price}" for a in assigned) or "none"


@app.command("show")
@handled
def show(ref: str, as_json: JSON = False) -> None:
    """Show one reseller with its packages and prices."""
    with session() as s:
        r = resellers.get(s, ADMIN, ref)
    if as_json:
        emit(r, True)
        return
    emit(
        {**r.model_dump(), "account": f"reseller:{r.id}", "packages": _packages(r.packages)}, False
    )


@app.command("remove")
@handled
def remove(ref: str) -> None:
    """Remove a reseller (refused while it has customers)."""
    with session() as s:
        registry.delete_reseller(s, ACTOR, ref)
    typer.echo(f"reseller {ref} removed")


@app.command("assign")
@handled
def assign(
    reseller: str,
    package: str,
    price: Annotated[str | None, Opt(help="this reseller's operator price")] = None,
) -> None:
    """Let a reseller sell a package, optionally at its own operator price."""
    with session() as s:
        a = registry.assign_package(s, ACTOR, reseller, package, price)
        typer.echo(
            f"package {a.package.name} assigned to {a.reseller.name} "
            f"at {registry.reseller_price(a)}"
        )


@app.command("unassign")
@handled
def unassign(reseller: str, package: str) -> None:
    """Stop a reseller selling a package (its existing customers keep it)."""
    with session() as s:
        registry.unassign_package(s, ACTOR, reseller, package)
    typer.echo(f"package {package} unassigned from {reseller}")
