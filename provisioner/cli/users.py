"""``provisioner user …``: logins for the web panels (admins and resellers).

A password is read from standard input (``--password-stdin``) or prompted on a terminal,
never taken on the command line (it would stay in the shell's history). Customers need no
web user: they log in to the portal with their PPPoE/hotspot username and password.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from provisioner import users
from provisioner.cli.common import ACTOR, JSON, emit, fail, handled, session
from provisioner.read import ADMIN
from provisioner.read import users as read_users

Opt = typer.Option
app = typer.Typer(no_args_is_help=True, help="Logins for the web panels (admins, resellers).")
STDIN = Annotated[bool, Opt("--password-stdin", help="read the password from standard input")]


def _password(from_stdin: bool) -> str:
    """From stdin, or twice at a prompt on a terminal (only there: elsewhere it would hang)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    raise fail("no password: pass --password-stdin (or run on a terminal to be prompted)")


@app.command("add")
@handled
def add(
    username: str,
    role: Annotated[str, Opt(help="admin | reseller")],
    reseller: Annotated[
        str | None, Opt(help="the reseller a reseller login acts for (name or id:N)")
    ] = None,
    password_stdin: STDIN = False,
) -> None:
    """Add a web login (password: --password-stdin, or a prompt; at least 8 characters)."""
    password = _password(password_stdin)
    with session() as s:
        u = users.create_user(s, ACTOR, username, role=role, password=password, reseller=reseller)
        added = f"web user {u.username} added ({u.role})"
    typer.echo(added)  # once it is committed


@app.command("list")
@handled
def list_(as_json: JSON = False) -> None:
    """Web logins: role, reseller, last login (never a password or its hash)."""
    with session() as s:
        rows = read_users.list_(s, ADMIN)
    emit(rows, as_json, ["username", "role", "reseller", "created_at", "last_login_at"])


@app.command("passwd")
@handled
def passwd(username: str, password_stdin: STDIN = False) -> None:
    """Set a web login's password; its open sessions end."""
    password = _password(password_stdin)
    with session() as s:
        users.set_password(s, ACTOR, username, password)
    typer.echo(f"password of {username} changed")


@app.command("remove")
@handled
def remove(username: str) -> None:
    """Remove a web login; its open sessions end."""
    with session() as s:
        users.remove_user(s, ACTOR, username)
    typer.echo(f"web user {username} removed")
