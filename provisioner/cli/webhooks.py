"""``provisioner webhook …``, ``provisioner events …``, ``provisioner reminder …``: events
out from the shell, acting as the admin (the API's ``/webhooks``, ``/events``)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from sqlalchemy import select

from provisioner import access, events, webhooks
from provisioner.api.routes.webhooks import (
    AttemptOut,
    DeliveryDetailOut,
    DeliveryOut,
    EndpointCreatedOut,
    EndpointOut,
    MessageOut,
    delivery_view,
    endpoint_view,
)
from provisioner.cli.common import JSON, ctx, emit, handled, out, session
from provisioner.db import reading
from provisioner.models import CustomerContact, Event, ReminderMessage
from provisioner.read import ADMIN

Opt = typer.Option
app = typer.Typer(
    no_args_is_help=True,
    help="Webhook endpoints: add (the secret is shown once), list, edit, rotate, remove, "
    "test, deliveries, redeliver.",
)
events_app = typer.Typer(no_args_is_help=True, help="Events: list, tail (as they happen).")
reminders_app = typer.Typer(no_args_is_help=True, help="Reminders to customers: list, contact.")
COLUMNS = ["id", "url", "events", "owner", "enabled", "failing_since", "kind"]
DELIVERY_COLUMNS = ["id", "event_type", "webhook_id", "status", "attempts", "last_status",
                    "last_response_ms", "next_attempt_at"]  # fmt: skip


@app.command("add")
@handled
def add(
    url: str,
    event: Annotated[list[str], Opt("--event", "-e", help="an event type, or *; repeat")],
    description: Annotated[str, Opt(help="a label")] = "",
    concurrency: Annotated[int, Opt(help="deliveries to it at once")] = 4,
    timeout: Annotated[float, Opt(help="seconds per try")] = 10.0,
    other: Annotated[bool, Opt("--other", help="the other adapter's endpoint")] = False,
    as_json: JSON = False,
) -> None:
    """Register an endpoint; its secret (whsec_…) is printed this once."""
    with session() as s:
        ep, secret = webhooks.create(
            s, ADMIN, url, event, description=description, concurrency=concurrency,
            timeout_seconds=timeout, kind="other" if other else "webhook",
            restrict_admins=ctx().settings.webhook_restrict_admins,
        )  # fmt: skip
        emit(EndpointCreatedOut(**endpoint_view(ep), secret=secret), as_json)


@app.command("list")
@handled
def list_(as_json: JSON = False) -> None:
    """Every endpoint."""
    with session() as s:
        rows = [EndpointOut(**endpoint_view(ep)) for ep in webhooks.endpoints(s, ADMIN)]
        emit(rows, as_json, COLUMNS)


@app.command("edit")
@handled
def edit(
    endpoint_id: int,
    url: Annotated[str | None, Opt()] = None,
    event: Annotated[list[str] | None, Opt("--event", "-e", help="replaces the list")] = None,
    description: Annotated[str | None, Opt()] = None,
    concurrency: Annotated[int | None, Opt()] = None,
    timeout: Annotated[float | None, Opt()] = None,
    enable: Annotated[bool | None, Opt("--enable/--disable")] = None,
    as_json: JSON = False,
) -> None:
    """Change an endpoint; --enable brings a disabled one back."""
    with session() as s:
        ep = webhooks.edit(
            s, ADMIN, endpoint_id, url=url, events=event, description=description,
            concurrency=concurrency, timeout_seconds=timeout, enabled=enable,
            restrict_admins=ctx().settings.webhook_restrict_admins,
        )  # fmt: skip
        emit(EndpointOut(**endpoint_view(ep)), as_json)


@app.command("rotate")
@handled
def rotate(endpoint_id: int, as_json: JSON = False) -> None:
    """A new secret, printed this once; deliveries from now on are signed with it."""
    with session() as s:
        ep, secret = webhooks.rotate(s, ADMIN, endpoint_id)
        emit(EndpointCreatedOut(**endpoint_view(ep), secret=secret), as_json)


@app.command("remove")
@handled
def remove(endpoint_id: int) -> None:
    """Remove an endpoint and its delivery log."""
    with session() as s:
        webhooks.remove(s, ADMIN, endpoint_id)
    out().print(f"removed webhook endpoint {endpoint_id}")


@app.command("test")
@handled
def test(endpoint_id: int, as_json: JSON = False) -> None:
    """Queue a webhook.test event to this endpoint (the daemon sends it; see deliveries)."""
    with session() as s:
        d = webhooks.send_test(s, ADMIN, endpoint_id)
        e = s.get(Event, d.event_id)
        assert e is not None
        emit(DeliveryOut(**delivery_view(d, e)), as_json)


@app.command("deliveries")
@handled
def deliveries(
    endpoint_id: int,
    status: Annotated[str | None, Opt(help="pending | running | delivered | failed")] = None,
    limit: Annotated[int, Opt()] = 100,
    as_json: JSON = False,
) -> None:
    """An endpoint's deliveries, newest first."""
    with session() as s:
        rows = webhooks.deliveries(s, ADMIN, endpoint_id, status=status, limit=limit)
        emit([DeliveryOut(**delivery_view(d, e)) for d, e in rows], as_json, DELIVERY_COLUMNS)


@app.command("delivery")
@handled
def delivery(endpoint_id: int, delivery_id: int, as_json: JSON = False) -> None:
    """One delivery and every try of it."""
    with session() as s:
        d = webhooks.delivery(s, ADMIN, endpoint_id, delivery_id)
        e = s.get(Event, d.event_id)
        assert e is not None
        log = [AttemptOut(at=a.at, status_code=a.status_code, response_ms=a.response_ms,
                          error=a.error) for a in webhooks.attempts(s, d.id)]  # fmt: skip
        shown = DeliveryDetailOut(**delivery_view(d, e), log=log)
        if as_json:
            emit(shown, True)
            return
        emit(shown.model_dump(exclude={"log"}), False)
        emit([a.model_dump() for a in log], False, ["at", "status_code", "response_ms", "error"])


@app.command("redeliver")
@handled
def redeliver(endpoint_id: int, delivery_id: int, as_json: JSON = False) -> None:
    """Send a delivery again now (same webhook-id)."""
    with session() as s:
        d = webhooks.redeliver(s, ADMIN, endpoint_id, delivery_id)
        e = s.get(Event, d.event_id)
        assert e is not None
        emit(DeliveryOut(**delivery_view(d, e)), as_json)


@app.command("send")
@handled
def send(as_json: JSON = False) -> None:
    """Fan out new events and send what is due now, here (no daemon needed)."""
    c = ctx()
    emit(webhooks.drain(c.factory, c.settings), as_json)


# ---- events -----------------------------------------------------------------------------


def _line(e: Event) -> str:
    return f"{e.at.isoformat()} {e.type} {e.uid} {json.dumps(e.body, sort_keys=True)}"


def _since(after: int, type_: str | None, limit: int) -> list[Event]:
    q = select(Event).where(Event.id > after).order_by(Event.id).limit(limit)
    if type_:
        q = q.where(Event.type == type_)
    with reading(ctx().factory) as s:
        return list(s.scalars(q))


@events_app.command("list")
@handled
def events_list(
    type_: Annotated[str | None, Opt("--type", help="one event type")] = None,
    limit: Annotated[int, Opt(help="the last this many")] = 50,
    as_json: JSON = False,
) -> None:
    """The latest events, oldest first."""
    with reading(ctx().factory) as s:
        q = select(Event).order_by(Event.id.desc()).limit(limit)
        if type_:
            q = q.where(Event.type == type_)
        rows = list(s.scalars(q))[::-1]
    emit([{"seq": e.id, "id": e.uid, "type": e.type, "at": e.at.isoformat(), "data": e.body}
          for e in rows], as_json, ["seq", "at", "type", "id", "data"])  # fmt: skip


@events_app.command("types")
def events_types() -> None:
    """Every event type and what it means."""
    for k, v in events.TYPES.items():
        out().print(f"{k:24} {v}", highlight=False)


@events_app.command("tail")
@handled
def tail(
    type_: Annotated[str | None, Opt("--type", help="one event type")] = None,
    last: Annotated[int, Opt(help="print the last N first")] = 0,
    count: Annotated[int, Opt(help="stop after printing this many (0: never)")] = 0,
    interval: Annotated[float, Opt(help="seconds between looks")] = 1.0,
    as_json: Annotated[bool, Opt("--json", help="one JSON object a line")] = False,
) -> None:
    """Print events as they happen (one a line), until interrupted or --count."""
    with reading(ctx().factory) as s:
        newest = s.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0
    after, printed = max(0, newest - last), 0
    try:
        while True:
            for e in _since(after, type_, 500):
                after = e.id
                if as_json:
                    line = json.dumps({"seq": e.id, "id": e.uid, "type": e.type,
                                       "at": e.at.isoformat(), "data": e.body}, sort_keys=True)
                else:
                    line = _line(e)
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
                printed += 1
                if count and printed >= count:
                    return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


# ---- reminders --------------------------------------------------------------------------


@reminders_app.command("list")
@handled
def reminders_list(
    status: Annotated[str | None, Opt(help="pending | sent | skipped | failed")] = None,
    limit: Annotated[int, Opt()] = 100,
    as_json: JSON = False,
) -> None:
    """Reminders queued and sent, newest first."""
    with reading(ctx().factory) as s:
        q = select(ReminderMessage).order_by(ReminderMessage.id.desc()).limit(limit)
        if status:
            q = q.where(ReminderMessage.status == status)
        rows = [MessageOut.model_validate(m, from_attributes=True) for m in s.scalars(q)]
    emit(rows, as_json, ["id", "event_type", "customer_id", "channel", "language", "status",
                         "attempts", "last_error", "sent_at"])  # fmt: skip


@reminders_app.command("contact")
@handled
def contact(
    customer: str,
    email: Annotated[str | None, Opt()] = None,
    phone: Annotated[str | None, Opt()] = None,
    channel: Annotated[str | None, Opt(help="a channel of reminder_urls")] = None,
    language: Annotated[str | None, Opt(help="en | bn")] = None,
    opt_out: Annotated[bool | None, Opt("--opt-out/--opt-in")] = None,
    as_json: JSON = False,
) -> None:
    """Show or set where a customer's reminders go (only what is given changes)."""
    with session() as s:
        c = access.customer(s, ADMIN, customer)
        row = s.get(CustomerContact, c.id) or CustomerContact(customer_id=c.id, language="en",
                                                                opt_out=False)  # fmt: skip
        for k, v in {"email": email, "phone": phone, "channel": channel, "language": language,
                     "opt_out": opt_out}.items():  # fmt: skip
            if v is not None:
                setattr(row, k, v)
        if row.language not in ("en", "bn"):
            raise typer.BadParameter("en or bn", param_hint="--language")
        s.add(row)
        s.flush()
        emit({"customer": c.username, "email": row.email, "phone": row.phone,
              "channel": row.channel, "language": row.language, "opt_out": row.opt_out},
             as_json)  # fmt: skip
