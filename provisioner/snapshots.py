"""Frozen snapshots of registry rows: the only input the pure mapping sees."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from provisioner.rates import RateLimit


@dataclass(frozen=True)
class MasterSpec:
    id: int
    name: str
    customer_type: str
    billing: str
    rate: RateLimit
    profile_name: str
    pool_name: str | None = None
    pool_ranges: str | None = None
    local_address: str | None = None
    volume_cap: int | None = None
    fup_threshold: int | None = None  # bytes per billing cycle before the reduced rate
    fup_rate: RateLimit | None = None  # the reduced rate
    router_profile: str | None = None  # a router profile shared with other masters
    shared_users: int = 1
    duration_days: int = 30
    ipv6_pool_name: str | None = None
    ipv6_prefix: str | None = None  # the pool: 2001:db8:100::/40
    ipv6_prefix_length: int | None = None  # each customer's: 56
    framed_ipv6_prefix: bool = False

    @property
    def profile(self) -> str:
        """The PPP/hotspot profile on the router (and Mikrotik-Group): shared with other
        master packages, or its own. ``profile_name`` stays its RADIUS group."""
        return self.router_profile or self.profile_name


@dataclass(frozen=True)
class RouterSpec:
    id: int
    name: str
    host: str
    customer_types: frozenset[str]
    mode: str  # "radius" | "local"
    radius_secret: str = ""
    coa_port: int = 3799

    def serves(self, customer_type: str) -> bool:
        return customer_type in self.customer_types


@dataclass(frozen=True)
class CustomerSpec:
    id: int
    username: str
    password: str
    customer_type: str
    status: str  # active | expired | suspended | new
    master_id: int | None = None
    router_id: int | None = None
    static_ip: str | None = None
    mac_address: str | None = None
    throttled: bool = False  # over its package's fair usage threshold this cycle
    expires_at: datetime | None = None
    delegated_prefix: str | None = None  # its IPv6 prefix (``ipv6_prefixes``)

    @property
    def cut_off(self) -> bool:
        """Expired, suspended or never activated: no service."""
        return self.status != "active"

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> CustomerSpec:
        """One from its fields' values in declaration order (``customer_specs`` makes a
        router's thousands on every sync). The same object ``__init__`` makes, at half the
        cost: a frozen dataclass's ``__init__`` sets each field through
        ``object.__setattr__``."""
        spec = object.__new__(cls)
        spec.__dict__.update(zip(_CUSTOMER_FIELDS, row, strict=True))
        return spec


_CUSTOMER_FIELDS = tuple(f.name for f in fields(CustomerSpec))


@dataclass(frozen=True)
class MappingOptions:
    expired_group: str = "provisioner-expired"
    expired_address_list: str = "provisioner-expired"
    interim_interval: int = 300  # seconds; 0: none (usage only at logout)
