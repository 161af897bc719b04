"""Events: what happened to a customer, an operator, a router or a webhook, written in the
transaction of the change itself, so a crash loses none and a rollback sends none.

The ``events`` table is their outbox: ``webhooks.fan_out`` turns each new event into one
delivery per subscribed endpoint (and a reminder for its customer), in a transaction of
its own, and the deliveries are sent by their own workers: nothing here waits on a
receiver. Types and bodies: ``TYPES`` and ``provisioner/events.schema.json`` (README,
"Events").
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, insert
from sqlalchemy.orm import Session

from provisioner.models import Event, utcnow

# Every type the daemon emits, and what it means (the schema documents each body).
TYPES: dict[str, str] = {
    "activation.applied": "an activation's routers and RADIUS rows are in place",
    "activation.failed": "an activation's NAS work failed for good",
    "customer.expiring": "a customer's package ends within reminder_days_ahead days",
    "customer.expired": "a customer's package ended: cut off",
    "customer.suspended": "a customer was suspended (by hand, or unpaid past its grace)",
    "customer.restored": "a suspended customer is active again",
    "invoice.issued": "a monthly invoice was issued",
    "invoice.paid": "an invoice was paid",
    "invoice.overdue": "an invoice is unpaid past its grace: its customer is suspended",
    "fup.throttled": "a customer passed its fair-usage threshold: reduced rate",
    "fup.restored": "a throttled customer is back at full rate",
    "balance.low": "an operator's balance fell below its threshold",
    "router.sync_failed": "a router sync failed or the router was unreachable",
    "router.drift_repaired": "a reconcile found the router changed by hand and put it back",
    "webhook.disabled": "an endpoint failed for a day and was disabled",
    "webhook.test": "a test sent by hand (provisioner webhook test)",
    "other.action": "what the \"other\" adapter's system is told of an Other customer",
}


# Built once: a batch compiles each statement object once (``batch``), not each call.
_INSERT = insert(Event.__table__)


def new_uid() -> str:
    """``evt_`` and a UUID version 7 (RFC 9562): its first 48 bits are the time in
    milliseconds, the rest random. New ids then sort after the ones before them, so the
    unique index on them grows at its right edge: random ids (version 4) wrote each into
    a page of their own anywhere in the index, and after each checkpoint every such page
    into the WAL whole, under a stream of activations (bench/README.md, "eighth pass")."""
    ms = time.time_ns() // 1_000_000 & (1 << 48) - 1
    rand = int.from_bytes(os.urandom(10))  # 74 of its 80 bits are used
    value = ms << 80 | 7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (1 << 62) - 1
    return "evt_" + uuid.UUID(int=value).hex


def row(
    type_: str,
    body: dict[str, Any],
    *,
    reseller_id: int | None = None,
    customer_id: int | None = None,
    key: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The events row of one event, for ``insert(Event)`` (one statement for many)."""
    assert type_ in TYPES, type_
    return {
        "uid": new_uid(), "type": type_, "at": at or utcnow(), "body": body,
        "reseller_id": reseller_id, "customer_id": customer_id, "key": key,
        "fanned_out": False,
    }  # fmt: skip


def emit(session: Session, type_: str, body: dict[str, Any], **kw: Any) -> None:
    """Write one event into the caller's transaction."""
    emit_many(session, [row(type_, body, **kw)])


def emit_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if rows:
        session.execute(_INSERT, rows)


def statement(type_: str, body: dict[str, Any], **kw: Any) -> tuple[Any, dict[str, Any]]:
    """(statement, parameters) of one event, for a batch sent with others (``sale.pay``)."""
    return _INSERT, row(type_, body, **kw)


def customer_body(c: Any) -> dict[str, Any]:
    """What every customer event says of its customer (``c``: a Customer)."""
    return {
        "customer": c.username,
        "customer_id": c.id,
        "customer_type": str(c.customer_type),
        "reseller_id": c.reseller_id,
        "package": c.package.name if c.package is not None else None,
        "status": str(c.status),
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
    }


def activation_body(act: Any, customer: Any, package: Any) -> dict[str, Any]:
    """activation.applied / activation.failed: the activation and its customer now."""
    return {
        **customer_body(customer),
        "activation_id": act.id,
        "package": package.name if package is not None else None,
        "price": str(act.price),
        "payer": act.payer,
        "starts_at": act.starts_at.isoformat(),
        "expires_at": act.expires_at.isoformat(),
        "error": act.error,
    }


def applied(act: Any, customer: Any, package: Any) -> tuple[Any, dict[str, Any]]:
    """activation.applied of an activation with no NAS work, as one batched statement."""
    return statement(
        "activation.applied", activation_body(act, customer, package),
        reseller_id=customer.reseller_id, customer_id=customer.id,
    )  # fmt: skip


def check_balances(session: Any, currency: str) -> int:
    """``balance.low`` for each operator whose balance is below the threshold it set,
    once until it is back at or above it; returns how many were emitted."""
    from sqlalchemy import select

    from provisioner.models import Account, BalanceAlert, Reseller

    rows = session.execute(
        select(BalanceAlert, Reseller.name, Account.balance)
        .join(Reseller, Reseller.id == BalanceAlert.reseller_id)
        .outerjoin(Account, Account.account == "reseller:" + Reseller.id.cast(String))
    ).all()
    n = 0
    for alert, name, balance in rows:
        bal = balance if balance is not None else Decimal("0.00")
        low = bal < alert.threshold
        if low and not alert.alerted:
            emit(session, "balance.low", {
                "reseller": name, "reseller_id": alert.reseller_id, "balance": str(bal),
                "threshold": str(alert.threshold), "currency": currency,
            }, reseller_id=alert.reseller_id)  # fmt: skip
            n += 1
        alert.alerted = low
    return n
