"""The one format for money, times and names in the panels (``web.formats``), the
server-side charts (``web.charts``) and usage per day (``fup.spread``): pure tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from provisioner.config import Settings
from provisioner.errors import ValidationError
from provisioner.fup import Accounted, spread
from provisioner.web import charts, formats

T0 = datetime(2027, 1, 6, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "kw", "text"),
    [
        ("600", {}, "600.00 BDT"),
        (Decimal("1234567.5"), {}, "1,234,567.50 BDT"),
        ("-350.00", {}, "-350.00 BDT"),
        (None, {}, "—"),
        ("1234.5", {"money_thousands": ".", "money_decimal_mark": ","}, "1.234,50 BDT"),
        ("1234.5", {"currency": "৳", "currency_before": True, "money_decimals": 0}, "৳ 1,234"),
        ("1234.5", {"money_thousands": ""}, "1234.50 BDT"),
    ],
)
def test_money_is_written_one_way(value: Any, kw: dict[str, Any], text: str) -> None:
    assert formats.money_text(value, Settings(**kw)) == text


@pytest.mark.parametrize(
    ("value", "zone", "text"),
    [
        ("2027-01-06T10:23:00+00:00", "Asia/Dhaka", "2027-01-06 16:23"),
        ("2027-01-06T10:23:00", "Asia/Dhaka", "2027-01-06 16:23"),  # naive: UTC
        (datetime(2027, 7, 1, 12, 0, tzinfo=UTC), "Europe/London", "2027-07-01 13:00"),
        ("2027-01-06T10:23:00.123456+00:00", "UTC", "2027-01-06 10:23"),
        (None, "UTC", ""),
    ],
)
def test_times_show_in_the_zone(value: Any, zone: str, text: str) -> None:
    assert formats.when_text(value, zone) == text


def test_a_date_input_is_read_in_the_zone_and_stored_utc() -> None:
    stored = "2027-01-06T10:23:45+00:00"
    assert formats.local_input(stored, "Asia/Dhaka") == "2027-01-06T16:23"
    # Sent back unchanged: the stored time, seconds and all.
    assert formats.utc_of_local("2027-01-06T16:23", "Asia/Dhaka", "x", current=stored) == stored
    assert (
        formats.utc_of_local("2027-02-01T05:00", "Asia/Dhaka", "x") == "2027-01-31T23:00:00+00:00"
    )
    assert formats.utc_of_local("", "Asia/Dhaka", "x") == ""
    with pytest.raises(ValidationError) as refused:
        formats.utc_of_local("someday", "UTC", "expires_at")
    assert refused.value.field == "expires_at"


def test_an_unknown_zone_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Settings(timezone="Mars/Olympus")


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        ("reseller:1", "resA (reseller)"),
        ("customer:7", "walkin"),
        ("customer:99", "customer #99 (removed)"),
        ("admin:root", "root (admin)"),
        ("admin:cli", "CLI"),
        ("cli", "CLI"),
        ("admin", "admin"),
        ("admin:api", "admin"),
        ("system:invoices", "system:invoices"),
        (None, "—"),
    ],
)
def test_payers_and_actors_by_name(ref: str | None, text: str) -> None:
    names = {"reseller:1": "resA", "customer:7": "walkin"}
    assert formats.actor_text(ref, names) == text


def test_a_chart_is_an_image_with_a_name_and_its_figures_as_a_table() -> None:
    svg = str(charts.bars([("01-05", 2), ("01-06", 5)], title="Activations <per day>"))
    assert 'role="img"' in svg and "<title" in svg and "Activations &lt;per day&gt;" in svg
    assert svg.count("<rect") == 2
    assert "<td>01-06</td><td>5</td>" in svg
    assert "highest 5, total 7" in svg
    empty = str(charts.bars([], title="Nothing"))
    assert "no data" in empty and "<rect" not in empty


def test_usage_per_day_spreads_each_session_over_its_time() -> None:
    days = [(T0 + timedelta(days=i), T0 + timedelta(days=i + 1)) for i in range(3)]
    rows = [
        # 12 h on day 0, 12 h on day 1: half each.
        Accounted(T0 + timedelta(hours=12), T0 + timedelta(hours=36), 1000),
        # A session seen only at its start counts on that day.
        Accounted(T0 + timedelta(days=2, hours=1), None, 70),
        # Before the first window: nothing of it.
        Accounted(T0 - timedelta(days=3), T0 - timedelta(days=2), 5000),
    ]
    assert spread(rows, days) == [500, 500, 70]
