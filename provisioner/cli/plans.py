"""``provisioner diff``, ``sync``, ``bootstrap``, ``radius …``: dry runs and syncs of
routers and the RADIUS tables. ``diff`` exits 0 (no changes), 2 (pending) or 1 (error);
``sync`` 0 (all applied), 2 (conflicts left unsynced) or 1 (a router failed)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress

from provisioner import radius_store, sync
from provisioner.cli.common import JSON, console, ctx, emit, err, handled, out, session
from provisioner.planning.plan import Plan
from provisioner.planning.render import counts_line
from provisioner.read import plans
from provisioner.state import options

Opt = typer.Option
app = typer.Typer()
radius = typer.Typer(no_args_is_help=True, help="The FreeRADIUS tables.")
app.add_typer(radius, name="radius")


def _plans_out(found: list[Plan], as_json: bool) -> int:
    """Print plans; return the detailed exit code (0 none, 2 pending, 1 error)."""
    shown = plans.plans(found, markup=console.is_terminal)
    if as_json:
        data = shown.model_dump(mode="json", exclude={"text"})
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        out().print(shown.text, highlight=False, markup=console.is_terminal)
    if any(p.error for p in found):
        return 1
    return 2 if any(p.has_changes or p.conflicts for p in found) else 0


@app.command("diff")
@handled
def diff_cmd(
    routers: Annotated[list[str] | None, typer.Argument(help="router names (default: all)")] = None,
    as_json: JSON = False,
    adopt: Annotated[
        bool, Opt("--adopt", help="plan to take over unmarked objects in the way")
    ] = False,
) -> None:
    """Dry run: what a sync would change on each router. Exit 0 none, 2 pending, 1 error."""
    c = ctx()
    ids = sync.router_ids(c.factory, routers or [])
    results = sync.sync_many(c.factory, c.settings, ids, dry_run=True, adopt=adopt)
    raise typer.Exit(_plans_out([r.plan for r in results], as_json))


@app.command("sync")
@handled
def sync_cmd(
    routers: Annotated[list[str] | None, typer.Argument(help="router names (default: all)")] = None,
    adopt: Annotated[
        bool, Opt("--adopt", help="take over unmarked objects with names we want")
    ] = False,
    as_json: JSON = False,
) -> None:
    """Apply the registry to routers (each run is recorded). Exit 0 all applied, 2 conflicts
    left (not ours: --adopt), 1 a router failed."""
    c = ctx()
    ids = sync.router_ids(c.factory, routers or [])
    with Progress(console=console, transient=True, disable=as_json or len(ids) < 2) as progress:
        task = progress.add_task("syncing routers", total=len(ids))
        results = sync.sync_many(
            c.factory, c.settings, ids, adopt=adopt, trigger="cli",
            on_done=lambda _r: progress.advance(task), spread=True,
        )  # fmt: skip
    rows = plans.sync_results(results).results
    emit(rows, as_json, ["router", "status", "planned", "applied", "conflicts", "error"])
    left = [f"{r.router} {c.menu} {c.key}" for r in results for c in r.plan.conflicts]
    if left:
        n = len(left)
        err.print(
            f"[yellow]warning:[/] {n} conflict{'s' * (n > 1)} left unsynced: "
            f"{escape(', '.join(left))} (not ours; --adopt to take {'them' if n > 1 else 'it'} "
            "over)",
            highlight=False,
            markup=True,
        )
    if any(r.status not in ("ok", "conflicts") for r in results):
        raise typer.Exit(1)
    if left:
        raise typer.Exit(2)


@app.command("bootstrap")
@handled
def bootstrap_cmd(
    router: str,
    apply: Annotated[bool, Opt("--apply", help="write it (default: show the plan only)")] = False,
    adopt: Annotated[bool, Opt("--adopt", help="take over unmarked objects in the way")] = False,
    as_json: JSON = False,
) -> None:
    """Configure a router's RADIUS side (/radius, /radius/incoming, /ppp/aaa). Dry run first."""
    c = ctx()
    ids = sync.router_ids(c.factory, [router])
    result = sync.sync_router(
        c.factory,
        c.settings,
        ids[0],
        dry_run=not apply,
        adopt=adopt,
        bootstrap=True,
        trigger="bootstrap",
    )
    code = _plans_out([result.plan], as_json)
    if apply:
        typer.echo(
            f"{result.status}: {result.applied} changes applied"
            + (f" ({result.error})" if result.error else "")
        )
        raise typer.Exit(0 if result.status == "ok" else 1)
    raise typer.Exit(code)


@radius.command("diff")
@handled
def radius_diff(as_json: JSON = False) -> None:
    """What differs between the registry and the RADIUS tables. Exit 0 none, 2 pending."""
    with session() as s:
        plan = radius_store.plan(s, options(ctx().settings), batch=radius_store.BATCH)
    raise typer.Exit(_plans_out([plan], as_json))


@radius.command("sync")
@handled
def radius_sync() -> None:
    """Repair the RADIUS tables (only rows this daemon owns). Committed in steps: clients
    and groups, then users 10,000 usernames at a time; stopped halfway, run it again."""
    n, counts = radius_store.sync_all(
        ctx().factory, options(ctx().settings), batch=radius_store.BATCH
    )
    typer.echo(f"RADIUS tables: {n} rows written ({counts_line(counts)})")
