"""The helpers every command uses: the context, a session, one-line errors, output."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar, get_args

import click
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nas_adapters.errors import NasError
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.errors import ProvisionerError
from provisioner.schemas import choices_of

console = Console()
err = Console(stderr=True, soft_wrap=True)  # one message, one line (the terminal wraps it)
# Where stdout is not a terminal (a pipe, a file, CI) there is no screen to fit: rich would
# assume 80 columns and cut cells. This one is wide enough that nothing is wrapped or cut.
_unbounded = Console(width=1_000_000)
ACTOR = "admin:cli"  # as read.ADMIN acts: one spelling of the CLI in the audit log
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
    """Whatever goes wrong is one clear line on stderr and exit code 1, never a traceback
    (set PROVISIONER_DEBUG=1 to see one)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except (ProvisionerError, NasError, LookupError) as exc:
            raise fail(str(exc)) from None
        except IntegrityError:
            # The registry checks clashes first; this is a concurrent change that won.
            raise fail(
                "conflicts with a concurrent change; nothing was written, try again"
            ) from None
        except Exception as exc:
            if os.environ.get("PROVISIONER_DEBUG"):
                raise
            first = (str(exc).splitlines() or [""])[0]
            raise fail(f"{type(exc).__name__}: {first} (PROVISIONER_DEBUG=1 shows where)") from None

    return wrapper  # type: ignore[return-value]


def out() -> Console:
    """The console for stdout: the screen on a terminal; elsewhere lines are never wrapped."""
    return console if console.is_terminal else _unbounded


def emit(
    rows: list[dict[str, Any]] | dict[str, Any] | BaseModel | Sequence[BaseModel],
    as_json: bool,
    columns: list[str] | None = None,
    title: str | None = None,
) -> None:
    """Print rows (or one record) as JSON or as a table of ``columns``. Models print as
    the API shows them (``read.models``)."""
    rows = dump(rows)
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


def dump(value: Any) -> Any:
    """Models (and lists of them) as JSON-able data; anything else as it is."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value


def given(**kw: Any) -> dict[str, Any]:
    """Only the options the user actually passed (None means 'not given')."""
    return {k: v for k, v in kw.items() if v is not None}


def warn(messages: list[str]) -> None:
    for m in messages:
        err.print(f"[yellow]warning:[/] {m}", highlight=False)


def model_command(
    model: type[BaseModel],
    body: Callable[..., None],
    *,
    leading: list[inspect.Parameter],
    flags: dict[str, str],
    defaults: dict[str, Any] | None = None,
    required: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
) -> Callable[..., None]:
    """A command whose options are ``model``'s fields (name, type, help), so a field is
    declared once for the API and the CLI. ``body(*leading, data)`` gets only the options
    given; ``flags`` renames options (``rate_down`` → ``--down``)."""
    defaults = defaults or {}
    params = list(leading)
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        kinds = set(get_args(f.annotation)) or {f.annotation}
        typ: Any = int if int in kinds and str not in kinds else str
        flag = flags.get(name, "--" + name.replace("_", "-"))
        shown = " | ".join(choices_of(f.annotation))  # the values a choice takes
        help = f"{shown}: {f.description}" if shown and f.description else shown or f.description
        if name in required:
            annotation: Any = Annotated[typ, typer.Option(flag, help=help)]
            default: Any = inspect.Parameter.empty
        else:
            annotation = Annotated[typ | None, typer.Option(flag, help=help)]
            default = defaults.get(name)
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    lead = [p.name for p in leading]

    def command(**kw: Any) -> None:
        body(*(kw.pop(n) for n in lead), given(**kw))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = body.__doc__
    return handled(command)


# ---- lists: one page at a time, as the API pages them ----------------------------------

Limit = Annotated[int, typer.Option(min=1, max=1000, help="at most this many")]
Offset = Annotated[int, typer.Option(min=0, help="skip this many first")]
Search = Annotated[
    str | None, typer.Option("--search", help="only names that contain this (any case)")
]


def emit_page(
    page: Any,
    as_json: bool,
    columns: list[str] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> None:
    """A ``read.models.Page``: as JSON, the page object the API answers with; as a table,
    its items (``rows``: as they should print) and a line "shown of total"."""
    if as_json:
        emit(page, True)
        return
    emit(rows if rows is not None else list(page.items), False, columns)
    n = len(page.items)
    shown = f"{page.offset + 1}-{page.offset + n}" if n else "none"
    typer.echo(f"{shown} of {page.total}")
