"""``provisioner sessions …``: live sessions (``radacct``) kept true (``sweep``)."""

from __future__ import annotations

import typer

from provisioner import sweep
from provisioner.cli.common import JSON, ctx, emit, handled, session
from provisioner.models import utcnow

app = typer.Typer(
    no_args_is_help=True, help="Live sessions: stale ones closed, ones without a right cut."
)
COLUMNS = ["action", "username", "session_id", "nas", "ip", "last_seen", "why"]


def _rows(found: list[sweep.Finding]) -> list[dict[str, str]]:
    return [
        {"action": f.action, "username": f.username, "session_id": f.session_id, "nas": f.nas,
         "ip": f.ip, "last_seen": f.last_seen.isoformat(timespec="seconds"), "why": f.why}
        for f in found
    ]  # fmt: skip


@app.command("diff")
@handled
def diff(as_json: JSON = False) -> None:
    """What a repair would do now (nothing is changed). Exit 0 nothing to do, 2 some."""
    with session() as s:
        found = sweep.find(s, ctx().settings, utcnow())
    emit(_rows(found), as_json, COLUMNS)
    if found:
        raise typer.Exit(2)


@app.command("repair")
@handled
def repair(as_json: JSON = False) -> None:
    """Close stale sessions and queue a Disconnect for each one without a right (the
    scheduler does this every interim interval)."""
    done = sweep.run(ctx().factory, ctx().settings)
    emit(_rows(done), as_json, COLUMNS)
