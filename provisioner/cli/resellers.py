"""``provisioner reseller …``: resellers and the packages each may sell."""

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
)
from provisioner.models import Reseller
from provisioner.read import ADMIN, resellers
from provisioner.read.models import AssignmentOut

Opt = typer.Option
app = typer.Typer(no_args_is_help=True, help="Resellers and their packages.")


PARENT_HELP = "the reseller it is under (a sub-reseller); none: the admin"
SUBS_HELP = "whether it may have sub-resellers of its own"
BILLING_HELP = "prepaid (pays from its balance) | postpaid (may owe up to --credit-limit)"


@app.command("add")
@handled
def add(
    name: str,
    contact: Annotated[str, Opt(help="free text: phone, e-mail")] = "",
    parent: Annotated[str | None, Opt(help=PARENT_HELP)] = None,
    subs: Annotated[bool, Opt("--subresellers/--no-subresellers", help=SUBS_HELP)] = False,
    billing: Annotated[str, Opt(help=BILLING_HELP)] = "prepaid",
    credit_limit: Annotated[str | None, Opt(help="how much a postpaid one may owe")] = None,
) -> None:
    """Add a reseller, or a sub-reseller with --parent (assign it packages with 'reseller
    assign')."""
    data = given(
        name=name, contact=contact, parent=parent, may_have_subresellers=subs, billing=billing,
        credit_limit=credit_limit,
    )  # fmt: skip
    with session() as s:
        added = registry.create_reseller(s, ACTOR, data).name
    typer.echo(f"reseller {added} added")  # once it is committed


@app.command("edit")
@handled
def edit(
    ref: str,
    name: Annotated[str | None, Opt()] = None,
    contact: Annotated[str | None, Opt()] = None,
    parent: Annotated[str | None, Opt(help=PARENT_HELP + '; "" moves it under the admin')] = None,
    subs: Annotated[bool | None, Opt("--subresellers/--no-subresellers", help=SUBS_HELP)] = None,
    billing: Annotated[str | None, Opt(help=BILLING_HELP)] = None,
    credit_limit: Annotated[str | None, Opt(help="how much a postpaid one may owe")] = None,
) -> None:
    """Change a reseller: name, contact, place in the tree, prepaid or postpaid."""
    data = given(
        name=name, contact=contact, parent=parent, may_have_subresellers=subs, billing=billing,
        credit_limit=credit_limit,
    )  # fmt: skip
    with session() as s:
        r = registry.update_reseller(s, ACTOR, ref, data)
        typer.echo(f"reseller {r.name} changed")


@app.command("settle")
@handled
def settle_cmd(
    ref: str,
    amount: str,
    reference: Annotated[str, Opt(help="e.g. a receipt number")] = "",
) -> None:
    """Record a payment from a reseller to its parent: it reduces what a postpaid one owes
    (or tops up a prepaid one)."""
    from provisioner.refs import get_by_name
    from provisioner.registry.resellers import settle

    with session() as s:
        r = get_by_name(s, Reseller, ref)
        new = settle(s, ACTOR, r, amount, reference)
    typer.echo(f"reseller {ref}: balance {new}")


@app.command("list")
@handled
def list_(
    as_json: JSON = False, search: Search = None, limit: Limit = 50, offset: Offset = 0
) -> None:
    """List resellers with the packages they may sell."""
    with session() as s:
        page = resellers.page(s, ADMIN, q=search, limit=limit, offset=offset)
    found = page.items
    if as_json:
        emit(page, True)
        return
    rows = [{**r.model_dump(), "packages": _packages(r.packages, prices=False)} for r in found]
    emit_page(
        page, False, ["id", "name", "parent", "billing", "balance", "contact", "packages"], rows
    )


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
    price: Annotated[str | None, Opt(help="what it pays its parent for it")] = None,
    customer_price: Annotated[
        str | None, Opt(help="the customer's price recommended to it")
    ] = None,
) -> None:
    """Let a reseller sell a package at its own price; a sub-reseller only one of its
    parent's packages (no price: the parent's own)."""
    with session() as s:
        a = registry.assign_package(s, ACTOR, reseller, package, price, customer_price)
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
