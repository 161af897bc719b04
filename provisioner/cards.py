"""Recharge cards (vouchers): batches made by an admin, redeemed once into a customer's
balance. Only a keyed hash of each PIN is stored; the PINs are shown once, at generation."""

from __future__ import annotations

import secrets as pysecrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner import access, ledger, secrets, validation
from provisioner.auth import Principal
from provisioner.errors import ValidationError
from provisioner.models import RechargeCard, utcnow

MAX_CARDS = validation.MAX_CARDS


def hash_pin(serial: str, pin: str) -> str:
    # Keyed, and per card: a 14-digit PIN is too short to survive an offline guess
    # against a plain hash in a leaked database.
    return secrets.keyed_digest(f"card\0{serial}\0{pin.strip()}")


def usable(session: Session, serial: str | None, pin: str | None, now: datetime) -> RechargeCard:
    """The card, locked, if the PIN is right and it is unused and unexpired."""
    if not serial or not pin:
        raise ValidationError("a card payment needs the card's serial and PIN", field="card")
    if "\0" in serial or len(serial) > 32:  # no card has such a serial (the column: 32)
        raise ValidationError("unknown card or wrong PIN", field="card")
    card = session.scalar(
        select(RechargeCard).where(RechargeCard.serial == serial).with_for_update()
    )
    if card is None or not pysecrets.compare_digest(card.pin_hash, hash_pin(serial, pin)):
        raise ValidationError("unknown card or wrong PIN", field="card")
    if card.redeemed_at is not None:
        raise ValidationError(f"card {serial} was already redeemed", field="card")
    if card.expires_at < now:
        raise ValidationError(f"card {serial} expired on {card.expires_at:%Y-%m-%d}", field="card")
    return card


def redeem(
    session: Session, principal: Principal, customer_ref: str, serial: str, pin: str
) -> Decimal:
    """Top up a customer's balance with a card, once. Returns the new balance."""
    customer = access.customer(session, principal, customer_ref)
    now = utcnow()
    card = usable(session, serial, pin, now)
    card.redeemed_at, card.redeemed_by = now, customer.id
    account = ledger.account_of("customer", customer.id)
    return ledger.credit(
        session, account, card.value, "card", reference=f"card {serial}", actor=principal.actor
    )


def generate(
    session: Session, count: int, value: Any, days: int, batch: str
) -> list[tuple[str, str]]:
    """A batch of cards; returns (serial, PIN) pairs once — only PIN hashes are stored."""
    count = validation.positive_int("count", count)
    if count > MAX_CARDS:  # one request, one transaction: keep it a batch, not a flood
        raise ValidationError(f"at most {MAX_CARDS} cards per batch", field="count")
    amount = validation.price("value", value)
    if amount == 0:
        raise ValidationError("must be greater than 0", field="value")
    validation.text("batch", batch, 64)
    life = validation.positive_int("days", days, maximum=validation.MAX_DAYS)  # no date overflow
    expires = utcnow() + timedelta(days=life)
    out = []
    for _ in range(count):
        serial = pysecrets.token_hex(6).upper()
        pin = "".join(pysecrets.choice("0123456789") for _ in range(14))
        session.add(
            RechargeCard(
                serial=serial,
                pin_hash=hash_pin(serial, pin),
                value=amount,
                batch=batch,
                expires_at=expires,
            )
        )
        out.append((serial, pin))
    session.flush()
    return out
