"""``provisioner activate``, ``activation …``, ``topup``, ``balance``, ``card …``, ``expire``:
activations, money and recharge cards from the shell, acting as the admin."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from provisioner import activation, cards, ledger
from provisioner.activation import ActivationRequest
from provisioner.cli.common import (
    ACTOR,
    JSON,
    Limit,
    Offset,
    ctx,
    dump,
    emit,
    emit_page,
    handled,
    session,
)
from provisioner.read import ADMIN, activations, balances

Opt = typer.Option
app = typer.Typer()
acts = typer.Typer(no_args_is_help=True, help="Activations and the provisioning work they queued.")
card = typer.Typer(no_args_is_help=True, help="Recharge cards.")
app.add_typer(acts, name="activation")
app.add_typer(card, name="card")
ACCOUNT_HELP = "reseller:NAME or customer:USERNAME (or the key reseller:ID, customer:ID)"
COLUMNS = ["id", "at", "customer", "package", "payer", "price", "status", "error"]


@app.command("activate")
@handled
def activate(
    customer: str,
    package: str,
    key: Annotated[str, Opt("--key", help="idempotency key: the same key never charges twice")],
    payer: Annotated[str, Opt(help="admin (free) | reseller | customer | card")] = "admin",
    card_serial: Annotated[str | None, Opt("--card", help="serial, with --payer card")] = None,
    card_pin: Annotated[str | None, Opt("--pin", help="PIN, with --payer card")] = None,
    as_json: JSON = False,
) -> None:
    """Activate, extend or upgrade a customer's package (one transaction)."""
    req = ActivationRequest(customer, package, key, payer, card_serial, card_pin)
    act_id, created = activation.run_activation(ctx().factory, ADMIN, req)
    with session() as s:
        view = dump(activations.get(s, ADMIN, act_id))
    emit(view if as_json else {**view, "work": len(view["work"]), "new": created}, as_json)


@acts.command("show")
@handled
def show(act_id: int, as_json: JSON = False) -> None:
    """An activation and the provisioning status of its work (pending/applied/failed)."""
    with session() as s:
        view = dump(activations.get(s, ADMIN, act_id))
    if not as_json:
        view["work"] = (
            "; ".join(
                f"{w['kind']} {w['status']} after {w['attempts']} attempt(s)"
                + (f": {w['error']}" if w["error"] else "")
                for w in view["work"]
            )
            or "none (nothing to do on a NAS)"
        )
    emit(view, as_json)


SINCE = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


@acts.command("list")
@handled
def list_(
    customer: Annotated[str | None, Opt(help="only this customer's (username, or id:N)")] = None,
    status: Annotated[str | None, Opt(help="pending | applied | failed")] = None,
    since: Annotated[
        datetime | None, Opt(help="made at or after this (UTC if no zone)", formats=SINCE)
    ] = None,
    limit: Annotated[int, Opt(min=1, max=1000, help="at most this many, newest first")] = 50,
    offset: Offset = 0,
    as_json: JSON = False,
) -> None:
    """Activations, newest first: who bought what, who paid, and whether it is applied."""
    with session() as s:
        page = activations.page(
            s, ADMIN, customer=customer, status=status, since=since, limit=limit, offset=offset
        )
    emit_page(page, as_json, COLUMNS)


@app.command("topup")
@handled
def topup(
    account: Annotated[str, typer.Argument(help=ACCOUNT_HELP)],
    amount: str,
    refund: Annotated[bool, Opt("--refund", help="record it as a refund, not a top-up")] = False,
) -> None:
    """Credit a reseller's or customer's balance (a ledger row)."""
    with session() as s:
        account = ledger.resolve(s, account)
        new = ledger.topup(s, ACTOR, account, amount, kind="refund" if refund else "topup")
    typer.echo(f"{account}: balance {new} {ctx().settings.currency}")


@app.command("balance")
@handled
def balance(
    account: Annotated[str, typer.Argument(help=ACCOUNT_HELP)],
    as_json: JSON = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> None:
    """A balance and the ledger rows it is the sum of, newest first, a page at a time."""
    with session() as s:
        b = balances.of_account(s, ADMIN, account, limit=limit, offset=offset)
    if as_json:
        emit(b, True)
    else:
        typer.echo(f"{account}: {b.balance}")
        emit_page(b.entries, False, ["at", "amount", "kind", "reference"])


@app.command("expire")
@handled
def expire() -> None:
    """Cut off every subscription that ran out now (the scheduler does this every minute)."""
    typer.echo(f"{activation.expire_due(ctx().factory)} customers expired")


@card.command("generate")
@handled
def generate(
    count: int,
    value: str,
    days: Annotated[int, Opt(help="valid for")] = 365,
    batch: Annotated[str, Opt(help="a label for this batch")] = "batch",
) -> None:
    """Make a batch; serials and PINs are printed once (only PIN hashes are stored)."""
    with session() as s:
        made = cards.generate(s, count, value, days, batch)
    emit([{"serial": a, "pin": b} for a, b in made], False, ["serial", "pin"])


@card.command("redeem")
@handled
def redeem(customer: str, serial: str, pin: str) -> None:
    """Credit a customer's balance with a card's value (each card is redeemed once)."""
    with session() as s:
        new = cards.redeem(s, ADMIN, customer, serial, pin)
    typer.echo(f"{customer}: balance {new}")


ledger_app = typer.Typer(no_args_is_help=True, help="The ledger: balances and their proof.")
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
@handled
def ledger_check(as_json: JSON = False) -> None:
    """Prove every account's balance equals the sum of its ledger rows. Exit 1 if not.
    The outcome is kept for /metrics, as the daemon's scheduled check keeps its own."""
    with session() as s:
        bad = ledger.check_and_record(s, "cli")
    rows = [{"account": m.account, "balance": str(m.balance), "ledger": str(m.ledger)} for m in bad]
    if as_json:
        emit(rows, True)
    elif bad:
        emit(rows, False, ["account", "balance", "ledger"], title="balances that disagree")
    else:
        typer.echo("every balance equals the sum of its ledger rows")
    if bad:
        raise typer.Exit(1)
