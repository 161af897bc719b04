"""Panels benchmark: time to first byte of the dashboard and the online sessions page on
a big registry (issue 25: 100,000 customers, 2,000,000 radacct rows, target 300 ms).

    python -m bench.panels                      # 100,000 customers, 2,000,000 radacct rows
    python -m bench.panels --quick              # 5,000 customers, 100,000 radacct rows
    python -m bench.panels --customers N --radacct M --repeat 7

PostgreSQL only (the seeding is ``generate_series``): a database ``bench_panels_<pid>``
is made on 127.0.0.1:5432 and dropped at the end (``--db`` names another server).

Seeded set-based: one router, a package, 10 resellers; N customers (70 % active, 10 %
suspended, the rest expired; expiries spread over ±60 days; each to a reseller); 30,000
activations over the last 30 days; an invoice per customer (a third open); M radacct
rows over the last 60 days, of which one for every third customer is still open. The app (``create_app``) is served by uvicorn in this
process; an admin and a reseller log in through the login form, then each page is fetched
``--repeat`` times (after one warm-up) and the time to the first byte of the body is
taken; the median is reported beside the master packages page's (one row: the
baseline of the same run), with the ratio. Invariants: every page answers 200, and the
dashboard's online count equals the open sessions seeded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from provisioner import registry, secrets, users
from provisioner.api import create_app
from provisioner.config import Settings
from provisioner.context import open_context
from provisioner.db import transaction
from provisioner.models import Customer

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ACTOR = "bench"
ADMIN = ("bench-admin", "bench-admin-pass")
DESK = ("bench-desk", "bench-desk-pass")


def say(msg: str) -> None:
    print(msg, flush=True)


def seed(url: str, n: int, m: int) -> int:
    """The registry, set-based. Returns the number of open sessions seeded."""
    ctx = open_context(Settings(database_url=url))
    with transaction(ctx.factory) as s:
        registry.create_router(
            s, ACTOR,
            {"name": "r1", "host": "127.3.0.1", "api_port": 1, "username": "admin",
             "password": "bench-router-pass", "radius_secret": "bench-secret",
             "customer_types": "pppoe", "mode": "radius"},
        )  # fmt: skip
        registry.create_master_package(
            s, ACTOR,
            {"name": "home", "customer_type": "pppoe", "rate_down": "20M", "rate_up": "10M"},
        )  # fmt: skip
        registry.create_package(
            s, ACTOR,
            {"name": "home-20", "master_package": "home", "customer_price": "500",
             "operator_price": "400", "visibility": "private"},
        )  # fmt: skip
        for i in range(10):
            registry.create_reseller(s, ACTOR, {"name": f"res{i}"})
            registry.assign_package(s, ACTOR, f"res{i}", "home-20")
        users.create_user(s, ACTOR, ADMIN[0], role="admin", password=ADMIN[1])
        users.create_user(s, ACTOR, DESK[0], role="reseller", password=DESK[1], reseller="res0")
    password = secrets.encrypt("bench-customer-pass")  # one ciphertext for all: never read
    with ctx.engine.begin() as c:
        ids = c.execute(text("SELECT min(id) FROM resellers")).scalar_one()
        c.execute(
            text(
                "INSERT INTO customers (username, password, customer_type, router_id, package_id,"
                " reseller_id, status, suspended_reason, expires_at, billing_day, created_at)"
                " SELECT 'c' || lpad(i::text, 7, '0'), :pw, 'pppoe',"
                " (SELECT id FROM routers), (SELECT id FROM packages), :r0 + i % 10,"
                " CASE WHEN i % 10 < 7 THEN 'active' WHEN i % 10 = 7 THEN 'suspended'"
                " ELSE 'expired' END,"
                " CASE WHEN i % 10 = 7 THEN 'unpaid' END,"
                " now() + ((i % 120) - 60) * interval '1 day', 1, now()"
                " FROM generate_series(1, :n) AS i"
            ),
            {"pw": password, "r0": ids, "n": n},
        )
        c.execute(
            text(
                "INSERT INTO activations (idempotency_key, customer_id, package_id, payer, price,"
                " requested_by, starts_at, expires_at, status, created_at)"
                " SELECT 'b' || i, (SELECT min(id) FROM customers) + i % :n,"
                " (SELECT id FROM packages), 'admin', 50000, 'bench',"
                " now() - (i % 30) * interval '1 day', now() + interval '30 days', 'applied',"
                " now() - (i % 30) * interval '1 day' - (i % 86400) * interval '1 second'"
                " FROM generate_series(1, 30000) AS i"
            ),
            {"n": n},
        )
        # One invoice per customer: this month's, a third of them open.
        c.execute(
            text(
                "INSERT INTO invoices (customer_id, package_id, amount, period_start, period_end,"
                " due_at, status, paid_at, created_at)"
                " SELECT id, package_id, 50000, date_trunc('month', now()) - (id % 3) * interval"
                " '1 month', date_trunc('month', now()) + interval '1 month', date_trunc('month',"
                " now()), CASE WHEN id % 3 = 0 THEN 'open' ELSE 'paid' END,"
                " CASE WHEN id % 3 = 0 THEN NULL ELSE now() END, now() FROM customers"
            )
        )
        # Closed sessions over 60 days; then one open session for every 25th customer.
        open_n = n // 3
        c.execute(
            text(
                "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress,"
                " acctstarttime, acctupdatetime, acctstoptime, acctinputoctets,"
                " acctoutputoctets, framedipaddress, acctterminatecause)"
                " SELECT 's' || i, 'u' || i, 'c' || lpad((1 + i % :n)::text, 7, '0'),"
                " '127.3.0.1', now() - (i::bigint * 5184000 / :m) * interval '1 second',"
                " now() - (i::bigint * 5184000 / :m) * interval '1 second' + interval '2 hours',"
                " now() - (i::bigint * 5184000 / :m) * interval '1 second' + interval '3 hours',"
                " i % 100000000, (i * 7) % 1000000000, '10.0.0.1', 'User-Request'"
                " FROM generate_series(1, :m) AS i"
            ),
            {"n": n, "m": max(m - open_n, 0)},
        )
        c.execute(
            text(
                "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress,"
                " acctstarttime, acctupdatetime, acctinputoctets, acctoutputoctets,"
                " framedipaddress)"
                " SELECT 'o' || i, 'uo' || i, 'c' || lpad((i * 3)::text, 7, '0'), '127.3.0.1',"
                " now() - (i % 86400) * interval '1 second', now(), i * 1000, i * 9000,"
                " ('10.1.0.0'::inet + i)"
                " FROM generate_series(1, :o) AS i"
            ),
            {"o": open_n},
        )
    with ctx.engine.connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM (ANALYZE)"))
    with transaction(ctx.factory) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == n
    ctx.close()
    return open_n


class Served:
    def __init__(self, url: str) -> None:
        self.ctx = open_context(Settings(database_url=url))
        config = uvicorn.Config(
            create_app(self.ctx), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        sock = config.bind_socket()
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.ctx.close()


def logged_in(base: str, who: tuple[str, str]) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    form = client.get("/ui/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token, "no CSRF token on the login page"
    r = client.post(
        "/ui/login", data={"csrf": token.group(1), "username": who[0], "password": who[1]}
    )
    assert r.status_code in (200, 303), r.status_code
    return client


def ttfb(client: httpx.Client, path: str, repeat: int) -> tuple[float, str]:
    """Median seconds to the first byte of the body (after one warm-up), and the body."""
    body = ""
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        with client.stream("GET", path) as r:
            chunks = r.iter_bytes()
            first = next(chunks, b"")
            took = time.perf_counter() - t0
            assert r.status_code == 200, (path, r.status_code)
            body = (first + b"".join(chunks)).decode()
        if i:
            times.append(took)
    return statistics.median(times), body


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--radacct", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--db", default=PG_DEFAULT)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.customers, opts.radacct = 5_000, 100_000
    given = make_url(opts.db)
    name = f"bench_panels_{os.getpid()}"
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = given.set(database=name).render_as_string(hide_password=False)
    failed: list[str] = []
    try:
        t0 = time.perf_counter()
        open_n = seed(url, opts.customers, opts.radacct)
        say(f"seeded {opts.customers:,} customers, {opts.radacct:,} radacct rows "
            f"({open_n:,} open) in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        served = Served(url)
        try:
            a = logged_in(served.base, ADMIN)
            d = logged_in(served.base, DESK)
            base_s, _ = ttfb(a, "/ui/masters", opts.repeat)
            figures: dict[str, Any] = {"baseline_masters_page_ms": round(base_s * 1000, 1)}
            for label, client, path in (
                ("admin_dashboard", a, "/ui/dashboard"),
                ("admin_sessions", a, "/ui/sessions"),
                ("admin_sessions_search", a, "/ui/sessions?q=c00012"),
                ("admin_invoices", a, "/ui/invoices"),
                ("reseller_dashboard", d, "/ui/desk/dashboard"),
                ("reseller_sessions", d, "/ui/desk/sessions"),
            ):
                took, body = ttfb(client, path, opts.repeat)
                figures[f"{label}_ms"] = round(took * 1000, 1)
                figures[f"{label}_ratio"] = round(took / base_s, 1)
                say(f"{label:24} {took * 1000:8.1f} ms  ({took / base_s:5.1f} x the masters page)")
                if label == "admin_dashboard":
                    found = re.search(r'id="dash-online"[^>]*>(\d+)<', body)
                    if not found or int(found.group(1)) != open_n:
                        failed.append(f"dashboard online {found and found.group(1)} != {open_n}")
        finally:
            served.stop()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    for f in failed:
        say(f"INVARIANT FAILED {f}")
    say(json.dumps({"when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "customers": opts.customers, "radacct": opts.radacct, **figures}))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
