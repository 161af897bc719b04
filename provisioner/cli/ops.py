"""``provisioner migrate``, ``token``, ``serve``, ``audit``: running the daemon itself."""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner.cli.common import JSON, ctx, dump, emit, handled, session
from provisioner.read import ADMIN, audit

Opt = typer.Option
app = typer.Typer()


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
    with session() as s:
        rows = dump(audit.list_(s, ADMIN, entity=entity, limit=limit))
    if not as_json:
        for r in rows:
            before, after = r["before"] or {}, r["after"] or {}
            changed = [k for k in (after or before) if before.get(k) != after.get(k)]
            r["changed"] = ", ".join(sorted(changed)) if r["action"] == "update" else ""
    emit(rows, as_json, ["at", "actor", "action", "entity", "id", "changed"])
