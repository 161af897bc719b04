"""The HTTP API: authentication, a role-by-endpoint matrix, reseller/customer scoping,
service-layer errors passed through unchanged (and nothing written), no credentials out.

Every test runs the real app (``create_app``) on a fresh, migrated SQLite file, seeded
through the registry service layer. The read-only role matrix shares one seeded database
per module; tests that write get their own.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from provisioner import config, registry
from provisioner.api import create_app
from provisioner.auth import create_token
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.errors import ProvisionerError
from provisioner.models import AuditLog, Customer, MasterPackage, Package, Reseller, Router
from provisioner.radius_tables import radcheck

API = "/api/v1"
ROUTER_PASSWORD = "rtr-Pass-9f3c1"
RADIUS_SECRET = "rad-Secret-77ab2"
ROLES = ("admin", "reseller", "customer")


def unused_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    ctx: Context
    client: TestClient
    tokens: dict[str, str]

    def as_(self, role: str | None) -> dict[str, str]:
        """Headers for a role: admin, reseller (resA), resB, customer (cust-a), or none."""
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def call(self, method: str, path: str, role: str | None, body: Any = None) -> Any:
        return self.client.request(method, API + path, headers=self.as_(role), json=body)

    def count(self, model: Any) -> int:
        with transaction(self.ctx.factory) as s:
            return registry.count(s, model)


def seed(ctx: Context) -> dict[str, str]:
    """One master; a public, a private and two reseller packages; two resellers with a
    package and a customer each; one router on 127.0.0.1 with a port nobody listens on."""
    with transaction(ctx.factory) as s:
        registry.create_router(
            s,
            "seed",
            {
                "name": "r1",
                "host": "127.0.0.1",
                "api_port": unused_port(),
                "username": "admin",
                "password": ROUTER_PASSWORD,
                "radius_secret": RADIUS_SECRET,
                "customer_types": "pppoe,hotspot",
            },
        )
        registry.create_master_package(
            s,
            "seed",
            {
                "name": "m-home",
                "customer_type": "pppoe",
                "rate_down": "10M",
                "rate_up": "5M",
                "pool_name": "pool-home",
                "pool_ranges": "10.50.0.2-10.50.0.254",
            },
        )
        for name, visibility, customer_price, operator_price in (
            ("public-basic", "public", "500", "400"),
            ("private-pro", "private", "900", "700"),
            ("pkg-a", "private", "600", "450"),
            ("pkg-b", "private", "650", "500"),
        ):
            registry.create_package(
                s,
                "seed",
                {
                    "name": name,
                    "master_package": "m-home",
                    "customer_price": customer_price,
                    "operator_price": operator_price,
                    "visibility": visibility,
                },
            )
        for reseller, package, price in (("resA", "pkg-a", "350"), ("resB", "pkg-b", None)):
            registry.create_reseller(s, "seed", {"name": reseller})
            registry.assign_package(s, "seed", reseller, package, price)
        for username, reseller, package in (("cust-a", "resA", "pkg-a"), ("cust-b", "resB", "pkg-b")):
            registry.create_customer(
                s,
                "seed",
                {
                    "username": username,
                    "password": f"{username}-pw",
                    "customer_type": "pppoe",
                    "router": "r1",
                    "package": package,
                    "reseller": reseller,
                },
            )
        return {
            "admin": create_token(s, role="admin", name="tester"),
            "reseller": create_token(s, role="reseller", reseller="resA"),
            "resB": create_token(s, role="reseller", reseller="resB"),
            "customer": create_token(s, role="customer", customer="cust-a"),
        }


@contextmanager_fixture := None  # placeholder removed below
