"""Activations, balances and recharge cards from the shell (acting as admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner import activation, ledger, registry, views_activations
from provisioner.activation import ActivationRequest
from provisioner.auth import Principal
from provisioner.cli.app import JSON, app, ctx, emit, handled, session
from provisioner.models import Customer

Opt = typer.Option
ADMIN = Principal("admin", name="cli")
cards = typer.Typer(no_args_is_help=True, help="Recharge cards.")
app.add_typer(cards, name="card")
ACTIVATION_COLUMNS = ["id", "at", "customer", "package", "payer", "price", "status", "error"]


@app.command("activate")
@handled
def activate_cmd(
    customer: str,
    package: str,
    key: Annotated[str, Opt("--key", help="idempotency key: the same key never charges twice")],
    payer: Annotated[str, Opt(help="admin (free) | reseller | customer | card")] = "admin",
    card_serial: Annotated[str | None, Opt("--card", help="serial, with --payer card")] = None,
    card_pin: Annotated[str | None, Opt("--pin", help="PIN, with --payer card")] = None,
    as_json: JSON = False,
) -> None:
    """Activate, extend or upgrade a customer's package (one transaction)."""
    c = ctx()
    req = ActivationRequest(customer, package, key, payer, card_serial, card_pin)
    act_id, created = activation.run_activation(c.factory, ADMIN, req, c.settings)
    with session() as s:
        view = activation.activation_view(s, act_id)
    emit(view if as_json else {**view, "work": len(view["work"]), "new": created}, as_json)


acts = typer.Typer(no_args_is_help=True, help="Activations and the provisioning work they queued.")
app.add_typer(acts, name="activation")


@acts.command("show")
@handled
def activation_show(act_id: int, as_json: JSON = False) -> None:
    """An activation and the provisioning status of its work (pending/applied/failed)."""
    with session() as s:
        view = activation.activation_view(s, act_id)
    if not as_json:
        view["work"] = "; ".join(
            f"{w['kind']} {w['status']} after {w['attempts']} attempt(s)"
            + (f": {w['error']}" if w["error"] else "")
            for w in view["work"]
        ) or "none (nothing to do on a NAS)"
    emit(view, as_json)


@acts.command("list")
@handled
def activation_list(
    customer: Annotated[str | None, Opt(help="only this customer's (username or id)")] = None,
    status: Annotated[str | None, Opt(help="pending | applied | failed")] = None,
    limit: Annotated[int, Opt(help="at most this many, newest first")] = 50,
    as_json: JSON = False,
) -> None:
    """Activations, newest first: who bought what, who paid, and whether it is applied."""
    with session() as s:
        customer_id = (
            registry.get_by_name(s, Customer, customer, "username").id if customer else None
        )
        rows = views_activations.list_activations(
            s, customer_id=customer_id, status=status, limit=limit
        )
    emit(rows, as_json, ACTIVATION_COLUMNS)


@app.command("topup")
@handled
def topup_cmd(
    account: Annotated[str, typer.Argument(help="reseller:ID or customer:ID")],
    amount: str,
    refund: Annotated[bool, Opt("--refund", help="record it as a refund, not a top-up")] = False,
) -> None:
    """Credit a reseller's or customer's balance (a ledger row)."""
    with session() as s:
        new = ledger.topup(s, "cli", account, amount, kind="refund" if refund else "topup")
    typer.echo(f"{account}: balance {new} {ctx().settings.currency}")


@app.command("balance")
@handled
def balance_cmd(account: str, as_json: JSON = False) -> None:
    """A balance and the ledger rows it is the sum of."""
    with session() as s:
        rows = [
            {
                "at": e.created_at.isoformat(timespec="seconds"),
                "amount": str(e.amount),
                "kind": e.kind,
                "reference": e.reference,
            }
            for e in ledger.entries(s, account)
        ]
        total = ledger.balance(s, account)
    if as_json:
        emit({"account": account, "balance": str(total), "entries": rows}, True)
    else:
        emit(rows, False, ["at", "amount", "kind", "reference"], title=f"{account}: {total}")


@app.command("expire")
@handled
def expire_cmd() -> None:
    """Cut off every subscription that ran out now (the scheduler does this every minute)."""
    c = ctx()
    typer.echo(f"{activation.expire_due(c.factory, c.settings)} customers expired")


@cards.command("generate")
@handled
def cards_generate(
    count: int,
    value: str,
    days: Annotated[int, Opt(help="valid for")] = 365,
    batch: Annotated[str, Opt(help="a label for this batch")] = "batch",
) -> None:
    """Make a batch; serials and PINs are printed once (only PIN hashes are stored)."""
    with session() as s:
        made = activation.generate_cards(s, count, value, days, batch)
    emit([{"serial": a, "pin": b} for a, b in made], False, ["serial", "pin"])


@cards.command("redeem")
@handled
def cards_redeem(customer: str, serial: str, pin: str) -> None:
    """Credit a customer's balance with a card's value (each card is redeemed once)."""
    with session() as s:
        new = activation.redeem_card(s, ADMIN, customer, serial, pin)
    typer.echo(f"{customer}: balance {new}")
