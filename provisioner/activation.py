"""Activations: who may buy what, payment, subscription, RADIUS rows and router work —
all in one transaction, so a crash loses nothing and charges nothing twice.

A repeated idempotency key returns the first activation and charges nothing.
"""

from __future__ import annotations

import calendar
import secrets as pysecrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from provisioner import ledger, radius_store, secrets, sessions, validation
from provisioner.auth import Principal
from provisioner.config import Settings, get_settings
from provisioner.db import transaction
from provisioner.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PaymentRequired,
    ProvisionerError,
    ValidationError,
)
from provisioner.models import (
    Activation,
    Customer,
    CustomerStatus,
    CustomerType,
    Invoice,
    Outbox,
    Package,
    RechargeCard,
    ResellerPackage,
    Visibility,
    utcnow,
)
from provisioner.registry import (
    allocate_address,
    needs_router_sync,
    reseller_price,
)
from provisioner.state import options

PAYERS = ("auto", "admin", "reseller", "customer", "card")


MAX_CARDS = 10_000


@dataclass(frozen=True)
class ActivationRequest:
    customer: str
    package: str
    idempotency_key: str
    payer: str = "auto"  # one of PAYERS
    card_serial: str | None = None
    card_pin: str | None = None


def add_month(d: datetime, day: int | None = None) -> datetime:
    """A month after ``d``, on ``day`` (default ``d``'s) or the month's last day if shorter.

    Keeping the day apart from ``d`` keeps renewals on it: Jan 31 → Feb 28 → Mar 31.
    """
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return d.replace(
        year=year, month=month, day=min(day or d.day, calendar.monthrange(year, month)[1])
    )


def period(
    customer: Customer, package: Package, now: datetime
) -> tuple[datetime, datetime, int | None]:
    """(start, end, billing day). Daily: N days from now, or from the current expiry when
    still active on the same package. Monthly: to the next billing date, likewise, on the
    day of the month the subscription began. Another package starts now."""
    m = package.master_package
    same = customer.package_id == package.id
    active = (
        customer.status == CustomerStatus.active
        and customer.expires_at
        and customer.expires_at > now
    )
    extend = bool(same and active and customer.expires_at)
    start = customer.expires_at if extend and customer.expires_at else now
    if str(m.billing) == "daily":
        return start, start + timedelta(days=m.duration_days), customer.billing_day
    day = (customer.billing_day or start.day) if extend else now.day
    return start, add_month(start, day), day


def _hash_pin(serial: str, pin: str) -> str:
    # Keyed, and per card: a 14-digit PIN is too short to survive an offline guess
    # against a plain hash in a leaked database.
    return secrets.keyed_digest(f"card\0{serial}\0{pin.strip()}")


def _card(session: Session, serial: str | None, pin: str | None, now: datetime) -> RechargeCard:
    if not serial or not pin:
        raise ValidationError("a card payment needs the card's serial and PIN", field="card")
    card = session.scalar(
        select(RechargeCard).where(RechargeCard.serial == serial).with_for_update()
    )
    if card is None or not pysecrets.compare_digest(card.pin_hash, _hash_pin(serial, pin)):
        raise ValidationError("unknown card or wrong PIN", field="card")
    if card.redeemed_at is not None:
        raise ValidationError(f"card {serial} was already redeemed", field="card")
    if card.expires_at < now:
        raise ValidationError(f"card {serial} expired on {card.expires_at:%Y-%m-%d}", field="card")
    return card


def redeem_card(
    session: Session, principal: Principal, customer_ref: str, serial: str, pin: str
) -> Decimal:
    """Top up a customer's balance with a card, once. Returns the new balance."""
    customer = _customer_for(session, principal, customer_ref)
    now = utcnow()
    card = _card(session, serial, pin, now)
    card.redeemed_at, card.redeemed_by = now, customer.id
    account = ledger.account_of("customer", customer.id)
    ledger.lock(session, account)
    ledger.post(
        session, account, card.value, "card", reference=f"card {serial}", actor=principal.actor
    )
    session.flush()
    return ledger.balance(session, account)


def generate_cards(
    session: Session, count: int, value: Any, days: int, batch: str
) -> list[tuple[str, str]]:
    """A batch of cards; returns (serial, PIN) pairs once — only PIN hashes are stored."""
    count = validation.positive_int("count", count)
    if count > MAX_CARDS:  # one request, one transaction: keep it a batch, not a flood
        raise ValidationError(f"at most {MAX_CARDS} cards per batch", field="count")
    amount = validation.price("value", value)
    if amount == 0:
        raise ValidationError("must be greater than 0", field="value")
    expires = utcnow() + timedelta(days=validation.positive_int("days", days))
    out = []
    for _ in range(count):
        serial = pysecrets.token_hex(6).upper()
        pin = "".join(pysecrets.choice("0123456789") for _ in range(14))
        session.add(
            RechargeCard(
                serial=serial,
                pin_hash=_hash_pin(serial, pin),
                value=amount,
                batch=batch,
                expires_at=expires,
            )
        )
        out.append((serial, pin))
    session.flush()
    return out


def _customer_for(session: Session, principal: Principal, ref: str) -> Customer:
    c = session.scalar(select(Customer).where(Customer.username == ref))
    if c is None and ref.isdigit():
        c = session.get(Customer, int(ref))
    visible = c is not None and (
        principal.role == "admin"
        or (principal.role == "reseller" and c.reseller_id == principal.reseller_id)
        or (principal.role == "customer" and c.id == principal.customer_id)
    )
    if not visible or c is None:
        raise NotFound(f"no customer named {ref!r}")
    return c


def _price_and_payer(
    session: Session,
    principal: Principal,
    req: ActivationRequest,
    customer: Customer,
    package: Package,
) -> tuple[Decimal, str | None]:
    """Authorise and price: (price, account to debit or None for an admin grant)."""
    if principal.role == "reseller":
        a = session.scalar(
            select(ResellerPackage).where(
                ResellerPackage.reseller_id == principal.reseller_id,
                ResellerPackage.package_id == package.id,
            )
        )
        if a is None:
            raise NotFound(f"no package named {req.package!r} is assigned to you")
        return reseller_price(a), ledger.account_of("reseller", principal.reseller_id or 0)
    if principal.role == "customer":
        if customer.status == CustomerStatus.suspended:
            # A suspension is the operator's decision; buying must not lift it.
            raise Forbidden("this account is suspended; contact your provider")
        if package.visibility != Visibility.public:
            raise NotFound(f"no public package named {req.package!r}")
        return package.customer_price, ledger.account_of("customer", customer.id)
    # An admin grants for free, or charges a named payer.
    if req.payer == "customer":
        return package.customer_price, ledger.account_of("customer", customer.id)
    if req.payer == "reseller":
        if customer.reseller_id is None:
            raise ValidationError("this customer has no reseller to charge", field="payer")
        a = session.scalar(
            select(ResellerPackage).where(
                ResellerPackage.reseller_id == customer.reseller_id,
                ResellerPackage.package_id == package.id,
            )
        )
        price = reseller_price(a) if a else package.operator_price
        return price, ledger.account_of("reseller", customer.reseller_id)
    if req.payer == "card":
        return package.customer_price, ledger.account_of("customer", customer.id)
    return Decimal("0.00"), None


def _replay(session: Session, principal: Principal, key: str) -> Activation | None:
    """The activation an earlier request with this key made, if the same caller made it.

    Keys are global, so another caller's key is refused: replaying its activation would
    show that caller's customer, package and price, and drop this request unnoticed."""
    prior = session.scalar(select(Activation).where(Activation.idempotency_key == key))
    if prior is not None and prior.requested_by != principal.actor:
        raise Conflict(
            "this idempotency key was already used by another caller; send a new key",
            field="idempotency_key",
        )
    return prior


def activate(
    session: Session, principal: Principal, req: ActivationRequest, settings: Settings | None = None
) -> tuple[Activation, bool]:
    """Activate (or extend, or upgrade) in the caller's transaction.

    Returns (activation, created). A key seen before returns the first activation.
    """
    settings = settings or get_settings()
    key = (req.idempotency_key or "").strip()
    if not key or len(key) > 128:
        raise ValidationError("is required (at most 128 characters)", field="idempotency_key")
    prior = _replay(session, principal, key)
    if prior is not None:
        return prior, False
    if req.payer not in PAYERS:
        # Anything unrecognised would otherwise fall through to an admin's free grant.
        raise ValidationError(f"must be one of {', '.join(PAYERS)}", field="payer")
    customer = _customer_for(session, principal, req.customer)
    package = session.scalar(select(Package).where(Package.name == req.package))
    if package is None:
        raise NotFound(f"no package named {req.package!r}")
    master = package.master_package
    if str(master.customer_type) != str(customer.customer_type):
        raise ValidationError(
            f"package {package.name!r} is for {master.customer_type} customers; "
            f"{customer.username} is a {customer.customer_type} customer",
            field="package",
        )
    price, account = _price_and_payer(session, principal, req, customer, package)
    now = utcnow()
    if req.payer == "card" or req.card_serial:
        if principal.role == "reseller":
            raise Forbidden("resellers pay from their balance, not with recharge cards")
        # The card tops up the customer's balance; the debit below then pays from it.
        redeem_card(
            session, principal, customer.username, req.card_serial or "", req.card_pin or ""
        )
    if account is not None:
        ledger.lock(session, account)
        have = ledger.balance(session, account)
        if have < price:
            raise PaymentRequired(
                f"insufficient balance: {account} has {have} {settings.currency}, "
                f"the package costs {price} {settings.currency}",
                field="balance",
            )
    before = sessions.terms_of(customer)
    start, end, billing_day = period(customer, package, now)
    act = Activation(
        idempotency_key=key, customer_id=customer.id, package_id=package.id,
        payer=account or "admin", price=price, requested_by=principal.actor,
        starts_at=start, expires_at=end, status="pending",
    )  # fmt: skip
    session.add(act)
    session.flush()
    if account is not None and price > 0:
        ledger.post(
            session,
            account,
            -price,
            "activation",
            reference=package.name,
            activation_id=act.id,
            actor=principal.actor,
        )
    if str(master.billing) == "monthly":
        session.add(
            Invoice(
                customer_id=customer.id,
                activation_id=act.id,
                amount=price,
                period_start=start,
                period_end=end,
            )
        )
    customer.package = package
    customer.status = CustomerStatus.active
    customer.expires_at = end
    customer.billing_day = billing_day
    if customer.customer_type == CustomerType.static and not customer.static_ip:
        customer.static_ip = allocate_address(session, customer, master)
    session.flush()
    radius_store.sync_users(session, options(settings), [customer.username])
    queued = _queue_work(session, customer, act)
    queued += sessions.queue(session, [(before, sessions.terms_of(customer))], activation_id=act.id)
    if not queued:
        act.status = "applied"  # nothing left to do on a NAS (e.g. a RADIUS-mode PPPoE user)
    return act, True


def _queue_work(session: Session, c: Customer, act: Activation | None) -> int:
    """Router and "other" work for one customer, in this transaction; how many rows."""
    act_id = act.id if act else None
    if c.customer_type == CustomerType.other:
        session.add(
            Outbox(
                kind="other",
                activation_id=act_id,
                payload={
                    "customer": c.username,
                    "package": c.package.name if c.package else None,
                    "status": str(c.status),
                    "expires_at": c.expires_at.isoformat() if c.expires_at else None,
                },
            )
        )
    elif needs_router_sync(c.router, str(c.customer_type)):
        assert c.router is not None
        session.add(
            Outbox(kind="sync_router", router_id=c.router.id, activation_id=act_id, payload={})
        )
    else:
        return 0
    session.flush()
    return 1


def expire_due(
    factory: sessionmaker[Session], settings: Settings, now: datetime | None = None
) -> int:
    """Cut off every active customer whose subscription ran out; returns how many."""
    now = now or utcnow()
    with transaction(factory) as s:
        due = list(
            s.scalars(
                select(Customer).where(
                    Customer.status == CustomerStatus.active, Customer.expires_at < now
                )
            )
        )
        before = [sessions.terms_of(c) for c in due]
        for c in due:
            c.status = CustomerStatus.expired
        s.flush()
        if due:
            radius_store.sync_users(s, options(settings), [c.username for c in due])
            for c in due:
                _queue_work(s, c, None)
            sessions.queue(s, zip(before, map(sessions.terms_of, due), strict=True))
        return len(due)


def run_activation(
    factory: sessionmaker[Session],
    principal: Principal,
    req: ActivationRequest,
    settings: Settings | None = None,
) -> tuple[int, bool]:
    """One activation in its own transaction; a concurrent duplicate key returns the first."""
    from provisioner import metrics

    try:
        with transaction(factory) as s:
            act, created = activate(s, principal, req, settings)
        metrics.ACTIVATIONS.labels("created" if created else "replayed").inc()
        return act.id, created
    except ProvisionerError as exc:
        metrics.ACTIVATIONS.labels(type(exc).__name__).inc()
        raise
    except IntegrityError:
        with transaction(factory) as s:
            prior = _replay(s, principal, (req.idempotency_key or "").strip())
            if prior is None:
                raise
            return prior.id, False


def activation_view(session: Session, act_id: int) -> dict[str, Any]:
    a = session.get(Activation, act_id)
    if a is None:
        raise NotFound(f"no activation {act_id}")
    c = session.get(Customer, a.customer_id)
    p = session.get(Package, a.package_id)
    work = list(session.scalars(select(Outbox).where(Outbox.activation_id == a.id)))
    return {
        "id": a.id, "idempotency_key": a.idempotency_key, "customer": c.username if c else None,
        "package": p.name if p else None, "payer": a.payer, "price": str(a.price),
        "starts_at": a.starts_at.isoformat(), "expires_at": a.expires_at.isoformat(),
        "status": a.status, "error": a.error,
        "work": [
            {"kind": w.kind, "status": w.status, "attempts": w.attempts, "error": w.last_error}
            for w in work
        ],
    }  # fmt: skip
