"""``provisioner master-package …``: the technical spec. Options come from the API's schema."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

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
    handled,
    model_command,
    session,
)
from provisioner.read import ADMIN, masters
from provisioner.schemas import MasterPackageUpdate

app = typer.Typer(no_args_is_help=True, help="Master packages: the technical spec.")

COLUMNS = [
    "name",
    "customer_type",
    "billing",
    "rate_limit",
    "volume_cap",
    "pool_name",
    "profile_name",
]
FLAGS = {
    "customer_type": "--type", "rate_down": "--down", "rate_up": "--up", "duration_days": "--days",
    "volume_cap": "--cap", "pool_name": "--pool", "pool_ranges": "--ranges",
    "profile_name": "--profile",
}  # fmt: skip


def _arg(name: str, help: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[str, typer.Argument(help=help)],
    )


def add(name: str, data: dict[str, Any]) -> None:
    """Add a master package (its RADIUS group is written; routers serving its type sync)."""
    with session() as s:
        m = registry.create_master_package(s, ACTOR, {"name": name, **data})
        shown = masters.view(m)
    emit(shown, False, title=f"master package {shown.name} added")  # once it is committed


def edit(ref: str, data: dict[str, Any]) -> None:
    """Change a master package (routers and RADIUS follow)."""
    with session() as s:
        m = registry.update_master_package(s, ACTOR, ref, data)
        emit(masters.view(m), False, title=f"master package {m.name} changed")


app.command("add")(
    model_command(
        MasterPackageUpdate, add, leading=[_arg("name", "the master package's name")],
        flags=FLAGS, required=("customer_type", "rate_down", "rate_up"), skip=("name",),
        defaults={"billing": "monthly", "duration_days": 30, "shared_users": 1},
    )
)  # fmt: skip
app.command("edit")(
    model_command(
        MasterPackageUpdate, edit, leading=[_arg("ref", "its name, or id:N")],
        flags={**FLAGS, "name": "--name"},
    )
)  # fmt: skip


@app.command("list")
@handled
def list_(
    as_json: JSON = False, search: Search = None, limit: Limit = 50, offset: Offset = 0
) -> None:
    """List master packages: type, billing, rate limit, cap, pool and profile."""
    with session() as s:
        page = masters.page(s, ADMIN, q=search, limit=limit, offset=offset)
    emit_page(page, as_json, COLUMNS)


@app.command("show")
@handled
def show(ref: str, as_json: JSON = False) -> None:
    """Show one master package (by name, or id:N) with every field."""
    with session() as s:
        emit(masters.get(s, ADMIN, ref), as_json)


@app.command("remove")
@handled
def remove(ref: str) -> None:
    """Remove a master package (refused while packages use it)."""
    with session() as s:
        registry.delete_master_package(s, ACTOR, ref)
    typer.echo(f"master package {ref} removed")
