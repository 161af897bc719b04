"""Activation benchmark: resellers activating packages through the HTTP API, concurrently.

    python -m bench.activations                 # full run: 3 x 2,000 customers, 32 clients
    python -m bench.activations --quick         # 3 x 200 customers, 8 clients, 10,000 rows
    python -m bench.activations --history 0 --no-mixed --pgbench-seconds 0   # the empty run only
    python -m bench.activations --db sqlite     # on a temporary SQLite file (no pgbench)
    python -m bench.activations --subresellers  # also the "sub" run: two levels, two debits
    python -m bench.activations --cases         # then chain3, ipv6, static (1,000 each)

Scenario (see bench/README.md): a fresh database is seeded through the service layer
(RADIUS-mode routers, one master package and one package, resellers with it assigned,
customers for every run spread over the resellers, tokens); the real app is served by
``bench.serve`` in a subprocess with ``--workers`` processes (default: one per CPU),
as ``provisioner serve`` serves it. After a warm-up run (two activations per client, and
at least the installed base, ``--base``: 1,000; reported but not compared), in one
invocation:

1. **empty**: the resellers are topped up through ``POST /topups``; as the baseline, the
   same clients send one authenticated read per customer (``GET /customers/{username}``:
   token check, the customer and its router, package and reseller); then every customer
   of the run is activated once through ``POST /activations`` from ``--clients``
   keep-alive connections (``bench.load``: asyncio and httptools, so the load generator
   takes little of the CPU it measures; a distinct idempotency key per activation), and
   10% of the keys are sent again (idempotent replays: 200, the first activation, nothing
   charged).
   With ``--subresellers``, every reseller has one prepaid sub-reseller given the package
   at the reseller's price + MARGIN, and the **sub** run follows: the same run on the
   subs' customers with the subs' tokens, each activation debiting the sub (PRICE +
   MARGIN) and its parent (PRICE) in one transaction, both topped up first; its figures
   and its ratio to the empty run are printed beside the one-level ones.
   The **paced** run (``--rate``, default 500/s, the goal's rate; 0: none) follows the
   empty one: its own customers activated at that rate from the same clients, latency
   counted from when each was due (``bench.load``), no baseline.
2. **pgbench**: PostgreSQL's own TPC-B-like transaction on the same server with the same
   number of clients (``bench/pgbench.py``), a scratch database made and dropped here.
3. **history**: ``--history`` prior ledger rows (top-ups and activation debits, over the
   past year) are inserted over the resellers' accounts by one SQL statement, each
   ``accounts.balance`` is set to its ledger sum, and the database is vacuumed and
   analysed; then the same run as 1 on new customers.
4. **mixed**: one reseller (the "hot" one) sends half of all activation requests, the
   others share the rest; p50/p99 are printed per reseller. **mixed_paced** (with a
   ``--rate``): the same split offered at that rate, every reseller's p99 held to the goal.
5. **cases** (``--cases``, off by default; ``--cases chain3,ipv6`` picks some): the
   activations that used to leave the express lane for the general path, each as its
   own closed-loop run like the empty one (same clients and workers, baseline, replays),
   on its own ``--case-customers`` customers (default 1000; ``--quick`` 200), seeded
   with the rest: **chain3**, every reseller has a sub (the package at PRICE + MARGIN)
   with a sub-sub under it (+ MARGIN again) whose token activates its own customers,
   each activation debiting all three; **ipv6**, a PPPoE master package with an IPv6
   pool (a /56 per customer from a /40), the activation delegating the prefix;
   **static**, static-IP customers (on RADIUS-mode routers of their own) without an
   address, a static master package with a /16 pool, the first activation allocating
   the address. Before each case, its installed base (``<case>_base``, ``--base``
   customers of its kind, reported but not compared): PostgreSQL keeps the plans it
   made for a table analysed nearly empty (a sequential scan of ``ipv6_prefixes`` at
   every activation, 6,000 rows later) until the next ANALYZE, and autovacuum, which a
   live database has, is off on the CI machines; a live database's tables have rows.
   After each case, its reference (``<case>_ref``): the common activation offered at the
   rate the case answered, as the comparison for the case's CPU per activation (which
   grows as a worker's rate falls, whatever it serves). Each prints activations/s, p50, p99 and server (and PostgreSQL) CPU per
   activation with its ratio to the empty run's; beside the invariants below, chain3's
   debits on each level (one per activation at that level's price), and each static
   (IPv6) customer's distinct address in the pool (prefix of the pool) and its RADIUS row.

The invariants are checked after every run, after its timing and never inside it:
balances exact to the cent (every operator, every level), ``accounts.balance`` = ledger
sum for every account (``ledger.check``), one activation per key and one debit per
operator on its path at that operator's price, no balance below its floor, replays free,
RADIUS rows in place. A failure prints ``INVARIANT FAILED ...``, stops the runs and
exits 1. The last line is one JSON object with every figure (the cases under ``cases``).

PostgreSQL (default): a database ``bench_act_<pid>`` is made on 127.0.0.1:5432 (through
the ``postgres`` database) and dropped at the end; ``--db postgresql+psycopg://...`` names
another server (its database is only used to create and drop ours, and pgbench's). SQLite:
``--db sqlite`` uses a temporary file; ``--db sqlite:///path`` a file that must not exist
yet.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import BigInteger, cast, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench import load
from bench.pgbench import Pgbench, describe, find_pgbench, percentile
from provisioner import ledger, registry
from provisioner.auth import create_token
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.models import (
    Account,
    Activation,
    Customer,
    CustomerStatus,
    Ipv6Prefix,
    LedgerEntry,
)
from provisioner.radius_tables import radcheck, radreply, radusergroup

ACTOR = "bench"
API = "/api/v1"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MASTER, PACKAGE, PROFILE = "bench-home", "bench-home-20m", "bench-home"
# A price with cents, so the balance check also checks exact decimal arithmetic.
PRICE = Decimal("399.99")
# --subresellers: what each sub-reseller pays its parent (the parent keeps MARGIN).
MARGIN = Decimal("25.00")
SUB_PRICE = PRICE + MARGIN
# --cases chain3: the sub-sub-reseller pays the sub its price + MARGIN again.
SUB_SUB_PRICE = SUB_PRICE + MARGIN
# --cases static: a static master package whose pool the first activation allocates from
# (a /16, far more addresses than customers, as a real pool is).
STATIC_MASTER, STATIC_PACKAGE, STATIC_PROFILE = "bench-static", "bench-static-20m", "bench-static"
STATIC_POOL = ipaddress.IPv4Network("10.64.0.0/16")
# --cases ipv6: a PPPoE master package delegating a /56 per customer from a /40.
V6_MASTER, V6_PACKAGE, V6_PROFILE = "bench-v6", "bench-v6-20m", "bench-v6"
V6_POOL, V6_PREFIX, V6_LENGTH = "bench-v6", ipaddress.IPv6Network("2001:db8:100::/40"), 56
# The cases, in the order they run, after every other run (static last: a failed run stops
# the runs, and concurrent first activations can race for one free address, a 409 on the
# unique customers.static_ip), and the package each buys with its RADIUS group; every
# other run buys PACKAGE (group PROFILE).
CASES = ("chain3", "ipv6", "static")
# --base: a run of each case's kind before it (its installed base), its customers' prefix.
BASE, BASE_PREFIX = "_base", {"chain3": "w3", "ipv6": "w6", "static": "wt"}
# After each case, the common activation offered at the rate the case answered: the
# reference for the case's CPU (a worker's CPU per activation grows as its rate falls).
REF, REF_PREFIX = "_ref", {"chain3": "r3", "ipv6": "r6", "static": "rt"}
CASE_PACKAGE = {"static": (STATIC_PACKAGE, STATIC_PROFILE), "ipv6": (V6_PACKAGE, V6_PROFILE)}
SPARE = 3  # activations' worth of balance left on each reseller after each run
ROUTERS = 4
REPLAY_FRACTION = 0.10
HISTORY_REF = "bench-history"
# GET /balance answers with every ledger row of the account: read only accounts this small.
BALANCE_READ_ROWS = 20_000
# The issue's goal, printed beside the figures (never asserted).
GOAL_PER_S, GOAL_P99_MS, GOAL_CLIENTS = 500, 50, 32
# Run name -> (username prefix, title). Customers are seeded for every run up front.
RUNS = {
    "warmup": ("bw", "warm-up, not compared"),
    "empty": ("be", "empty ledger"),
    "paced": ("bp", "{rate:g}/s offered from the same clients, whatever the answers"),
    # --paced-runs: paced2 ... paced9, each on its own customers (prefixes c2 ... c9)
    **{f"paced{k}": (f"c{k}", "{rate:g}/s offered again, on new customers") for k in range(2, 10)},
    "sub": ("bs", "sub-resellers: each activation debits the sub and its parent"),
    "history": ("bh", "with {n:,} prior ledger rows"),
    "mixed": ("bm", "one hot reseller sends half"),
    "mixed_paced": ("bx", "one hot reseller sends half, {rate:g}/s offered"),
    # --cases: each on its own customers, after every run above.
    "chain3": ("b3", "three levels: each activation debits the sub-sub-reseller, sub and reseller"),
    "static": ("bt", "static IP: the first activation allocates the address from the pool"),
    "ipv6": ("b6", "IPv6: the activation delegates a /56 from the master's pool"),
    # --base: each case's installed base, activated (and reported, not compared) before it.
    **{f"{c}{BASE}": (p, f"installed base of {c}, not compared") for c, p in BASE_PREFIX.items()},
    **{
        f"{c}{REF}": (p, f"the common activation at {c}'s rate, {{rate:g}}/s offered")
        for c, p in REF_PREFIX.items()
    },
}


def kind(run: str) -> str:
    """What a run's customers are and buy: a case's installed base is of its case."""
    return run.removesuffix(BASE)


def package_of(run: str) -> tuple[str, str]:
    """The package a run's activations buy, and its RADIUS group."""
    return CASE_PACKAGE.get(kind(run), (PACKAGE, PROFILE))


def say(msg: str) -> None:
    print(msg, flush=True)


# ---- options --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    db: str | None
    customers: int  # per run
    clients: int
    resellers: int
    workers: int
    keep_db: bool
    seed: int
    quick: bool
    history: int  # prior ledger rows before the history run; 0: no history run
    mixed: bool
    pgbench_seconds: int  # 0: no pgbench run
    pgbench_scale: int
    pgbench: str | None
    baseline: str  # "customer" | "balance"
    subresellers: bool = False  # a sub-reseller under every reseller, and the "sub" run
    rate: float = GOAL_PER_S  # the paced run's offered activations/s; 0: no paced run
    paced_runs: int = 1  # how many paced runs (the machine's speed varies between them)
    cases: tuple[str, ...] = ()  # --cases: the case runs, after every other run
    case_customers: int = 1000  # activations per case run
    base: int = 0  # --base: activations before the runs (the warm-up) and before each case

    def runs(self) -> list[str]:
        out = ["warmup", "empty"]
        if self.rate > 0:
            out.append("paced")
            out += [f"paced{k}" for k in range(2, self.paced_runs + 1)]
        if self.subresellers:
            out.append("sub")
        if self.history > 0:
            out.append("history")
        if self.mixed and self.resellers >= 2:
            out.append("mixed")
            if self.rate > 0:
                out.append("mixed_paced")
        for c in self.cases:
            out += [f"{c}{BASE}"] if self.base else []
            out += [c, f"{c}{REF}"]
        return out

    def size(self, run: str) -> int:
        """A run's activations."""
        if run == "warmup":
            return warmup_size(self)
        if run.endswith(BASE):
            return self.base
        return self.case_customers if run in CASES or run.endswith(REF) else self.customers


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.activations",
        description="Concurrent activations through the HTTP API (empty ledger, with prior "
        "ledger rows, one hot reseller) beside a GET baseline and pgbench.",
    )
    p.add_argument(
        "--db",
        default=None,
        help="default: a fresh PostgreSQL database on 127.0.0.1:5432 (dropped afterwards); "
        "'sqlite' for a temporary SQLite file, or a sqlite:/// or postgresql URL",
    )
    p.add_argument("--customers", type=int, default=None, help="activations per run (default 2000)")
    p.add_argument("--clients", type=int, default=None, help="concurrent clients (default 32)")
    p.add_argument("--resellers", type=int, default=4, help="resellers (default 4)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"uvicorn worker processes (default: the CPUs, here {os.cpu_count()})",
    )
    p.add_argument(
        "--history",
        type=int,
        default=None,
        help="prior ledger rows inserted over the resellers' accounts before the second "
        "run (default 1,000,000; --quick 10,000); 0: no history run",
    )
    p.add_argument(
        "--mixed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the mixed runs (closed loop, and paced at --rate): one reseller sends half of "
        "the requests (default on)",
    )
    p.add_argument(
        "--pgbench-seconds",
        type=int,
        default=None,
        help="length of the pgbench reference run (default 30; --quick 5); 0: none",
    )
    p.add_argument(
        "--pgbench-scale",
        type=int,
        default=None,
        help="pgbench -s (default: the number of resellers; see bench/README.md)",
    )
    p.add_argument("--pgbench", default=None, help="the pgbench executable (default: on PATH)")
    p.add_argument(
        "--baseline",
        choices=("customer", "balance"),
        default="customer",
        help="the GET baseline: GET /customers/{username} (default) or GET /balance (the "
        "figures before 2026-12-03; its answer lists every ledger row of the account, so "
        "it grows with --history)",
    )
    p.add_argument(
        "--subresellers",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="give every reseller one prepaid sub-reseller (the package at the reseller's "
        f"price + {MARGIN}) and add the 'sub' run after the empty one: the subs' customers, "
        "activated by the subs' tokens, each activation debiting the sub and its parent "
        "(default off)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=GOAL_PER_S,
        help=f"the paced run after the empty one: activations offered at this rate from the "
        f"same clients, latency counted from when each was due (default {GOAL_PER_S}, the "
        "issue's goal); 0: no paced run",
    )
    p.add_argument(
        "--paced-runs",
        type=int,
        default=1,
        help="paced runs one after another, each on new customers (1-9, default 1): on a "
        "machine whose speed varies, how often the goal is met is the figure",
    )
    p.add_argument(
        "--cases",
        nargs="?",
        const=",".join(CASES),
        default=None,
        help="after the other runs, one closed-loop run per case, each on its own customers: "
        "chain3 (a sub-sub-reseller's activations, three debits each), static (static-IP "
        "customers, the address allocated by the first activation), ipv6 (a prefix "
        f"delegated by the activation); a comma list picks some (default: none; bare: "
        f"{','.join(CASES)})",
    )
    p.add_argument(
        "--case-customers",
        type=int,
        default=None,
        help="activations per case run (default 1000; --quick 200)",
    )
    p.add_argument(
        "--base",
        type=int,
        default=None,
        help="the installed base: the warm-up activates at least this many customers, and "
        "a run of this many of each case's kind precedes the case (reported, not compared), "
        "so that the statistics of the tables each run reads describe tables with rows, as "
        "a live database's do (default 1000; --quick 100; 0: none)",
    )
    p.add_argument("--quick", action="store_true", help="200 customers per run, 8 clients")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=1, help="seed of the order and the replays")
    a = p.parse_args(argv)
    customers = a.customers if a.customers is not None else (200 if a.quick else 2000)
    clients = a.clients if a.clients is not None else (8 if a.quick else 32)
    workers = a.workers if a.workers is not None else (os.cpu_count() or 1)
    history = a.history if a.history is not None else (10_000 if a.quick else 1_000_000)
    pgb_s = a.pgbench_seconds if a.pgbench_seconds is not None else (5 if a.quick else 30)
    scale = a.pgbench_scale if a.pgbench_scale is not None else a.resellers
    cases = tuple(c.strip() for c in (a.cases or "").split(",") if c.strip())
    if unknown := [c for c in cases if c not in CASES]:
        p.error(f"--cases: unknown {', '.join(unknown)} (known: {', '.join(CASES)})")
    cases = tuple(c for c in CASES if c in cases)  # their fixed order, each once
    case_n = a.case_customers if a.case_customers is not None else (200 if a.quick else 1000)
    base = a.base if a.base is not None else (100 if a.quick else 1000)
    for name, v in (
        ("customers", customers),
        ("clients", clients),
        ("resellers", a.resellers),
        ("workers", workers),
        ("pgbench-scale", scale),
        ("case-customers", case_n),
    ):
        if v < 1:
            p.error(f"--{name} must be at least 1")
    for name, v in (
        ("history", history), ("pgbench-seconds", pgb_s), ("rate", a.rate), ("base", base)
    ):  # fmt: skip
        if v < 0:
            p.error(f"--{name} must not be negative")
    if not 1 <= a.paced_runs <= 9:
        p.error("--paced-runs must be 1 to 9")
    if case_n + base > min(STATIC_POOL.num_addresses - 2, 2 ** (V6_LENGTH - V6_PREFIX.prefixlen)):
        p.error("--case-customers and --base are more than the static or IPv6 pool")
    return Options(
        a.db, customers, clients, a.resellers, workers, a.keep_db, a.seed, a.quick,
        history, a.mixed, pgb_s, scale, a.pgbench, a.baseline, a.subresellers, a.rate,
        a.paced_runs, cases, case_n, base,
    )  # fmt: skip


# ---- the database -----------------------------------------------------------------------


@dataclass
class Database:
    url: str
    kind: str
    cleanup: Callable[[], None]
    admin_url: str | None = None  # PostgreSQL: the database used to create ours


def open_database(opts: Options, workdir: Path) -> Database:
    """A fresh, empty database (see the module docstring)."""
    if opts.db is not None and opts.db.startswith("sqlite"):
        if opts.db == "sqlite":
            return Database(f"sqlite:///{workdir / 'bench.sqlite3'}", "sqlite", lambda: None)
        path = Path(opts.db.split("///", 1)[-1])
        if path.exists():
            raise SystemExit(f"--db: {path} exists; the benchmark needs a new database file")

        def remove() -> None:
            if opts.keep_db:
                say(f"kept database file {path}")
                return
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return Database(opts.db, "sqlite", remove)
    given = make_url(opts.db or PG_DEFAULT)
    if given.get_backend_name() != "postgresql":
        raise SystemExit(f"--db: only SQLite and PostgreSQL URLs are supported, not {opts.db}")
    name = f"bench_act_{os.getpid()}"
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = given.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        if opts.keep_db:
            say(f"kept database {name}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return Database(url, "postgresql", drop, given.render_as_string(hide_password=False))


# ---- seeding ----------------------------------------------------------------------------


@dataclass
class World:
    admin_token: str
    rids: list[int]
    names: dict[int, str]  # reseller id -> name
    tokens: dict[int, str]  # reseller id -> bearer token
    runs: dict[str, list[tuple[str, int]]]  # run -> [(username, reseller id)]
    expected: dict[int, Decimal] = field(default_factory=dict)  # each reseller's balance now
    activated: int = 0  # activations made so far, all runs
    history: int = 0  # prior ledger rows inserted
    subs: list[int] = field(default_factory=list)  # --subresellers: the sub-resellers' ids
    sub_subs: list[int] = field(default_factory=list)  # --cases chain3: the third level's ids
    parent: dict[int, int | None] = field(default_factory=dict)  # operator id -> parent id
    price: dict[int, Decimal] = field(default_factory=dict)  # what each operator pays
    debit_rows: int = 0  # ledger rows naming an activation, all runs (sub: two each)
    debit_minor: int = 0  # their sum in minor units (negative)
    paced: list[Result] = field(default_factory=list)  # every paced run's, for the pooled p99
    ref_rate: dict[str, float] = field(default_factory=dict)  # a case's reference run: its rate

    def chain(self, rid: int) -> list[int]:
        """The operator and every parent above it (each pays its own price)."""
        out = [rid]
        while (up := self.parent.get(out[-1])) is not None:
            out.append(up)
        return out


def warmup_size(opts: Options) -> int:
    """The warm-up run's activations: two per client, so every worker process has made
    its connections and compiled its statements before the empty run's clock starts, and
    at least the installed base (``--base``)."""
    return max(min(opts.customers, 2 * opts.clients), opts.base)


def assign(run: str, n: int, rids: list[int], sellers: dict[str, list[int]]) -> list[int]:
    """The reseller of each of a run's ``n`` customers: round-robin (the sub and chain3
    runs: over their own ``sellers``, the sub-resellers and sub-sub-resellers), or for the
    mixed run half to the first ("hot") reseller and the rest round-robin over the others."""
    if kind(run) in sellers:
        own = sellers[kind(run)]
        return [own[i % len(own)] for i in range(n)]
    if not run.startswith("mixed"):
        return [rids[i % len(rids)] for i in range(n)]
    hot, others = rids[0], rids[1:]
    half = n // 2
    return [hot] * half + [others[i % len(others)] for i in range(n - half)]


def seed(ctx: Context, opts: Options) -> World:
    """Routers, master package, package, resellers, customers and tokens (service layer)."""
    with transaction(ctx.factory) as s:
        if s.scalar(select(func.count()).select_from(Customer)):
            raise SystemExit("the database already has customers; give the benchmark a new one")
        for i in range(ROUTERS):
            registry.create_router(
                s,
                ACTOR,
                {
                    "name": f"bench-r{i + 1}",
                    "host": f"127.2.0.{i + 1}",
                    "api_port": 1,
                    "username": "admin",
                    "password": "bench-router-pass",
                    "radius_secret": "bench-radius-secret",
                    "customer_types": "pppoe",
                    "mode": "radius",
                },
            )
        registry.create_master_package(
            s,
            ACTOR,
            {
                "name": MASTER,
                "profile_name": PROFILE,
                "customer_type": "pppoe",
                "billing": "monthly",
                "rate_down": "20M",
                "rate_up": "10M",
            },
        )
        registry.create_package(
            s,
            ACTOR,
            {
                "name": PACKAGE,
                "master_package": MASTER,
                "customer_price": "500",
                "operator_price": str(PRICE),
                "visibility": "private",
            },
        )
        rids: list[int] = []
        names: dict[int, str] = {}
        tokens: dict[int, str] = {}
        for k in range(opts.resellers):
            r = registry.create_reseller(s, ACTOR, {"name": f"bench-res{k + 1}"})
            registry.assign_package(s, ACTOR, r.name, PACKAGE)
            rids.append(r.id)
            names[r.id] = r.name
            tokens[r.id] = create_token(s, role="reseller", reseller=r.name)
        parent: dict[int, int | None] = {rid: None for rid in rids}
        price = {rid: PRICE for rid in rids}
        subs: list[int] = []
        if opts.subresellers:
            # One prepaid sub-reseller under every reseller, given the package at the
            # parent's price + MARGIN (what it pays its parent).
            for rid in rids:
                sub = registry.create_reseller(
                    s,
                    ACTOR,
                    {
                        "name": f"{names[rid]}-sub",
                        "parent": names[rid],
                        "may_have_subresellers": False,
                        "billing": "prepaid",
                        "credit_limit": "0",
                    },
                )
                registry.assign_package(s, ACTOR, sub.name, PACKAGE, str(SUB_PRICE))
                subs.append(sub.id)
                names[sub.id] = sub.name
                tokens[sub.id] = create_token(s, role="reseller", reseller=sub.name)
                parent[sub.id] = rid
                price[sub.id] = SUB_PRICE
        sub_subs = seed_cases(s, opts, rids, names, tokens, parent, price)
        admin_token = create_token(s, role="admin", name=ACTOR)
    runs: dict[str, list[tuple[str, int]]] = {}
    sellers = {"sub": subs, "chain3": sub_subs}
    for run in opts.runs():
        prefix = RUNS[run][0]
        owners = assign(run, opts.size(run), rids, sellers)
        runs[run] = [(f"{prefix}{i:06d}", rid) for i, rid in enumerate(owners)]
    # (username, reseller id, run); every customer without a package (the static ones
    # without an address), so an activation is what gives each its package, and the
    # static and IPv6 ones their address or prefix.
    everyone = [(u, rid, run) for run, cs in runs.items() for u, rid in cs]
    for start in range(0, len(everyone), 250):
        with transaction(ctx.factory) as s:
            for i, (username, rid, run) in enumerate(everyone[start : start + 250], start):
                static = kind(run) == "static"
                registry.create_customer(
                    s,
                    ACTOR,
                    {
                        "username": username,
                        "password": f"pw-{username}",
                        "customer_type": "static" if static else "pppoe",
                        "router": f"bench-{'st' if static else 'r'}{i % ROUTERS + 1}",
                        "reseller": names[rid],
                    },
                )
    return World(
        admin_token, rids, names, tokens, runs, {rid: Decimal("0.00") for rid in parent},
        subs=subs, sub_subs=sub_subs, parent=parent, price=price,
    )  # fmt: skip


def seed_cases(
    s: Session,
    opts: Options,
    rids: list[int],
    names: dict[int, str],
    tokens: dict[int, str],
    parent: dict[int, int | None],
    price: dict[int, Decimal],
) -> list[int]:
    """--cases, in the seed's transaction: what each case run needs besides its customers
    (``names``, ``tokens``, ``parent`` and ``price`` gain the new operators). Returns the
    sub-sub-resellers' ids (chain3's sellers)."""
    if "static" in opts.cases:
        # RADIUS-mode routers of their own: the common runs' routers stay as they were.
        for i in range(ROUTERS):
            registry.create_router(
                s,
                ACTOR,
                {
                    "name": f"bench-st{i + 1}",
                    "host": f"127.2.1.{i + 1}",
                    "api_port": 1,
                    "username": "admin",
                    "password": "bench-router-pass",
                    "radius_secret": "bench-radius-secret",
                    "customer_types": "static",
                    "mode": "radius",
                },
            )
        registry.create_master_package(
            s,
            ACTOR,
            {
                "name": STATIC_MASTER,
                "profile_name": STATIC_PROFILE,
                "customer_type": "static",
                "billing": "monthly",
                "rate_down": "20M",
                "rate_up": "10M",
                "pool_name": STATIC_MASTER,
                "pool_ranges": str(STATIC_POOL),
            },
        )
    if "ipv6" in opts.cases:
        registry.create_master_package(
            s,
            ACTOR,
            {
                "name": V6_MASTER,
                "profile_name": V6_PROFILE,
                "customer_type": "pppoe",
                "billing": "monthly",
                "rate_down": "20M",
                "rate_up": "10M",
                "ipv6_pool_name": V6_POOL,
                "ipv6_prefix": str(V6_PREFIX),
                "ipv6_prefix_length": V6_LENGTH,
            },
        )
    for run, master in (("static", STATIC_MASTER), ("ipv6", V6_MASTER)):
        if run in opts.cases:
            # The common package's prices, so the ratio to the empty run is the
            # allocation's cost, not another price's.
            package = package_of(run)[0]
            registry.create_package(
                s,
                ACTOR,
                {
                    "name": package,
                    "master_package": master,
                    "customer_price": "500",
                    "operator_price": str(PRICE),
                    "visibility": "private",
                },
            )
            for rid in rids:
                registry.assign_package(s, ACTOR, names[rid], package)
    sub_subs: list[int] = []
    if "chain3" in opts.cases:
        # Under every reseller a prepaid sub (the package at PRICE + MARGIN) and under it
        # a prepaid sub-sub (+ MARGIN again), whose token activates the case's customers.
        for rid in rids:
            up = rid
            for level, (suffix, at) in enumerate((("l2", SUB_PRICE), ("l3", SUB_SUB_PRICE))):
                r = registry.create_reseller(
                    s,
                    ACTOR,
                    {
                        "name": f"{names[rid]}-{suffix}",
                        "parent": names[up],
                        "may_have_subresellers": level == 0,
                        "billing": "prepaid",
                        "credit_limit": "0",
                    },
                )
                registry.assign_package(s, ACTOR, r.name, PACKAGE, str(at))
                names[r.id] = r.name
                tokens[r.id] = create_token(s, role="reseller", reseller=r.name)
                parent[r.id] = up
                price[r.id] = at
                up = r.id
            sub_subs.append(up)
    return sub_subs


# ---- prior ledger rows --------------------------------------------------------------------


def insert_history(ctx: Context, world: World, n: int) -> float:
    """``n`` prior ledger rows over the resellers' accounts, by one INSERT … SELECT.

    Row ``i`` belongs to reseller ``i % R``; of each account's rows, every tenth is a
    top-up of ten activations' worth and the other nine are activation debits of PRICE,
    dated over the past year, oldest first, so no account's running balance ever goes
    negative. Then each ``accounts.balance`` is set to its ledger sum (the expected
    balances move by the same amount), and the tables are analysed (PostgreSQL: vacuumed
    too, and a CHECKPOINT, so the next run pays neither for the vacuum autovacuum would
    start in its middle after a million inserts, nor for writing the insert's pages: a
    year of real history was vacuumed and written long ago).
    Returns the seconds it took.
    """
    accounts = [ledger.account_of("reseller", rid) for rid in world.rids]
    r = len(accounts)
    price = int(PRICE * 100)  # the ledger stores integer minor units
    top = 10 * price
    step = 365 * 86400 / n  # seconds between two rows
    who = " ".join(f"WHEN {k} THEN '{a}'" for k, a in enumerate(accounts))
    is_top = f"(g.i / {r}) % 10 = 0"
    t0 = time.perf_counter()
    with transaction(ctx.factory) as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres:
            rows = f"generate_series(0, {n - 1}) AS g(i)"
            at = f"now() - make_interval(secs => ({n} - g.i) * {step!r})"
            prefix = ""
        else:
            rows = "g"
            at = f"datetime('now', '-' || (({n} - g.i) * {step!r}) || ' seconds')"
            prefix = (
                "WITH RECURSIVE g(i) AS "
                f"(SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {n - 1}) "
            )
        s.execute(
            text(
                f"{prefix}INSERT INTO ledger "
                "(account, amount, kind, reference, activation_id, created_by, created_at) "
                f"SELECT CASE g.i % {r} {who} END, "
                f"CASE WHEN {is_top} THEN {top} ELSE {-price} END, "
                f"CASE WHEN {is_top} THEN 'topup' ELSE 'activation' END, "
                f"'{HISTORY_REF}', NULL, '{HISTORY_REF}', {at} FROM {rows}"
            )
        )
        before = {a: ledger.balance(s, a) for a in accounts}
        s.execute(
            text(
                "UPDATE accounts SET balance = (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l "
                "WHERE l.account = accounts.account) WHERE account IN ("
                + ", ".join(f"'{a}'" for a in accounts)
                + ")"
            )
        )
        for rid, a in zip(world.rids, accounts, strict=True):
            delta = ledger.balance(s, a) - before[a]
            world.expected[rid] += delta
    with ctx.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if conn.dialect.name == "postgresql":
            conn.execute(text("VACUUM (ANALYZE)"))
            conn.execute(text("CHECKPOINT"))
        else:
            conn.execute(text("ANALYZE"))
    world.history += n
    return time.perf_counter() - t0


# ---- the server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``bench.serve`` in a subprocess: the API on a free loopback port."""

    def __init__(self, url: str, key_file: Path, workers: int, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {**os.environ, "PROVISIONER_DATABASE_URL": url, "PROVISIONER_KEY_FILE": str(key_file)}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "bench.serve", str(self.port), str(workers)]
        self._log = log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}):\n{self.log()}")
            try:
                if httpx.get(f"{self.base}{API}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"the server did not answer within {timeout:.0f} s:\n{self.log()}")

    def pids(self) -> list[int]:
        """The server process and its worker processes."""
        return [self.proc.pid, *children(self.proc.pid)]

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def frequent(self, k: int = 5) -> list[tuple[str, int]]:
        """The log's ``k`` most frequent top-level lines (a traceback's indented body
        left out), with their counts: what the server said about a failed run."""
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return Counter(ln for ln in lines if ln.strip() and not ln[0].isspace()).most_common(k)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# ---- CPU accounting (Linux /proc; figures are None elsewhere) --------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            f = _stat(int(d.name))
            if f is not None and f[1] == str(pid):
                out.append(int(d.name))
    return out


def cpu_of(pids: Sequence[int], reaped: bool = False) -> dict[int, float]:
    """User + system CPU seconds of each process still alive; with ``reaped``, plus those
    of its children that have exited (PostgreSQL: the backends of closed connections
    count in the postmaster's)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        f = _stat(pid)
        if f is not None:
            cpu = int(f[11]) + int(f[12])
            if reaped:
                cpu += int(f[13]) + int(f[14])
            out[pid] = cpu / tick
    return out


def postgres_pids() -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == "postgres":
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """CPU seconds spent by the server, the PostgreSQL backends and this process."""

    def __init__(self, server: Server, postgres: bool) -> None:
        self.server, self.postgres = server, postgres
        self.start = self._sample()

    def _sample(self) -> tuple[dict[int, float], dict[int, float], float]:
        pg = cpu_of(postgres_pids()) if self.postgres else {}
        return cpu_of(self.server.pids()), pg, own_cpu()

    def stop(self) -> dict[str, float | None]:
        srv, pg, me = self._sample()
        s0, p0, m0 = self.start

        def delta(a: dict[int, float], b: dict[int, float]) -> float | None:
            return round(sum(v - b.get(pid, 0.0) for pid, v in a.items()), 2) if a else None

        return {"server": delta(srv, s0), "postgres": delta(pg, p0), "client": round(me - m0, 2)}


# ---- load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    customer: str
    reseller_id: int
    key: str
    package: str = PACKAGE


@dataclass
class Result:
    status: str
    ms: float
    activation_id: int | None = None
    error: str | None = None  # a refusal's message, so a failed invariant can name it


Make = Callable[[Job, str], load.Request]  # a job and its reseller's token -> the request


def activate(job: Job, token: str) -> load.Request:
    body = {"customer": job.customer, "package": job.package, "idempotency_key": job.key}
    return load.Request("POST", f"{API}/activations", token, body)


def read_customer(job: Job, token: str) -> load.Request:
    """The baseline: an authenticated read through the same server, clients and database
    (token check, the customer with its router, package and reseller), so the ratio is
    what the activation itself costs. Its cost does not depend on the ledger."""
    return load.Request("GET", f"{API}/customers/{job.customer}", token)


def read_balance(job: Job, token: str) -> load.Request:
    """The old baseline (``--baseline balance``): the reseller's balance, whose answer
    also lists every ledger row of the account, so its cost grows with the ledger."""
    return load.Request("GET", f"{API}/balance", token)


BASELINES: dict[str, tuple[str, Make]] = {
    "customer": ("GET /customers/{username}", read_customer),
    "balance": ("GET /balance", read_balance),
}


def fire(
    base: str,
    jobs: list[Job],
    tokens: dict[int, str],
    clients: int,
    make: Make = activate,
    rate: float | None = None,
) -> tuple[list[Result], float]:
    """Send every job from ``clients`` keep-alive connections (``bench.load``), each as
    soon as one is free, or offered at ``rate`` per second; (results in job order, wall
    seconds)."""
    requests = [make(j, tokens[j.reseller_id]) for j in jobs]
    replies, wall = load.run(base, requests, clients, rate)
    results = []
    for r in replies:
        ok = r.status in ("200", "201")
        act_id = r.json().get("id") if ok else None
        error = None if ok else r.body.decode(errors="replace")[:300]
        results.append(Result(r.status, r.ms, act_id, error))
    return results, wall


def figures(results: list[Result], wall: float) -> dict[str, Any]:
    ms = sorted(r.ms for r in results)
    return {
        "requests": len(results),
        "wall_s": round(wall, 3),
        "per_s": round(len(results) / wall, 1) if wall > 0 else None,
        "p50_ms": round(percentile(ms, 50), 1),
        "p90_ms": round(percentile(ms, 90), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(ms[-1], 1) if ms else 0.0,
        "status": dict(sorted(Counter(r.status for r in results).items())),
    }


TAIL_WINDOW_S = 0.1


def tail_windows(results: list[Result], rate: float, p99_ms: float) -> list[dict[str, Any]]:
    """The paced run's requests at or over its p99, grouped by the 100 ms window they were
    due in (request i is due at i / rate): a few windows is a stall (a collection, a
    checkpoint, the machine's other tenants), many is the server falling behind."""
    windows: dict[int, list[float]] = {}
    for i, r in enumerate(results):
        if r.ms >= p99_ms:
            windows.setdefault(int(i / rate / TAIL_WINDOW_S), []).append(r.ms)
    return [
        {"at_s": round(w * TAIL_WINDOW_S, 1), "requests": len(ms), "max_ms": round(max(ms), 1)}
        for w, ms in sorted(windows.items())
    ]


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, float | None] | None:
    """a / b for throughput, p50 and p99 (None when either side is missing)."""
    if not a or not b:
        return None

    def div(x: float | None, y: float | None, floor: float = 0.0) -> float | None:
        if x is None or y is None:
            return None
        y = max(y, floor)
        return round(x / y, 3) if y else None

    return {
        "throughput": div(a.get("per_s"), b.get("per_s")),
        "p50": div(a.get("p50_ms"), b.get("p50_ms"), 0.1),
        "p99": div(a.get("p99_ms"), b.get("p99_ms"), 0.1),
    }


def says_ratio(what: str, r: dict[str, float | None] | None) -> str:
    if r is None:
        return f"{what}: n/a"
    return f"{what}: {r['throughput']}x throughput, {r['p50']}x p50, {r['p99']}x p99"


def report(title: str, f: dict[str, Any], cpu: dict[str, float | None]) -> None:
    status = ", ".join(f"{k}: {v}" for k, v in f["status"].items())
    say(
        f"{title}: {f['requests']} in {f['wall_s']:.2f} s = {f['per_s']}/s; "
        f"latency ms p50 {f['p50_ms']}, p90 {f['p90_ms']}, p99 {f['p99_ms']}, "
        f"max {f['max_ms']}; status {status}"
    )
    n = f["requests"]
    per = ", ".join(
        f"{k} {v:.1f} s ({v / n * 1000:.1f} ms/request)" for k, v in cpu.items() if v is not None
    )
    say(f"  CPU: {per}")


# ---- invariants (read from the database after each run's timed phases) -------------------


@dataclass
class RunState:
    """What one run sent and got back, for its invariants."""

    name: str
    customers: list[tuple[str, int]]
    first: list[Result]
    replays: list[tuple[Job, Result]]
    firsts: dict[str, int | None]
    ledger_before_replay: tuple[int, dict[str, Decimal]]
    api_balances: dict[int, str]
    key_prefix: str


def check(ctx: Context, world: World, run: RunState) -> list[str]:
    """The invariants after a run; ``world.expected`` and ``world.activated`` already
    include it. Returns what failed (nothing, always)."""
    failed: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            failed.append(what)

    n = len(run.customers)
    total = world.activated
    prefix = RUNS[run.name][0]
    profile = package_of(run.name)[1]
    bad = Counter(r.status for r in run.first if r.status != "201")
    said = Counter((r.status, r.error) for r in run.first if r.status != "201")
    expect(
        not bad,
        f"first activations not all 201: {dict(bad)}; answers (status, body, times): "
        + "; ".join(f"{st} {body} x{k}" for (st, body), k in said.most_common(3)),
    )
    bad_replays = [
        (j.key, r.status, r.activation_id, run.firsts.get(j.key))
        for j, r in run.replays
        if r.status != "200" or r.activation_id is None or r.activation_id != run.firsts.get(j.key)
    ]
    expect(
        not bad_replays,
        f"{len(bad_replays)} replays were not 200 with the first activation, e.g. "
        f"(key, status, id, first id) {bad_replays[:3]}",
    )
    with transaction(ctx.factory) as s:
        # One activation per key and per customer: this run's, and all of them so far.
        acts = s.scalar(select(func.count()).select_from(Activation))
        expect(acts == total, f"activations rows = {acts}, activations sent so far = {total}")
        keys = s.scalar(select(func.count(func.distinct(Activation.idempotency_key))))
        expect(keys == total, f"distinct idempotency keys = {keys}, want {total}")
        mine = Activation.idempotency_key.like(f"{run.key_prefix}%")
        run_acts, run_customers = s.execute(
            select(func.count(), func.count(func.distinct(Activation.customer_id))).where(mine)
        ).one()
        expect(run_acts == n, f"this run's activations = {run_acts}, customers = {n}")
        expect(run_customers == n, f"this run's activated customers = {run_customers}, want {n}")
        # One debit per operator on the path: the ledger rows that name an activation are
        # one per activation (two for the sub run's: the sub's and its parent's), name
        # every activation, are all 'activation' debits, and sum to each operator's price.
        minor = cast(LedgerEntry.amount, BigInteger)
        debits, distinct, summed, lo, hi = s.execute(
            select(
                func.count(),
                func.count(func.distinct(LedgerEntry.activation_id)),
                func.coalesce(func.sum(minor), 0),
                func.min(LedgerEntry.kind),
                func.max(LedgerEntry.kind),
            ).where(LedgerEntry.activation_id.is_not(None))
        ).one()
        want_rows = world.debit_rows
        expect(
            debits == want_rows, f"ledger rows naming an activation = {debits}, want {want_rows}"
        )
        expect(distinct == total, f"activations with a debit = {distinct}, want {total}")
        expect(
            int(summed) == world.debit_minor,
            f"sum of the activation debits = {int(summed)} minor units, want {world.debit_minor}",
        )
        expect(total == 0 or lo == hi == "activation", f"activation rows of kind {lo!r}..{hi!r}")
        # This run's activations, one by one: the seller debited its price, and every
        # operator above it its own, once each, and nobody else.
        rows_of: dict[int, Counter[tuple[str, int]]] = {}
        payer_of: dict[int, str] = {}
        for act_id, payer, account, amount in s.execute(
            select(Activation.id, Activation.payer, LedgerEntry.account, minor)
            .join(LedgerEntry, LedgerEntry.activation_id == Activation.id)
            .where(mine)
        ):
            rows_of.setdefault(act_id, Counter())[(account, int(amount))] += 1
            payer_of[act_id] = payer
        wrong = []
        for act_id, got in rows_of.items():
            kind, _, ref = payer_of[act_id].partition(":")
            seller = int(ref) if kind == "reseller" and ref.isdigit() else None
            path = world.chain(seller) if seller is not None and seller in world.price else []
            owed = Counter(
                {(ledger.account_of("reseller", op), -int(world.price[op] * 100)): 1 for op in path}
            )
            if got != owed:
                wrong.append((act_id, dict(got), dict(owed)))
        expect(len(rows_of) == n, f"this run's activations with debits = {len(rows_of)}, want {n}")
        expect(
            not wrong,
            f"{len(wrong)} activations not debited once per operator on the path at its "
            f"price, e.g. (id, rows, want) {wrong[:2]}",
        )
        # Balances exact (every operator, both levels), by the account row and by the API.
        for rid in world.expected:
            account = ledger.account_of("reseller", rid)
            have = ledger.balance(s, account)
            want = world.expected[rid]
            expect(have == want, f"{account}: balance {have} != expected {want}")
            expect(
                rid not in run.api_balances or run.api_balances[rid] == str(want),
                f"{account}: GET /balance says {run.api_balances.get(rid)}, want {want}",
            )
        # accounts.balance = the sum of the ledger, for every account.
        for m in ledger.check(s):
            failed.append(f"{m.account}: balance column {m.balance} != ledger sum {m.ledger}")
        # Never below the floor (0 for these prepaid operators), nor negative.
        for account, b, floor in s.execute(
            select(
                Account.account,
                cast(Account.balance, BigInteger),
                cast(Account.floor, BigInteger),
            ).where(
                (cast(Account.balance, BigInteger) < cast(Account.floor, BigInteger))
                | (cast(Account.balance, BigInteger) < 0)
            )
        ):
            failed.append(
                f"{account}: balance {Decimal(int(b)) / 100} below its floor "
                f"{Decimal(int(floor)) / 100} or negative"
            )
        # Replays wrote nothing.
        rows, balances = run.ledger_before_replay
        rows_now = s.scalar(select(func.count()).select_from(LedgerEntry))
        expect(rows_now == rows, f"replays wrote ledger rows: {rows} before, {rows_now} after")
        for account, before in balances.items():
            now = ledger.balance(s, account)
            expect(now == before, f"{account}: replays changed the balance {before} -> {now}")
        # The run's customers are active, with their RADIUS rows.
        active = s.scalar(
            select(func.count())
            .select_from(Customer)
            .where(
                Customer.username.like(f"{prefix}%"),
                Customer.status == CustomerStatus.active,
                Customer.expires_at.is_not(None),
            )
        )
        expect(active == n, f"active customers with an expiry = {active}, want {n}")
        groups = s.scalar(
            select(func.count())
            .select_from(radusergroup)
            .where(radusergroup.c.groupname == profile, radusergroup.c.username.like(f"{prefix}%"))
        )
        expect(groups == n, f"radusergroup rows in {profile!r} = {groups}, want {n}")
        expiries = s.scalar(
            select(func.count())
            .select_from(radcheck)
            .where(radcheck.c.attribute == "Expiration", radcheck.c.username.like(f"{prefix}%"))
        )
        expect(expiries == n, f"radcheck Expiration rows = {expiries}, want {n}")
    return failed


CASE_CHECKS = {
    "chain3": "each activation debited once on each of the three levels at that level's price",
    "static": "each customer a distinct address inside the pool, as its Framed-IP-Address",
    "ipv6": f"each customer a distinct /{V6_LENGTH} of the pool, as its Delegated-IPv6-Prefix",
}


def check_case(ctx: Context, world: World, run: str, customers: list[tuple[str, int]]) -> list[str]:
    """A case run's own invariants, beside ``check``'s (which already holds every
    operator's balance, on every level, to the cent). Returns what failed."""
    failed: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            failed.append(what)

    n = len(customers)
    prefix = RUNS[run][0]
    mine = Customer.username.like(f"{prefix}%")
    case = kind(run)
    with transaction(ctx.factory) as s:
        if case == "chain3":
            depths = Counter(len(world.chain(rid)) for _, rid in customers)
            expect(set(depths) == {3}, f"sellers' chain lengths {dict(depths)}, want all 3")
            # Each level's debits in this run, over all its operators: one per activation
            # at that level's price (level 0 the seller, 2 the reseller under the admin).
            level: dict[str, int] = {}
            for rid in world.sub_subs:
                for depth, op in enumerate(world.chain(rid)):
                    level[ledger.account_of("reseller", op)] = depth
            prices = (SUB_SUB_PRICE, SUB_PRICE, PRICE)
            got: dict[int, tuple[int, int]] = {}
            for account, rows, summed in s.execute(
                select(
                    LedgerEntry.account,
                    func.count(),
                    func.coalesce(func.sum(cast(LedgerEntry.amount, BigInteger)), 0),
                )
                .join(Activation, LedgerEntry.activation_id == Activation.id)
                .join(Customer, Customer.id == Activation.customer_id)
                .where(mine)
                .group_by(LedgerEntry.account)
            ):
                if account not in level:
                    failed.append(f"{account} (not on a chain) debited {rows} times")
                    continue
                r0, s0 = got.get(level[account], (0, 0))
                got[level[account]] = (r0 + rows, s0 + int(summed))
            for depth, at in enumerate(prices):
                want = (n, -n * int(at * 100))
                expect(
                    got.get(depth) == want,
                    f"level {depth} debits (rows, minor units) = {got.get(depth)}, want {want}",
                )
        elif case == "static":
            ips = dict(s.execute(select(Customer.username, Customer.static_ip).where(mine)).all())
            have = [ip for ip in ips.values() if ip]
            expect(len(ips) == n, f"static customers = {len(ips)}, want {n}")
            expect(len(have) == n, f"static customers with an address = {len(have)}, want {n}")
            expect(
                len(set(have)) == len(have), f"{len(have) - len(set(have))} addresses given twice"
            )
            hosts = (STATIC_POOL.network_address, STATIC_POOL.broadcast_address)
            outside = [
                ip
                for ip in have
                if ipaddress.IPv4Address(ip) not in STATIC_POOL
                or ipaddress.IPv4Address(ip) in hosts
            ]
            expect(
                not outside, f"{len(outside)} addresses outside {STATIC_POOL}, e.g. {outside[:3]}"
            )
            framed = dict(
                s.execute(
                    select(radreply.c.username, radreply.c.value).where(
                        radreply.c.attribute == "Framed-IP-Address",
                        radreply.c.username.like(f"{prefix}%"),
                    )
                ).all()
            )
            wrong = [(u, ip, framed.get(u)) for u, ip in ips.items() if framed.get(u) != ip]
            expect(
                not wrong and len(framed) == n,
                f"Framed-IP-Address rows = {len(framed)}, {len(wrong)} not the customer's "
                f"address, e.g. (user, address, row) {wrong[:3]}",
            )
        elif case == "ipv6":
            rows = s.execute(
                select(Customer.username, Ipv6Prefix.prefix, Ipv6Prefix.pool_name)
                .join(Ipv6Prefix, Ipv6Prefix.customer_id == Customer.id)
                .where(mine)
            ).all()
            nets = {u: ipaddress.IPv6Network(p) for u, p, _ in rows}
            expect(len(nets) == n, f"customers with a prefix = {len(nets)}, want {n}")
            expect(
                len(set(nets.values())) == len(nets),
                f"{len(nets) - len(set(nets.values()))} prefixes given twice",
            )
            bad = [
                (u, str(net), pool)
                for (u, _, pool), net in zip(rows, nets.values(), strict=True)
                if pool != V6_POOL or net.prefixlen != V6_LENGTH or not net.subnet_of(V6_PREFIX)
            ]
            expect(
                not bad,
                f"{len(bad)} prefixes not a /{V6_LENGTH} of {V6_POOL} ({V6_PREFIX}), e.g. {bad[:3]}",
            )
            delegated = {
                u: ipaddress.IPv6Network(v)
                for u, v in s.execute(
                    select(radreply.c.username, radreply.c.value).where(
                        radreply.c.attribute == "Delegated-IPv6-Prefix",
                        radreply.c.username.like(f"{prefix}%"),
                    )
                )
            }
            expect(
                delegated == nets,
                f"Delegated-IPv6-Prefix rows = {len(delegated)}, "
                f"{sum(delegated.get(u) != p for u, p in nets.items())} not the customer's prefix",
            )
    return failed


def ledger_state(ctx: Context) -> tuple[int, dict[str, Decimal]]:
    with transaction(ctx.factory) as s:
        rows = int(s.scalar(select(func.count()).select_from(LedgerEntry)) or 0)
        return rows, {a: ledger.balance(s, a) for a in s.scalars(select(Account.account))}


# ---- one activation run -------------------------------------------------------------------


def settle(ctx: Context) -> None:
    """PostgreSQL, before a run's clock starts: VACUUM (ANALYZE) and CHECKPOINT, so each
    run starts from the same settled state rather than paying, in its middle, for the
    autovacuum and checkpoint the previous run's 2,000 activations (a fifth of the
    customers table updated, thousands of RADIUS rows) set off."""
    with ctx.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM (ANALYZE)"))
            conn.execute(text("CHECKPOINT"))


def activation_run(
    ctx: Context, db: Database, server: Server, world: World, opts: Options, run: str
) -> tuple[dict[str, Any], list[str]]:
    """Top-ups, the GET baseline, the activations, the replays and the invariants of one
    run; (its figures, the invariants that failed)."""
    customers = world.runs[run]
    rate = world.ref_rate.get(run, opts.rate)
    title = RUNS[run][1].format(n=world.history, rate=rate)
    paced = run.startswith("paced") or run == "mixed_paced" or run.endswith(REF)
    say(f"--- {run}: {title}; {len(customers)} activations ---")
    postgres = db.kind == "postgresql"
    per_reseller = Counter(rid for _, rid in customers)
    # What each operator on the paths pays in this run: the seller its price per
    # activation, and (the sub run) every parent above it its own price, in the same
    # transaction. Each is topped up with that plus SPARE activations' worth.
    pays: Counter[int] = Counter()
    for rid, count in per_reseller.items():
        for op in world.chain(rid):
            pays[op] += count
    admin = {"Authorization": f"Bearer {world.admin_token}"}
    with httpx.Client(base_url=server.base, timeout=60.0, headers=admin) as c:
        for rid, count in sorted(pays.items()):
            amount = (count + SPARE) * world.price[rid]
            r = c.post(f"{API}/topups", json={"account": f"reseller:{rid}", "amount": str(amount)})
            if r.status_code != 201:
                raise SystemExit(f"top-up of reseller:{rid} failed: {r.status_code} {r.text}")
            world.expected[rid] += amount

    settle(ctx)
    rng = random.Random(f"{opts.seed}-{run}")
    key_prefix = f"bench-{opts.seed}-{run}-"
    package = package_of(run)[0]
    jobs = [Job(u, rid, f"{key_prefix}{u}", package) for u, rid in customers]
    rng.shuffle(jobs)
    base_fig: dict[str, Any] | None = None
    if not paced:  # a baseline read at full speed, against activations at a set pace: no
        base_title, base_make = BASELINES[opts.baseline]
        cpu = CpuMeter(server, postgres)
        base, base_wall = fire(server.base, jobs, world.tokens, opts.clients, base_make)
        base_cpu = cpu.stop()
        base_fig = {**figures(base, base_wall), "cpu_s": base_cpu}
        report(f"baseline ({base_title})", base_fig, base_cpu)

    cpu = CpuMeter(server, postgres)
    first, wall = fire(server.base, jobs, world.tokens, opts.clients, rate=rate if paced else None)
    first_cpu = cpu.stop()
    first_fig = figures(first, wall)
    if paced:
        first_fig["offered_per_s"] = rate
    report(f"activations{f' offered at {rate:g}/s' if paced else ''}", first_fig, first_cpu)
    if run.startswith("paced"):
        world.paced += first
    if paced:
        first_fig["tail_windows"] = tail = tail_windows(first, rate, first_fig["p99_ms"])
        say(
            f"  the slowest 1% by when they were due: {len(tail)} window(s) of "
            f"{TAIL_WINDOW_S * 1000:g} ms: "
            + ", ".join(f"{w['at_s']} s ({w['requests']}, max {w['max_ms']} ms)" for w in tail[:8])
            + (" …" if len(tail) > 8 else "")
        )
    over = ratio(first_fig, base_fig)
    if base_fig is not None:
        say("  " + says_ratio("vs baseline", over))
    out: dict[str, Any] = {
        "title": title,
        "baseline": base_fig,
        "activations": {**first_fig, "cpu_s": first_cpu},
        "over_baseline": over,
    }
    if run == "history":
        out["prior_ledger_rows"] = world.history
    if run.startswith("mixed"):
        hot = world.rids[0]
        per: dict[str, Any] = {}
        for rid in world.rids:
            mine = [r for j, r in zip(jobs, first, strict=True) if j.reseller_id == rid]
            f = figures(mine, wall)
            f["hot"] = rid == hot
            per[world.names[rid]] = f
            say(
                f"  {world.names[rid]}{' (hot)' if rid == hot else ''}: {f['requests']} "
                f"requests, {f['per_s']}/s; latency ms p50 {f['p50_ms']}, p99 {f['p99_ms']}, "
                f"max {f['max_ms']}"
            )
        out["hot_reseller"] = world.names[hot]
        out["per_reseller"] = per
    firsts = {j.key: r.activation_id for j, r in zip(jobs, first, strict=True)}
    for rid, count in pays.items():
        world.expected[rid] -= count * world.price[rid]
        world.debit_rows += count
        world.debit_minor -= count * int(world.price[rid] * 100)
    world.activated += len(jobs)

    before = ledger_state(ctx)
    sample = rng.sample(jobs, max(1, round(len(jobs) * REPLAY_FRACTION)))
    cpu = CpuMeter(server, postgres)
    again, replay_wall = fire(server.base, sample, world.tokens, opts.clients)
    replay_cpu = cpu.stop()
    replay_fig = figures(again, replay_wall)
    report("replays", replay_fig, replay_cpu)
    out["replays"] = {**replay_fig, "cpu_s": replay_cpu}

    # Every reseller's balance through the API. GET /balance also lists every ledger row
    # of the account, so an account with more than BALANCE_READ_ROWS rows (the history
    # run's) is checked in the database only, and the read's time is reported.
    api_balances: dict[int, str] = {}
    slowest, entries, skipped = 0.0, 0, 0
    with transaction(ctx.factory) as s:
        rows_of = dict(
            s.execute(select(LedgerEntry.account, func.count()).group_by(LedgerEntry.account)).all()
        )
    for rid, token in world.tokens.items():
        if rows_of.get(ledger.account_of("reseller", rid), 0) > BALANCE_READ_ROWS:
            skipped += 1
            continue
        t0 = time.perf_counter()
        r = httpx.get(
            f"{server.base}{API}/balance",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120.0,
        )
        slowest = max(slowest, (time.perf_counter() - t0) * 1000)
        body = r.json() if r.status_code == 200 else {}
        api_balances[rid] = str(body.get("balance")) if body else r.text
        entries = max(entries, len(body.get("entries", ())) if body else 0)
    out["get_balance"] = {"max_ms": round(slowest, 1), "max_entries": entries, "skipped": skipped}
    say(
        f"  GET /balance of each {'operator' if world.subs else 'reseller'}: slowest {slowest:.0f} ms, up to {entries:,} entries"
        + (f"; {skipped} not read (over {BALANCE_READ_ROWS:,} ledger rows)" if skipped else "")
    )

    failed = check(
        ctx,
        world,
        RunState(
            run, customers, first, list(zip(sample, again, strict=True)), firsts, before,
            api_balances, key_prefix,
        ),
    )  # fmt: skip
    if kind(run) in CASES:
        failed += check_case(ctx, world, run, customers)
    if base_fig is not None and set(base_fig["status"]) != {"200"}:
        failed.append(f"baseline reads not all 200: {base_fig['status']}")
    failed = [f"[{run}] {what}" for what in failed]
    for what in failed:
        say(f"INVARIANT FAILED {what}")
    if failed:
        for line, k in server.frequent():
            say(f"  server log, x{k}: {line[:400]}")
    if not failed:
        say(
            f"invariants after {run}: ok (balances exact, accounts.balance = ledger sum for "
            "every account, one activation per key and one debit per operator on its path "
            "at its price, no balance below its floor, "
            "replays 200 and free, RADIUS rows in place"
            + (f"; {CASE_CHECKS[kind(run)]})" if kind(run) in CASES else ")")
        )
    out["invariants"] = failed if failed else "ok"
    return out, failed


# ---- the pgbench reference ------------------------------------------------------------------


def pgbench_run(db: Database, opts: Options) -> dict[str, Any] | None:
    """pgbench on the same server with the same clients (None when it cannot run)."""
    if db.kind != "postgresql" or db.admin_url is None:
        say("pgbench: skipped (not PostgreSQL)")
        return None
    if opts.pgbench_seconds == 0:
        say("pgbench: skipped (--pgbench-seconds 0)")
        return None
    if find_pgbench(opts.pgbench) is None:
        say(f"pgbench: skipped ({opts.pgbench or 'pgbench'} not found)")
        return None
    say(f"--- pgbench: scale {opts.pgbench_scale}, {opts.clients} clients ---")
    with Pgbench(db.admin_url, opts.pgbench_scale, exe=opts.pgbench) as pgb:
        # pgbench's backends start and end within the run: count them in the postmaster.
        pg0 = cpu_of(postgres_pids(), reaped=True)
        ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        f = pgb.run(opts.clients, opts.pgbench_seconds)
        pg1 = cpu_of(postgres_pids(), reaped=True)
        ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())
    client = (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)
    f["cpu_s"] = {"postgres": round(pg, 2), "client": round(client, 2)}
    say(describe(f))
    if f["transactions"]:
        n = f["transactions"]
        say(
            f"  CPU: postgres {pg:.1f} s ({pg / n * 1000:.2f} ms/transaction), "
            f"pgbench {client:.1f} s"
        )
    return f


# ---- main -------------------------------------------------------------------------------


def cpu_ms(r: dict[str, Any], who: str) -> float | None:
    """A run's CPU per activation of ``who`` (server, postgres), as ``report`` prints it."""
    a = r["activations"]
    v = a["cpu_s"].get(who)
    return round(v / a["requests"] * 1000, 2) if v is not None and a["requests"] else None


def case_figures(
    opts: Options, results: dict[str, Any], ratios: dict[str, Any]
) -> dict[str, Any] | None:
    """--cases: each case run's figures beside the empty run's (printed, and adds its
    ``<case>_over_empty`` to ``ratios``); None without --cases."""
    if not opts.cases:
        return None
    empty = results.get("empty")
    e_srv = cpu_ms(empty, "server") if empty else None
    e_pg = cpu_ms(empty, "postgres") if empty else None
    e_pg_says = f", {e_pg} ms PostgreSQL CPU" if e_pg is not None else ""
    say(f"cases beside the empty run ({e_srv} ms server CPU{e_pg_says} per activation):")
    out: dict[str, Any] = {}
    for name in opts.cases:
        r = results.get(name)
        if r is None:  # a run before it failed: the runs stopped
            out[name] = None
            say(f"  {name}: not run")
            continue
        a = r["activations"]
        srv, pg = cpu_ms(r, "server"), cpu_ms(r, "postgres")

        def over(x: float | None, y: float | None) -> float | None:
            return round(x / y, 3) if x is not None and y else None

        ratios[f"{name}_over_empty"] = ratio(a, empty and empty["activations"])
        ref = results.get(f"{name}{REF}")
        r_srv = cpu_ms(ref, "server") if ref else None
        r_pg = cpu_ms(ref, "postgres") if ref else None
        out[name] = {
            "title": r["title"],
            "activations": a["requests"],
            "per_s": a["per_s"],
            "p50_ms": a["p50_ms"],
            "p99_ms": a["p99_ms"],
            "server_cpu_ms": srv,
            "postgres_cpu_ms": pg,
            "server_cpu_over_empty": over(srv, e_srv),
            "postgres_cpu_over_empty": over(pg, e_pg),
            # the common activation offered at the rate this case answered
            "ref_per_s": ref["activations"]["per_s"] if ref else None,
            "ref_server_cpu_ms": r_srv,
            "ref_postgres_cpu_ms": r_pg,
            "server_cpu_over_ref": over(srv, r_srv),
            "postgres_cpu_over_ref": over(pg, r_pg),
            "invariants": r["invariants"],
            "run": r,
        }
        # A failed run's figures count its refused requests too: say so beside them.
        failed = "" if r["invariants"] == "ok" else f"; INVARIANTS FAILED, answers {a['status']}"
        pg_says = f", PostgreSQL {pg} ms ({over(pg, e_pg)}x)" if pg is not None else ""
        ref_says = (
            f"; the common activation at {ref['activations']['per_s']}/s: server {r_srv} ms "
            f"({over(srv, r_srv)}x)"
            + (f", PostgreSQL {r_pg} ms ({over(pg, r_pg)}x)" if r_pg else "")
            if ref
            else ""
        )
        say(
            f"  {name}: {a['per_s']} activations/s, p50 {a['p50_ms']} ms, p99 {a['p99_ms']} "
            f"ms; server CPU {srv} ms per activation ({over(srv, e_srv)}x the empty run's)"
            f"{pg_says}{ref_says}{failed}"
        )
    return out


def run(opts: Options, workdir: Path) -> int:
    db = open_database(opts, workdir)
    ctx: Context | None = None
    server: Server | None = None
    results: dict[str, Any] = {}
    failed: list[str] = []
    pgb: dict[str, Any] | None = None
    history_s: float | None = None
    try:
        key_file = workdir / "secret.key"
        t0 = time.perf_counter()
        ctx = open_context(Settings(database_url=db.url, key_file=key_file))
        world = seed(ctx, opts)
        seed_s = time.perf_counter() - t0
        runs = opts.runs()
        say(
            f"activations benchmark: {db.kind}, runs {', '.join(runs[1:])} of "
            f"{opts.customers} activations each (after a warm-up of {warmup_size(opts)}) over "
            f"{opts.resellers} resellers"
            + (f" (+ {len(world.subs)} sub-resellers at {SUB_PRICE})" if world.subs else "")
            + (
                f"; cases {', '.join(opts.cases)} of {opts.case_customers} activations each"
                if opts.cases
                else ""
            )
            + f", {opts.clients} clients, {opts.workers} worker(s), "
            f"{os.cpu_count()} CPUs; seeded "
            f"{sum(len(c) for c in world.runs.values())} customers in {seed_s:.1f} s"
        )
        server = Server(db.url, key_file, opts.workers, workdir / "server.log")
        server.wait_ready()
        say(f"server: uvicorn pid {server.proc.pid} on {server.base}")

        for name in runs:
            if name == "history":
                say(f"--- inserting {opts.history:,} prior ledger rows ---")
                history_s = insert_history(ctx, world, opts.history)
                say(
                    f"history: {opts.history:,} ledger rows over {len(world.rids)} accounts "
                    f"in {history_s:.1f} s (insert, balances, "
                    f"{'VACUUM (ANALYZE), CHECKPOINT' if db.kind == 'postgresql' else 'ANALYZE'})"
                )
            results[name], failed = activation_run(ctx, db, server, world, opts, name)
            if failed:
                break
            if name in CASES:  # its reference runs at the rate it answered
                world.ref_rate[f"{name}{REF}"] = float(int(results[name]["activations"]["per_s"]))
            if name == ("sub" if "sub" in runs else "empty"):
                pgb = pgbench_run(db, opts)

        empty, sub, history, mixed = (results.get(k) for k in ("empty", "sub", "history", "mixed"))
        paced = results.get("paced")

        def act(r: dict[str, Any] | None) -> dict[str, Any] | None:
            return r["activations"] if r else None

        ratios = {
            "empty_over_baseline": empty and empty["over_baseline"],
            "sub_over_baseline": sub and sub["over_baseline"],
            "history_over_baseline": history and history["over_baseline"],
            "mixed_over_baseline": mixed and mixed["over_baseline"],
            "empty_over_pgbench": ratio(act(empty), pgb),
            "history_over_pgbench": ratio(act(history), pgb),
            "history_over_empty": ratio(act(history), act(empty)),
            "sub_over_empty": ratio(act(sub), act(empty)),
            "sub_over_pgbench": ratio(act(sub), pgb),
        }
        say("--- summary ---")
        for name in runs[1:]:
            r = results.get(name)
            if r:
                a = r["activations"]
                base = f"; baseline {r['baseline']['per_s']}/s" if r["baseline"] else ""
                say(
                    f"{name} ({r['title']}): {a['per_s']} activations/s, p50 {a['p50_ms']} ms, "
                    f"p99 {a['p99_ms']} ms{base}"
                )
        if pgb:
            say(f"pgbench: {pgb['per_s']} tps, p50 {pgb['p50_ms']} ms, p99 {pgb['p99_ms']} ms")
        for k, v in ratios.items():
            if v is not None:
                say(says_ratio(k.replace("_", " "), v))
        goal: dict[str, Any] = {
            "per_s": GOAL_PER_S, "p99_ms": GOAL_P99_MS, "clients": GOAL_CLIENTS,
        }  # fmt: skip
        if empty:
            a = empty["activations"]
            goal["met_empty"] = (
                opts.clients == GOAL_CLIENTS
                and (a["per_s"] or 0) >= GOAL_PER_S
                and a["p99_ms"] <= GOAL_P99_MS
            )
            say(
                f"goal (>= {GOAL_PER_S}/s with p99 <= {GOAL_P99_MS} ms at {GOAL_CLIENTS} "
                f"clients): empty run {a['per_s']}/s, p99 {a['p99_ms']} ms at {opts.clients} "
                f"clients: {'met' if goal['met_empty'] else 'not met'}"
            )
        paced_names = [n for n in runs if n.startswith("paced") and n in results]
        met = []
        for name in paced_names:
            a = results[name]["activations"]
            # Latency counts from when each activation was due, so a server falling behind
            # shows in the p99: every one answered 201 within it is keeping up.
            kept_up = a["status"] == {"201": len(world.runs[name])}
            met.append(
                opts.clients == GOAL_CLIENTS
                and opts.rate >= GOAL_PER_S
                and kept_up
                and a["p99_ms"] <= GOAL_P99_MS
            )
            say(
                f"goal, {name}: {opts.rate:g}/s offered from {opts.clients} clients, "
                f"{a['per_s']}/s answered, p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms: "
                f"{'met' if met[-1] else 'not met'}"
            )
        if met:
            goal["met_paced"] = met[0]
            goal["met_paced_runs"] = f"{sum(met)} of {len(met)}"
            if len(met) > 1:
                pooled = figures(world.paced, 1.0)
                goal["paced_pooled"] = {k: pooled[k] for k in ("requests", "p50_ms", "p99_ms")}
                say(
                    f"goal, paced: met in {sum(met)} of {len(met)} paced runs; all "
                    f"{pooled['requests']} of their activations together: p50 "
                    f"{pooled['p50_ms']} ms, p99 {pooled['p99_ms']} ms"
                )
        mp = results.get("mixed_paced")
        if mp:
            worst = max(f["p99_ms"] for f in mp["per_reseller"].values())
            goal["met_mixed_paced"] = (
                opts.clients == GOAL_CLIENTS
                and opts.rate >= GOAL_PER_S
                and mp["activations"]["status"] == {"201": len(world.runs["mixed_paced"])}
                and worst <= GOAL_P99_MS
            )
            say(
                f"goal, mixed_paced: {opts.rate:g}/s offered, half from one reseller: every "
                f"reseller's p99 at most {worst} ms: "
                f"{'met' if goal['met_mixed_paced'] else 'not met'}"
            )
        cases = case_figures(opts, results, ratios)
        h_over_e = ratios["history_over_empty"]
        if h_over_e and h_over_e["throughput"] is not None:
            goal["history_within_10pct"] = h_over_e["throughput"] >= 0.9
        if sub:
            a, e = sub["activations"], empty["activations"] if empty else None
            say(
                f"sub-resellers (two levels, two debits per activation) beside one level: "
                f"{a['per_s']} vs {e and e['per_s']} activations/s, p99 {a['p99_ms']} vs "
                f"{e and e['p99_ms']} ms"
            )
        out = {
            "bench": "activations",
            "db": db.kind,
            "customers_per_run": opts.customers,
            "customers_per_case": opts.case_customers if opts.cases else None,
            "clients": opts.clients,
            "resellers": opts.resellers,
            "subresellers": len(world.subs),
            "sub_price": str(SUB_PRICE) if world.subs else None,
            "workers": opts.workers,
            "cpus": os.cpu_count(),
            "seed_s": round(seed_s, 2),
            "warmup": results.get("warmup"),
            "baseline_request": BASELINES[opts.baseline][0],
            "history_rows": world.history,
            "history_insert_s": round(history_s, 2) if history_s is not None else None,
            "empty": empty,
            "paced": paced,
            **{n: results[n] for n in paced_names[1:]},
            "sub": sub,
            "history": history,
            "mixed": mixed,
            "mixed_paced": results.get("mixed_paced"),
            "cases": cases,
            "pgbench": pgb,
            "ratios": ratios,
            "goal": goal,
            "invariants": failed if failed else "ok",
        }
        print(json.dumps(out), flush=True)
        return 1 if failed else 0
    finally:
        if server is not None:
            server.stop()
        if ctx is not None:
            ctx.close()
        db.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-act-"))
    try:
        return run(opts, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
