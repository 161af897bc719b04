"""Monthly periods keep their billing day through short months; the migration that
brought the day in keeps existing data (SQLite and PostgreSQL)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from provisioner.activation import period
from provisioner.billing import add_month
from provisioner.db import alembic_config
from provisioner.models import Billing, Customer, CustomerStatus, MasterPackage, Package
from tests.support.databases import empty_database


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "day", "expected"),
    [
        (at(2027, 1, 31), 31, at(2027, 2, 28)),
        (at(2027, 2, 28), 31, at(2027, 3, 31)),  # back on its day, not stuck on the 28th
        (at(2028, 1, 31), 31, at(2028, 2, 29)),  # leap year
        (at(2027, 4, 30), 31, at(2027, 5, 31)),
        (at(2027, 12, 15), 15, at(2028, 1, 15)),
        (at(2027, 3, 10), None, at(2027, 4, 10)),
    ],
)
def test_add_month_keeps_the_billing_day(start: datetime, day: int | None, expected: datetime) -> None:
    assert add_month(start, day) == expected


def test_renewals_from_jan_31_land_on_the_last_day_or_the_31st() -> None:
    m = MasterPackage(id=1, billing=Billing.monthly, duration_days=30)
    p = Package(id=7, master_package=m)
    c = Customer(id=1, status=CustomerStatus.new, package_id=None, billing_day=None)
    ends = []
    now = at(2027, 1, 31)
    for _ in range(4):
        start, end, day = period(c, p, now)
        c.package_id, c.status, c.expires_at, c.billing_day = p.id, CustomerStatus.active, end, day
        ends.append(end.date().isoformat())
        now = at(end.year, end.month, max(1, end.day - 3))  # renewed a few days early
    assert ends == ["2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]


def test_another_package_starts_now_and_takes_todays_day() -> None:
    m = MasterPackage(id=1, billing=Billing.monthly, duration_days=30)
    old, new = Package(id=1, master_package=m), Package(id=2, master_package=m)
    c = Customer(id=1, status=CustomerStatus.active, package_id=old.id,
                 expires_at=at(2027, 3, 31), billing_day=31)  # fmt: skip
    start, end, day = period(c, new, at(2027, 3, 12))
    assert (start, end, day) == (at(2027, 3, 12), at(2027, 4, 12), 12)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_from_0001_keeps_customers_and_what_points_at_them(
    backend: str, tmp_path: Path
) -> None:
    with empty_database(backend, tmp_path, "mig") as url:
        command.upgrade(alembic_config(url), "0001")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO customers (id, username, password, customer_type, status, created_at) "
                "VALUES (1, 'alice', 'x', 'pppoe', 'active', CURRENT_TIMESTAMP)"
            ))  # fmt: skip
            conn.execute(text(
                "INSERT INTO static_addresses (address, customer_id, pool_name) "
                "VALUES ('10.0.0.9', 1, 'p')"
            ))  # fmt: skip
        engine.dispose()
        # Migrations run on the daemon's engine (migrations/env.py): on SQLite foreign keys
        # are on, so a table recreated under them would cascade into static_addresses.
        command.upgrade(alembic_config(url), "heads")
        engine = create_engine(url)
        cols = {c["name"] for c in inspect(engine).get_columns("customers")}
        with engine.connect() as conn:
            rows: Any = conn.execute(text("SELECT username, billing_day FROM customers")).all()
            kept = conn.execute(text("SELECT count(*) FROM static_addresses")).scalar()
        engine.dispose()
        assert "billing_day" in cols and [tuple(r) for r in rows] == [("alice", None)]
        assert kept == 1


def test_an_activation_records_the_billing_day_and_an_extension_keeps_it(
    any_ctx: Any,
) -> None:
    from provisioner.activation import ActivationRequest, run_activation
    from provisioner.auth import Principal
    from provisioner.db import transaction
    from provisioner.models import utcnow
    from tests.support.factories import Factory

    make = Factory(any_ctx)
    router = make.router(None, mode="radius")
    pkg = make.package(make.master(name="home", billing="monthly"))
    make.customer(None, router, username="alice", status="new")
    admin = Principal("admin", name="test")
    run_activation(any_ctx.factory, admin, ActivationRequest("alice", pkg, "k1"))
    # As if it had started on a 31st: its paid time ends on a short month's last day.
    year = next(y for y in range(utcnow().year + 1, 3000) if not calendar.isleap(y))
    feb = datetime(year, 2, 28, 10, tzinfo=UTC)
    with transaction(any_ctx.factory) as s:
        c = s.query(Customer).one()
        c.billing_day, c.expires_at = 31, feb
    run_activation(any_ctx.factory, admin, ActivationRequest("alice", pkg, "k2"))
    with transaction(any_ctx.factory) as s:
        c = s.query(Customer).one()
        assert c.billing_day == 31  # Feb 28 is its billing day's place that month
        assert c.expires_at == feb.replace(month=3, day=31)
        # An expiry moved off the billing day (an operator's edit): the next period is a
        # whole month from it, and the billing day follows (README, "Invoices").
        c.expires_at = feb.replace(month=4, day=10)
    run_activation(any_ctx.factory, admin, ActivationRequest("alice", pkg, "k3"))
    with transaction(any_ctx.factory) as s:
        c = s.query(Customer).one()
        assert (c.billing_day, c.expires_at) == (10, feb.replace(month=5, day=10))
