"""Snapshots made in bulk are the snapshots ``__init__`` makes."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime

import pytest

from provisioner.snapshots import CustomerSpec


def test_customer_spec_of_row_is_the_constructors() -> None:
    values = {
        "id": 7, "username": "alice", "password": "s3cret", "customer_type": "hotspot",
        "status": "expired", "master_id": 3, "router_id": 4, "static_ip": "10.0.0.9",
        "mac_address": "AA:BB:CC:DD:EE:FF", "throttled": True,
        "expires_at": datetime(2026, 1, 2, tzinfo=UTC), "delegated_prefix": "2001:db8::/56",
    }  # fmt: skip
    assert set(values) == {f.name for f in fields(CustomerSpec)}  # every field, each distinct
    made = CustomerSpec.of_row([values[f.name] for f in fields(CustomerSpec)])
    built = CustomerSpec(**values)
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert made.cut_off
    with pytest.raises(FrozenInstanceError):
        made.status = "active"  # type: ignore[misc]


def test_customer_spec_of_row_refuses_a_short_row() -> None:
    with pytest.raises(ValueError):
        CustomerSpec.of_row([1, "alice"])
