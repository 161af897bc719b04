"""The typer application and the helpers every command uses."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from nas_adapters.errors import NasError
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.errors import ProvisionerError

# Typer keeps line breaks inside a paragraph, so each paragraph is one line here.
HELP = (
    "Run an ISP's packages on MikroTik routers and FreeRADIUS: registry, dry-run diffs, "
    "syncs, activations.\n\n"
    "Read commands take --json. An error prints one line on stderr and exits 1; "
    "`diff` exits 0 (no changes), 2 (changes pending) or 1 (error)."
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # one message, one line (the terminal wraps it)
# Where stdout is not a terminal (a pipe, a file, CI) there is no screen to fit: rich would
# assume 80 columns and cut cells. This one is wide enough that nothing is wrapped or cut.
_unbounded = Console(width=1_000_000)
ACTOR = "cli"
JSON = Annotated[bool, typer.Option("--json", help="print JSON")]
F = TypeVar("F", bound=Callable[..., Any])

_ctx: Context | None = None


def ctx() -> Context:
    global _ctx
    if _ctx is None:
        _ctx = open_context()
    return _ctx


@contextmanager
def session() -> Iterator[Session]:
    with transaction(ctx().factory) as s:
        yield s


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(1)


def handled(fn: F) -> F:
    """Turn the project's errors into one clear line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (ProvisionerError, NasError, LookupError) as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def out() -> Console:
    """The console for stdout: the screen on a terminal; elsewhere lines are never wrapped."""
    return console if console.is_terminal else _unbounded


def emit(
    rows: list[dict[str, Any]] | dict[str, Any],
    as_json: bool,
    columns: list[str] | None = None,
    title: str | None = None,
) -> None:
    """Print rows (or one record) as JSON or as a table of ``columns``."""
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    # On a terminal a long cell folds onto more lines, never "…"; elsewhere (``out``) each
    # row is one whole line, for grep.
    if isinstance(rows, dict):
        t = Table(show_header=False, title=title)
        t.add_column(overflow="fold")
        t.add_column(overflow="fold")
        for k, v in rows.items():
            t.add_row(k, "" if v is None else str(v))
        out().print(t)
        return
    cols = columns or (list(rows[0]) if rows else [])
    t = Table(title=title)
    for c in cols:
        t.add_column(c.replace("_", " "), overflow="fold")
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in cols))
    out().print(t)


def given(**kw: Any) -> dict[str, Any]:
    """Only the options the user actually passed (None means 'not given')."""
    return {k: v for k, v in kw.items() if v is not None}


def warn(messages: list[str]) -> None:
    for m in messages:
        err.print(f"[yellow]warning:[/] {m}", highlight=False)


# Register the command groups.
from provisioner.cli import money, ops, registry_cmds  # noqa: E402,F401
