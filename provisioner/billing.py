"""Billing periods: pure date arithmetic, no session and no clock (``now`` is passed in)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta


def add_month(d: datetime, day: int | None = None) -> datetime:
    """A month after ``d``, on ``day`` (default ``d``'s) or the month's last day if shorter.

    Keeping the day apart from ``d`` keeps renewals on it: Jan 31 → Feb 28 → Mar 31.
    """
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return d.replace(
        year=year, month=month, day=min(day or d.day, calendar.monthrange(year, month)[1])
    )


def period(
    *,
    billing: str,
    duration_days: int,
    now: datetime,
    current_expiry: datetime | None,
    extend: bool,
    billing_day: int | None,
) -> tuple[datetime, datetime, int | None]:
    """(start, end, billing day) of a purchase.

    ``extend``: the customer is active on the same package until ``current_expiry``, so
    the new period starts there. Daily: N days from the start. Monthly: to the next
    billing date, keeping the day of the month the subscription began; another package
    starts now on today's day.
    """
    start = current_expiry if extend and current_expiry else now
    if billing == "daily":
        return start, start + timedelta(days=duration_days), billing_day
    end, day = month_from(start, billing_day if extend else None)
    return start, end, day


def days_in_month(d: datetime) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def month_from(start: datetime, billing_day: int | None) -> tuple[datetime, int]:
    """(end, billing day) of a monthly period from ``start``. A start off the billing day
    (an expiry an operator moved, a grace that ended) moves the billing day to the
    start's: every period is a whole month at the whole price, never a short one charged
    in full (README, "Invoices")."""
    day = billing_day or start.day
    if start.day != min(day, days_in_month(start)):
        day = start.day
    return add_month(start, day), day
