"""``provisioner invoice …``: monthly invoices from the shell, acting as the admin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisioner import invoices, validation
from provisioner.cli.common import ACTOR, JSON, ctx, emit, fail, handled, session
from provisioner.read import ADMIN
from provisioner.read import invoices as read

Opt = typer.Option
app = typer.Typer(no_args_is_help=True, help="Monthly invoices: list, show, pay, print, run.")
COLUMNS = ["id", "customer", "package", "amount", "period_start", "due_at", "status", "paid_at"]


@app.command("list")
@handled
def list_(
    customer: Annotated[str | None, Opt(help="one customer's (username, or id:N)")] = None,
    reseller: Annotated[str | None, Opt(help="one reseller's (and its sub-resellers')")] = None,
    status: Annotated[str | None, Opt(help="open | paid | void")] = None,
    limit: Annotated[int, Opt(help="at most this many, newest period first")] = 100,
    as_json: JSON = False,
) -> None:
    """Invoices, newest period first."""
    with session() as s:
        rows = read.list_(
            s, ADMIN, customer=customer, reseller=reseller, status=status, limit=limit
        )
    emit(rows, as_json, COLUMNS)


@app.command("show")
@handled
def show(invoice_id: int, as_json: JSON = False) -> None:
    """An invoice and the payments made against it."""
    with session() as s:
        emit(read.get(s, ADMIN, invoice_id), as_json)


@app.command("pay")
@handled
def pay(
    invoice_id: int,
    reference: Annotated[str, Opt(help="a receipt number, say")] = "",
    as_json: JSON = False,
) -> None:
    """Record an invoice as paid in full (money received); service is restored at once."""
    with session() as s:
        invoices.pay(s, ADMIN, invoice_id, reference=reference)
        emit(read.get(s, ADMIN, invoice_id), as_json)


@app.command("void")
@handled
def void(
    invoice_id: int,
    reason: Annotated[str, Opt(help="why (kept in the audit log)")] = "",
    as_json: JSON = False,
) -> None:
    """Cancel an open invoice; the customer keeps only what it paid for."""
    with session() as s:
        invoices.void(s, ACTOR, invoice_id, reason)
        emit(read.get(s, ADMIN, invoice_id), as_json)


@app.command("print")
@handled
def print_(
    invoice_id: int,
    out: Annotated[Path | None, Opt("--out", help="write it here (default: stdout)")] = None,
    pdf: Annotated[bool, Opt("--pdf", help="a one-page PDF (needs --out) instead of HTML")] = False,
) -> None:
    """The invoice to print: an HTML page, or a PDF."""
    if pdf and out is None:
        raise fail("--pdf writes a file: give --out FILE")
    with session() as s:
        page = read.pdf(s, ADMIN, invoice_id) if pdf else read.html(s, ADMIN, invoice_id)
    if out is None:
        assert isinstance(page, str)
        typer.echo(page)
    else:
        out.write_bytes(page if isinstance(page, bytes) else page.encode("utf-8"))
        typer.echo(f"invoice {invoice_id} written to {out}")


@app.command("run")
@handled
def run(
    at: Annotated[
        str | None,
        Opt("--at", help="run as of this ISO time (UTC if no zone): replay a missed day"),
    ] = None,
) -> None:
    """Issue the invoices due, pay what balances cover, suspend what is past its grace
    (the scheduler does this every ``invoice_interval_seconds``). Safe beside another
    run: each invoice is issued once and paid once."""
    r = invoices.run(ctx().factory, validation.moment("at", at) if at else None)
    typer.echo(f"{r.issued} issued, {r.paid} paid from balances, {r.suspended} suspended")
