"""Reminders to customers through apprise: email to a real SMTP server (aiosmtpd) in the
customer's language, SMS through a local HTTP gateway (apprise's json:// URL), opt-out,
quiet hours in the ISP's time zone, one message per event and customer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from provisioner import reminders, webhooks
from provisioner.config import Settings
from provisioner.context import Context
from provisioner.db import reading, transaction
from provisioner.models import Customer, CustomerContact, Event, ReminderMessage, utcnow
from tests.support.factories import Factory
from tests.support.gateways import SmsGateway, Smtp


@pytest.fixture
def channels() -> Iterator[tuple[Smtp, SmsGateway]]:
    smtp, sms = Smtp(), SmsGateway()
    yield smtp, sms
    smtp.close()
    sms.close()


def customers(ctx: Context, contacts: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Active Other customers whose package ends in two days, with these contacts."""
    make = Factory(ctx)
    pkg = make.package(make.master(customer_type="other", name="fibre"), name="Fibre 20")
    ends = (utcnow() + timedelta(days=2)).isoformat()
    ids = {}
    for name, contact in contacts.items():
        make.customer(pkg, None, customer_type="other", username=name, expires_at=ends)
        with transaction(ctx.factory) as s:
            cid = s.scalar(select(Customer.id).where(Customer.username == name))
            if contact:
                s.add(CustomerContact(customer_id=cid, **contact))
            ids[name] = cid
    return ids


def settings_for(smtp: Smtp, sms: SmsGateway, **kw: Any) -> dict[str, Any]:
    return {"reminder_urls": {"email": smtp.url(), "sms": sms.url()},
            "reminder_quiet_hours": "", "timezone": "Asia/Dhaka", **kw}  # fmt: skip


def test_email_in_the_customers_language_sms_opt_out_and_one_per_event(
    ctx_factory: Any, backend: str, channels: tuple[Smtp, SmsGateway]
) -> None:
    smtp, sms = channels
    ctx = ctx_factory(backend, **settings_for(smtp, sms))
    ids = customers(ctx, {
        "rahim": {"email": "rahim@example.net", "language": "bn"},
        "karim": {"phone": "+8801711000000"},
        "quiet": {"email": "quiet@example.net", "opt_out": True},
        "nobody": {},
    })  # fmt: skip
    assert reminders.warn_expiring(ctx.factory, ctx.settings) == 4
    assert reminders.warn_expiring(ctx.factory, ctx.settings) == 0, "once per expiry"
    webhooks.drain(ctx.factory, ctx.settings)
    assert len(smtp.mails) == 1
    to, subject, body = smtp.mails[0]
    assert to == ["rahim@example.net"]
    assert "শেষ হবে" in subject and "rahim" in body and "Fibre 20" in body  # Bengali
    local_day = (utcnow() + timedelta(days=2)).astimezone(ZoneInfo("Asia/Dhaka")).date()
    assert local_day.isoformat() in subject
    assert len(sms.posts) == 1
    assert sms.posts[0]["to"] == "+8801711000000"
    assert "karim" in sms.posts[0]["message"] and "ends on" in sms.posts[0]["message"]
    with reading(ctx.factory) as s:
        got = {m.customer_id: (m.status, m.channel, m.last_error)
               for m in s.scalars(select(ReminderMessage))}  # fmt: skip
    assert got == {
        ids["rahim"]: ("sent", "email", None),
        ids["karim"]: ("sent", "sms", None),
        ids["quiet"]: ("skipped", None, "opted out"),
        ids["nobody"]: ("skipped", None, "no contact"),
    }
    webhooks.drain(ctx.factory, ctx.settings)
    assert len(smtp.mails) == 1 and len(sms.posts) == 1, "nothing twice"
    with transaction(ctx.factory) as s:  # the rule itself: one per event and customer
        m = s.scalars(select(ReminderMessage)).first()
        assert m is not None
        s.add(ReminderMessage(event_id=m.event_id, customer_id=m.customer_id,
                              event_type=m.event_type))  # fmt: skip
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()


def test_quiet_hours_hold_a_reminder_until_they_end(
    ctx_factory: Any, channels: tuple[Smtp, SmsGateway]
) -> None:
    smtp, sms = channels
    hour = datetime.now(ZoneInfo("Asia/Dhaka")).hour
    quiet = f"{hour:02d}:00-{(hour + 2) % 24:02d}:00"
    ctx = ctx_factory("sqlite", **settings_for(smtp, sms, reminder_quiet_hours=quiet))
    customers(ctx, {"rahim": {"email": "rahim@example.net"}})
    reminders.warn_expiring(ctx.factory, ctx.settings)
    webhooks.drain(ctx.factory, ctx.settings)
    assert smtp.mails == []
    with reading(ctx.factory) as s:
        assert s.scalars(select(ReminderMessage.status)).one() == "pending"
    ctx.settings.reminder_quiet_hours = ""  # the hours are over
    webhooks.drain(ctx.factory, ctx.settings)
    assert len(smtp.mails) == 1 and "ends" in smtp.mails[0][1]


@pytest.mark.parametrize(("utc", "until"), [
    ("2026-12-06T16:00:00", "2026-12-07T02:00:00"),  # 22:00 in Dhaka: till 08:00
    ("2026-12-06T01:59:00", "2026-12-06T02:00:00"),  # 07:59
    ("2026-12-06T02:00:00", None),  # 08:00: over
    ("2026-12-06T14:59:00", None),  # 20:59
])  # fmt: skip
def test_quiet_hours_are_the_local_time_zones(utc: str, until: str | None) -> None:
    s = Settings(timezone="Asia/Dhaka", reminder_quiet_hours="21:00-08:00")
    got = reminders.quiet_until(s, datetime.fromisoformat(utc).replace(tzinfo=UTC))
    assert got == (datetime.fromisoformat(until).replace(tzinfo=UTC) if until else None)


def test_a_throttled_customer_gets_the_fair_usage_reminder_in_english_by_default(
    ctx_factory: Any, channels: tuple[Smtp, SmsGateway]
) -> None:
    smtp, sms = channels
    ctx = ctx_factory("sqlite", **settings_for(smtp, sms))
    customers(ctx, {"rahim": {"email": "rahim@example.net"}})
    from provisioner import effects

    with transaction(ctx.factory) as s:
        c = s.scalars(select(Customer)).one()
        before = effects.customer_state(c)
        c.throttled_until = utcnow() + timedelta(days=10)
        s.flush()
        effects.customers_changed(s, [(before, effects.customer_state(c))])
    with reading(ctx.factory) as s:
        assert s.scalars(select(Event.type).where(Event.type.like("fup.%"))).all() == [
            "fup.throttled"]  # fmt: skip
    webhooks.drain(ctx.factory, ctx.settings)
    assert [m[1] for m in smtp.mails] == ["Fair usage: your speed is reduced"]
