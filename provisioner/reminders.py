"""Reminders to customers: a message for some events, through the ISP's own channels.

Channels are apprise URLs (``reminder_urls``: email, an SMS/WhatsApp/Telegram gateway),
never hand-written gateway clients. A message is queued when its event is fanned out
(``webhooks.fan_out``): at most one per event and customer (a unique key), none for a
customer who opted out or has no contact (kept as ``skipped``, so the log says why).
Texts are Jinja2 templates per event and language (``reminder_templates/<lang>/<type>.j2``:
first line the title, the rest the body; English and Bengali shipped). Nothing is sent in
the quiet hours of the ISP's time zone (``timezone``): what falls due then waits.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import apprise
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from provisioner import events, instances
from provisioner.config import Settings
from provisioner.db import reading, transaction
from provisioner.models import (
    Customer,
    CustomerContact,
    CustomerStatus,
    Event,
    ReminderMessage,
    utcnow,
)

log = logging.getLogger(__name__)
REMINDED = ("customer.expiring", "customer.expired", "invoice.issued", "invoice.overdue",
            "fup.throttled")  # fmt: skip
TEMPLATES = Path(__file__).resolve().parent / "reminder_templates"
LANGUAGES = ("en", "bn")
MAX_ATTEMPTS = 5
_env = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=False, undefined=StrictUndefined,
    keep_trailing_newline=False,
)  # fmt: skip


def channel_for(contact: CustomerContact | None, urls: dict[str, str]) -> str | None:
    """The channel a customer's reminders go by: its choice if the ISP has it, else
    email when it has an address, else the first other channel when it has a phone."""
    if contact is None or contact.opt_out:
        return None
    if contact.channel and contact.channel in urls:
        return contact.channel if _address(contact, contact.channel) else None
    if contact.email and "email" in urls:
        return "email"
    if contact.phone:
        return next((c for c in urls if c != "email"), None)
    return None


def _address(contact: CustomerContact, channel: str) -> str | None:
    return contact.email if channel == "email" else contact.phone


def queue(session: Session, evs: list[Event]) -> int:
    """The reminders of these events (in the fan-out's transaction); returns how many
    will be sent."""
    settings = events_settings(session)
    wanted = [e for e in evs if e.type in REMINDED and e.customer_id is not None]
    if not wanted:
        return 0
    ids = {e.customer_id for e in wanted}
    found = session.scalars(select(CustomerContact).where(CustomerContact.customer_id.in_(ids)))
    contacts = {c.customer_id: c for c in found}
    rows = []
    for e in wanted:
        contact = contacts.get(e.customer_id)  # type: ignore[arg-type]
        channel = channel_for(contact, settings.reminder_urls)
        why = None
        if contact is None:
            why = "no contact"
        elif contact.opt_out:
            why = "opted out"
        elif channel is None:
            why = "no channel for its contact"
        rows.append({
            "event_id": e.id, "customer_id": e.customer_id, "event_type": e.type,
            "channel": channel, "language": _language(contact, settings),
            "status": "skipped" if why else "pending", "attempts": 0, "last_error": why,
            "next_attempt_at": utcnow(), "created_at": utcnow(),
        })  # fmt: skip
    session.execute(ReminderMessage.__table__.insert(), rows)
    return sum(1 for r in rows if r["status"] == "pending")


def events_settings(session: Session) -> Settings:
    from provisioner.effects import settings_of

    return settings_of(session)


def _language(contact: CustomerContact | None, settings: Settings) -> str:
    lang = (contact.language if contact else None) or settings.reminder_language
    return lang if lang in LANGUAGES else "en"


# ---- quiet hours -----------------------------------------------------------------------


def quiet_until(settings: Settings, now: datetime) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (UTC), or None when it is not quiet."""
    spec = settings.reminder_quiet_hours.strip()
    if not spec:
        return None
    start_s, end_s = (p.strip() for p in spec.split("-", 1))
    start, end = time.fromisoformat(start_s), time.fromisoformat(end_s)
    zone = ZoneInfo(settings.timezone)
    local = now.astimezone(zone)
    t = local.time().replace(tzinfo=None)
    quiet = (start <= t < end) if start <= end else (t >= start or t < end)
    if not quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)


# ---- rendering and sending -------------------------------------------------------------


def render(event_type: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of this event's message in this language (English if none)."""
    try:
        tpl = _env.get_template(f"{language}/{event_type}.j2")
    except TemplateNotFound:
        tpl = _env.get_template(f"en/{event_type}.j2")
    title, _, body = tpl.render(**context).strip().partition("\n")
    return title.strip(), body.strip()


def _context(session: Session, ev: Event, settings: Settings) -> dict[str, Any]:
    zone = ZoneInfo(settings.timezone)
    c = session.get(Customer, ev.customer_id) if ev.customer_id else None
    ctx: dict[str, Any] = {"customer": c.username if c else "", "package": "", "expires": ""}
    for k, v in ev.body.items():
        if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == "T":
            v = datetime.fromisoformat(v).astimezone(zone).strftime("%Y-%m-%d")
        ctx[k] = "" if v is None else v
    ctx["expires"] = ctx.get("expires_at", "")
    return ctx


def url_for(settings: Settings, channel: str, contact: CustomerContact) -> str:
    return settings.reminder_urls[channel].format(
        email=quote(contact.email or "", safe="@"), phone=quote(contact.phone or "", safe="")
    )


def notify(url: str, title: str, body: str) -> bool:
    a = apprise.Apprise()
    if not a.add(url):
        raise ValueError("not an apprise URL this installation supports")
    return bool(a.notify(body=body, title=title))


def send_due(factory: sessionmaker[Session], settings: Settings, limit: int = 50) -> int:
    """Send the reminders due now (none in quiet hours); returns how many were sent."""
    now = utcnow()
    if not settings.reminder_urls or quiet_until(settings, now) is not None:
        return 0
    with reading(factory) as s:
        due = s.scalar(
            select(ReminderMessage.id)
            .where(ReminderMessage.status == "pending", ReminderMessage.next_attempt_at <= now)
            .limit(1)
        )
    if due is None:
        return 0
    me = instances.name()
    with transaction(factory) as s:
        q = (
            select(ReminderMessage.id)
            .where(ReminderMessage.status == "pending", ReminderMessage.next_attempt_at <= now)
            .order_by(ReminderMessage.id)
            .limit(limit)
        )
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids = list(s.scalars(q))
        s.execute(
            update(ReminderMessage).where(ReminderMessage.id.in_(ids))
            .values(status="running", claimed_by=me,
                    next_attempt_at=now + timedelta(minutes=10))
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    sent = 0
    for i in ids:
        sent += _send_one(factory, settings, i)
    return sent


def _send_one(factory: sessionmaker[Session], settings: Settings, message_id: int) -> int:
    with reading(factory) as s:
        m = s.get(ReminderMessage, message_id)
        assert m is not None
        ev = s.get(Event, m.event_id)
        contact = s.get(CustomerContact, m.customer_id)
        error, text, url, title = None, None, None, ""
        usable = contact is not None and not contact.opt_out
        if ev is None or contact is None or not usable or m.channel not in settings.reminder_urls:
            error = "opted out" if contact is not None and contact.opt_out else "no channel"
        else:
            title, body = render(m.event_type, m.language, _context(s, ev, settings))
            text = f"{title}\n{body}"
            url = url_for(settings, m.channel, contact)
    ok = False
    if url is not None and text is not None:
        try:
            ok = notify(url, title, text.partition("\n")[2])
            error = None if ok else f"{m.channel}: the gateway refused or did not answer"
        except Exception as exc:  # noqa: BLE001 - a gateway's failure is this message's
            error = f"{type(exc).__name__}: {exc}"[:500]
    with transaction(factory) as s:
        m = s.get(ReminderMessage, message_id)
        assert m is not None
        m.attempts += 1
        m.claimed_by = None
        m.text = text
        if ok:
            m.status, m.sent_at, m.last_error = "sent", utcnow(), None
        elif url is None:
            m.status, m.last_error = "skipped", error
        elif m.attempts >= MAX_ATTEMPTS:
            m.status, m.last_error = "failed", error
        else:
            m.status, m.last_error = "pending", error
            m.next_attempt_at = utcnow() + timedelta(seconds=60 * 2 ** m.attempts)
    return int(ok)


# ---- customer.expiring -----------------------------------------------------------------


def warn_expiring(factory: sessionmaker[Session], settings: Settings,
                  now: datetime | None = None) -> int:  # fmt: skip
    """``customer.expiring`` for every active customer whose package ends within
    ``reminder_days_ahead`` days: once per customer and expiry (the event's key)."""
    now = now or utcnow()
    ahead = now + timedelta(days=settings.reminder_days_ahead)
    with transaction(factory) as s:
        due = list(s.scalars(
            select(Customer).where(
                Customer.status == CustomerStatus.active,
                Customer.expires_at.is_not(None),
                Customer.expires_at > now,
                Customer.expires_at <= ahead,
            )
        ))  # fmt: skip
        rows = []
        for c in due:
            assert c.expires_at is not None
            key = f"customer.expiring:{c.id}:{c.expires_at.isoformat()}"
            rows.append(
                events.row("customer.expiring", events.customer_body(c) | {
                    "days_left": max(0, (c.expires_at - now).days)},
                    reseller_id=c.reseller_id, customer_id=c.id, key=key)
            )  # fmt: skip
        if not rows:
            return 0
        seen = set(s.scalars(select(Event.key).where(Event.key.in_([r["key"] for r in rows]))))
        rows = [r for r in rows if r["key"] not in seen]
        events.emit_many(s, rows)
        return len(rows)
