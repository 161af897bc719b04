"""``provisioner migrate``, ``token …``, ``serve``, ``audit``: running the daemon itself."""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner.cli.common import (
    ACTOR,
    JSON,
    Limit,
    Offset,
    ctx,
    dump,
    emit_page,
    err,
    handled,
    session,
)
from provisioner.errors import ValidationError
from provisioner.read import ADMIN, audit, tokens

Opt = typer.Option
app = typer.Typer()


@app.command("migrate")
@handled
def migrate_cmd() -> None:
    """Bring the database to the newest schema."""
    from provisioner import db
    from provisioner.cli import common
    from provisioner.config import get_settings

    url = (common._ctx.settings if common._ctx is not None else get_settings()).database_url
    was = db.revision(url)
    now = db.revision(ctx().settings.database_url)  # opening the context migrates
    if was == now:
        typer.echo(f"database is up to date (schema {now})")
    else:
        typer.echo(f"database migrated from {was or 'an empty database'} to schema {now}")


token_app = typer.Typer(no_args_is_help=True)
app.add_typer(token_app, name="token")

RoleOpt = Annotated[str, Opt(help="admin | reseller | customer")]
ResellerOpt = Annotated[str | None, Opt(help="the reseller a reseller token acts for")]
CustomerOpt = Annotated[str | None, Opt(help="the customer a customer token acts for")]
NameOpt = Annotated[str, Opt(help="a label; admin tokens act as admin:NAME in the audit")]
DaysOpt = Annotated[
    int | None, Opt(help="lifetime in days, 0 = never expires (default: token_days_<role>)")
]


def _create_token(
    role: str, reseller: str | None, customer: str | None, name: str, days: int | None
) -> None:
    """Print the new token alone on stdout (for $(...)); its expiry goes to stderr."""
    from provisioner.auth import issue_token

    with session() as s:
        row, token = issue_token(
            s, role=role, reseller=reseller, customer=customer, name=name, days=days
        )
    expires = row.expires_at.isoformat(timespec="seconds") if row.expires_at else "never"
    typer.echo(token)
    err.print(f"token {row.id} ({role}) expires: {expires}", highlight=False)


@token_app.callback(invoke_without_command=True)
@handled
def token_group(
    typer_ctx: typer.Context,
    role: Annotated[str | None, Opt(hidden=True)] = None,
    reseller: Annotated[str | None, Opt(hidden=True)] = None,
    customer: Annotated[str | None, Opt(hidden=True)] = None,
    name: Annotated[str, Opt(hidden=True)] = "",
    days: Annotated[int | None, Opt(hidden=True)] = None,
) -> None:
    """API bearer tokens: create, list, revoke. Only a token's hash is stored.

    `provisioner token --role ...` (without `create`) still creates a token.
    """
    legacy = role is not None or reseller or customer or name or days is not None
    if typer_ctx.invoked_subcommand is None:
        if role is None:
            raise ValidationError("is required: provisioner token create --role ...", field="role")
        _create_token(role, reseller, customer, name, days)
    elif legacy:
        raise ValidationError(
            f"goes after the command: provisioner token {typer_ctx.invoked_subcommand} ...",
            field="role" if role is not None else None,
        )


@token_app.command("create")
@handled
def token_create(
    role: RoleOpt,
    reseller: ResellerOpt = None,
    customer: CustomerOpt = None,
    name: NameOpt = "",
    days: DaysOpt = None,
) -> None:
    """Create an API bearer token (printed once; only its hash is stored)."""
    _create_token(role, reseller, customer, name, days)


TOKEN_COLUMNS = [
    "id", "role", "owner", "name", "created_at", "expires_at", "last_used_at", "status",
]  # fmt: skip


@token_app.command("list")
@handled
def token_list(as_json: JSON = False, limit: Limit = 50, offset: Offset = 0) -> None:
    """Every token: role, owner, name, created, expires, last used, status; never its hash."""
    with session() as s:
        page = tokens.list_(s, ADMIN, limit=limit, offset=offset)
    rows = dump(page.items)
    for r in rows:
        r["expires_at"] = r["expires_at"] or "never"
        r["last_used_at"] = r["last_used_at"] or "never"
    emit_page(page, as_json, TOKEN_COLUMNS, rows)


@token_app.command("revoke")
@handled
def token_revoke(token_id: Annotated[int, typer.Argument(help="the id (token list)")]) -> None:
    """Revoke a token: it answers 401 from now on."""
    from provisioner.auth import revoke_token

    with session() as s:
        row = revoke_token(s, ACTOR, token_id)
        at = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else ""
    typer.echo(f"token {token_id} revoked (at {at})")


@app.command("serve")
@handled
def serve_cmd(
    demo: Annotated[
        bool, Opt("--demo", help="start a simulated router and seed demo data")
    ] = False,
    host: Annotated[str | None, Opt(help="listen address (default: from the config)")] = None,
    port: Annotated[int | None, Opt(help="listen port (default: from the config)")] = None,
    workers: Annotated[
        int | None,
        Opt(
            help="API worker processes (default: api_workers; unset: one per core on "
            "PostgreSQL, one on SQLite; 0 = one per core)"
        ),
    ] = None,
) -> None:
    """Run the daemon: HTTP API, scheduler (sync, drift repair, outbox, expiry)."""
    from provisioner.daemon import run

    run(ctx(), demo=demo or ctx().settings.demo, host=host, port=port, workers=workers)


@app.command("audit")
@handled
def audit_cmd(
    entity: Annotated[str | None, Opt(help="e.g. master_packages, customers, routers")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
    as_json: JSON = False,
) -> None:
    """Registry changes, newest first: who, what, before/after (credentials redacted)."""
    with session() as s:
        page = audit.page(s, ADMIN, entity=entity, limit=limit, offset=offset)
    rows = dump(page.items)
    if not as_json:
        for r in rows:
            before, after = r["before"] or {}, r["after"] or {}
            changed = [k for k in (after or before) if before.get(k) != after.get(k)]
            r["changed"] = ", ".join(sorted(changed)) if r["action"] == "update" else ""
    emit_page(page, as_json, ["at", "actor", "action", "entity", "id", "changed"], rows)
