"""Operations: diff, sync, bootstrap, RADIUS drift, the daemon, tokens."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.progress import Progress

from provisioner import radius_store, sync
from provisioner.cli.app import JSON, app, console, ctx, emit, handled, out, session
from provisioner.planning.plan import Plan
from provisioner.planning.render import render, summary_line
from provisioner.state import options

Opt = typer.Option
radius_app = typer.Typer(no_args_is_help=True, help="The FreeRADIUS tables.")
app.add_typer(radius_app, name="radius")


def _plans_out(plans: list[Plan], as_json: bool) -> int:
    """Print plans; return the detailed exit code (0 none, 2 pending, 1 error)."""
    from provisioner.planning.diff import redact

    shown = [redact(p) for p in plans]
    if as_json:
        sys.stdout.write(
            json.dumps(
                {"plans": [p.to_dict() for p in shown], "summary": summary_line(shown)}, indent=2
            )
            + "\n"
        )
    else:
        out().print(
            render(shown, markup=console.is_terminal), highlight=False, markup=console.is_terminal
        )
    if any(p.error for p in plans):
        return 1
    return 2 if any(p.has_changes or p.conflicts for p in plans) else 0


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
    """Apply the registry to routers (each run is recorded). Exit 1 if any router failed."""
    c = ctx()
    ids = sync.router_ids(c.factory, routers or [])
    with Progress(console=console, transient=True, disable=as_json or len(ids) < 2) as progress:
        task = progress.add_task("syncing routers", total=len(ids))
        results = sync.sync_many(
            c.factory, c.settings, ids, adopt=adopt, trigger="cli",
            on_done=lambda _r: progress.advance(task),
        )  # fmt: skip
    rows = [
        {
            "router": r.router,
            "status": r.status,
            "applied": r.applied,
            "planned": len(r.plan.writes),
            "conflicts": len(r.plan.conflicts),
            "error": r.error,
        }
        for r in results
    ]
    emit(rows, as_json, ["router", "status", "planned", "applied", "conflicts", "error"])
    if any(r.status not in ("ok",) for r in results):
        raise typer.Exit(1)


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


@radius_app.command("diff")
@handled
def radius_diff(as_json: JSON = False) -> None:
    """What differs between the registry and the RADIUS tables. Exit 0 none, 2 pending."""
    with session() as s:
        plan = radius_store.plan(s, options(ctx().settings))
    raise typer.Exit(_plans_out([plan], as_json))


@radius_app.command("sync")
@handled
def radius_sync() -> None:
    """Repair the RADIUS tables (only rows this daemon owns)."""
    with session() as s:
        plan = radius_store.plan(s, options(ctx().settings))
        n = radius_store.apply(s, plan)
    typer.echo(f"RADIUS tables: {n} rows written ({summary_line([plan])})")


@app.command("migrate")
@handled
def migrate_cmd() -> None:
    """Bring the database to the newest schema."""
    ctx()
    typer.echo("database is up to date")


@app.command("token")
@handled
def token_cmd(
    role: Annotated[str, Opt(help="admin | reseller | customer")],
    reseller: Annotated[str | None, Opt(help="the reseller a reseller token acts for")] = None,
    customer: Annotated[str | None, Opt(help="the customer a customer token acts for")] = None,
    name: Annotated[str, Opt(help="a label; admin tokens act as admin:NAME in the audit")] = "",
) -> None:
    """Create an API bearer token (printed once; only its hash is stored)."""
    from provisioner.auth import create_token

    with session() as s:
        token = create_token(s, role=role, reseller=reseller, customer=customer, name=name)
    typer.echo(token)


@app.command("serve")
@handled
def serve_cmd(
    demo: Annotated[
        bool, Opt("--demo", help="start a simulated router and seed demo data")
    ] = False,
    host: Annotated[str | None, Opt(help="listen address (default: from the config)")] = None,
    port: Annotated[int | None, Opt(help="listen port (default: from the config)")] = None,
) -> None:
    """Run the daemon: HTTP API, scheduler (sync, drift repair, outbox, expiry)."""
    from provisioner.daemon import run

    run(ctx(), demo=demo or ctx().settings.demo, host=host, port=port)


@app.command("audit")
@handled
def audit_cmd(
    entity: Annotated[str | None, Opt(help="e.g. master_packages, customers, routers")] = None,
    limit: Annotated[int, Opt(help="at most this many rows")] = 50,
    as_json: JSON = False,
) -> None:
    """Registry changes, newest first: who, what, before/after (credentials redacted)."""
    from sqlalchemy import select

    from provisioner.models import AuditLog

    with session() as s:
        q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if entity:
            q = q.where(AuditLog.entity == entity)
        rows = [
            {
                "at": a.at.isoformat(timespec="seconds"),
                "actor": a.actor,
                "action": a.action,
                "entity": a.entity,
                "id": a.entity_id,
                "before": a.before,
                "after": a.after,
            }
            for a in s.scalars(q)
        ]
    if not as_json:
        for r in rows:
            if r["action"] != "update":
                r["changed"] = ""
                continue
            changed = sorted(
                k for k in (r["after"] or r["before"] or {})
                if (r["before"] or {}).get(k) != (r["after"] or {}).get(k)
            )  # fmt: skip
            r["changed"] = ", ".join(changed)
    emit(rows, as_json, ["at", "actor", "action", "entity", "id", "changed"])
