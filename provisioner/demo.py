"""Demo data and a simulated router, so ``provisioner serve --demo`` shows the whole loop."""

from __future__ import annotations

import secrets as pysecrets
from datetime import timedelta

from sqlalchemy import select

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import registry, users
from provisioner.auth import create_token
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.mapping.menus import PPP_PROFILE
from provisioner.models import ApiToken, Router, WebUser, utcnow

DEMO_ROUTER = "demo-router"
ACTOR = "demo"
WEB_ADMIN = "admin"


def start_router() -> SimulatedRouter:
    """A RouterOS API simulator on loopback with a hand-made profile the daemon must keep."""
    sim = SimulatedRouter(username="admin", password="demo", identity="demo-router").start()
    sim.add_item(PPP_PROFILE, name="handmade-vip", rate_limit="50M/50M")
    return sim


def seed(ctx: Context, sim: SimulatedRouter) -> str | None:
    """Seed once (an empty registry); point the demo router at this run's simulator port.

    Returns a new admin token when it seeded, else None.
    """
    with transaction(ctx.factory) as s:
        existing = s.scalar(select(Router).where(Router.name == DEMO_ROUTER))
        if existing is not None:
            registry.update_router(s, ACTOR, DEMO_ROUTER, {"api_port": sim.port})
            return None
        registry.create_router(
            s,
            ACTOR,
            {
                "name": DEMO_ROUTER,
                "host": sim.host,
                "api_port": sim.port,
                "username": "admin",
                "password": "demo",
                "radius_secret": "demo-radius-secret",
                "customer_types": "pppoe,hotspot,static",
                "mode": "local",
            },
        )
        masters = [
            {"name": "home-10M", "customer_type": "pppoe", "billing": "monthly",
             "rate_down": "10M", "rate_up": "5M", "pool_name": "pool-home",
             "pool_ranges": "10.10.0.2-10.10.3.254", "local_address": "10.10.0.1"},
            {"name": "home-20M-burst", "customer_type": "pppoe", "billing": "monthly",
             "rate_down": "20M", "rate_up": "10M", "burst_down": "40M", "burst_up": "20M",
             "burst_threshold_down": "15M", "burst_threshold_up": "8M", "burst_time": "8",
             "pool_name": "pool-home", "pool_ranges": "10.10.0.2-10.10.3.254",
             "local_address": "10.10.0.1", "volume_cap": "500G"},
            {"name": "hotspot-day", "customer_type": "hotspot", "billing": "daily",
             "duration_days": 1, "rate_down": "5M", "rate_up": "2M", "pool_name": "pool-hs",
             "pool_ranges": "10.20.0.0/22", "volume_cap": "5G", "shared_users": 2},
            {"name": "biz-static-50M", "customer_type": "static", "billing": "monthly",
             "rate_down": "50M", "rate_up": "50M", "pool_name": "pool-biz",
             "pool_ranges": "10.30.0.2-10.30.0.62", "priority": 2, "min_down": "10M",
             "min_up": "10M"},
            {"name": "ftth-100M", "customer_type": "other", "billing": "monthly",
             "rate_down": "100M", "rate_up": "50M"},
        ]  # fmt: skip
        for m in masters:
            registry.create_master_package(s, ACTOR, m)
        packages = [
            ("Home 10 Mbps", "home-10M", "500", "400", "public"),
            ("Home 20 Mbps Turbo", "home-20M-burst", "800", "650", "public"),
            ("Hotspot Day Pass", "hotspot-day", "20", "15", "public"),
            ("Business 50 Mbps", "biz-static-50M", "5000", "4200", "private"),
            ("Fiber 100 Mbps", "ftth-100M", "1500", "1200", "private"),
        ]
        for name, master, cp, op, vis in packages:
            registry.create_package(
                s, ACTOR, {"name": name, "master_package": master, "customer_price": cp,
                           "operator_price": op, "visibility": vis},
            )  # fmt: skip
        registry.create_reseller(s, ACTOR, {"name": "Dhaka Net", "contact": "ops@dhaka.example"})
        registry.assign_package(s, ACTOR, "Dhaka Net", "Home 10 Mbps")
        registry.assign_package(s, ACTOR, "Dhaka Net", "Home 20 Mbps Turbo", "620")
        expires = utcnow() + timedelta(days=30)
        customers = [
            ("rahim", "pppoe", "Home 10 Mbps", "Dhaka Net"),
            ("karim", "pppoe", "Home 20 Mbps Turbo", "Dhaka Net"),
            ("guest1", "hotspot", "Hotspot Day Pass", None),
            ("acme-ltd", "static", "Business 50 Mbps", None),
        ]
        for username, ctype, package, reseller in customers:
            registry.create_customer(
                s, ACTOR,
                {"username": username, "password": f"{username}-pw", "customer_type": ctype,
                 "router": DEMO_ROUTER, "package": package, "reseller": reseller,
                 "status": "active", "expires_at": expires},
            )  # fmt: skip
        if s.scalar(select(ApiToken).where(ApiToken.role == "admin")) is None:
            return create_token(s, role="admin", name="demo")
    return None


def web_admin(ctx: Context) -> str | None:
    """An admin login for the web panels (``admin``) when there is no web user yet;
    returns its password, to be shown this once (only its hash is stored)."""
    with transaction(ctx.factory) as s:
        if s.scalar(select(WebUser.id).limit(1)) is not None:
            return None
        password = pysecrets.token_urlsafe(12)
        users.create_user(s, ACTOR, WEB_ADMIN, role="admin", password=password)
        return password
