"""Invoice benchmark: the monthly invoice job over many monthly customers.

    python -m bench.invoices                    # 100,000 customers, PostgreSQL
    python -m bench.invoices --quick            # 2,000 customers
    python -m bench.invoices --customers 10000  # any N
    python -m bench.invoices --db sqlite        # on a temporary SQLite file
    python -m bench.invoices --quick --cprofile # and the top of a cProfile of the first run

Scenario (see bench/README.md): a fresh database is seeded through the service layer
(one RADIUS-mode router, a monthly PPPoE master package, a package at customer price
PRICE and operator price OPERATOR_PRICE, one reseller with it assigned and topped up),
then N customers are inserted in bulk (set-based, not one service call each): active,
on that package, router and reseller, every one expiring at the same instant T with
billing day T.day. Every other customer gets a balance of one invoice (an ``accounts``
row and its ledger row, so ``ledger.check`` holds). No RADIUS rows are made for them:
the job writes what ``effects`` decides for the customers whose state it changes, and
the benchmark reports what it wrote.

1. **first run**: ``invoices.run(factory, T - invoice_days_ahead)``: every customer is
   due, so N invoices are issued and the half with a balance are paid from it at once
   (the other half keep service through the grace). Timed (wall, this process's CPU,
   and on PostgreSQL the CPU of the server's processes), statements counted (SQLAlchemy's
   ``before_cursor_execute`` plus the statements ``batch.Batch`` sends in psycopg
   pipelines, which SQLAlchemy never sees).
2. **second run**, at the same instant: must issue and pay nothing; timed too.

The job is one transaction, so nothing of a run shows in the database until it commits:
every ``--progress`` seconds (default 30) a line says how many invoices it has inserted
so far, and the last window's rate and CPU per invoice (this process, PostgreSQL).

The invariants are checked after the timing, never inside it: N open or paid invoices,
one per customer, none void; paid invoices = customers with a balance = the job's
count; exactly one ``payments`` row per paid invoice and none for the others;
``ledger.check`` empty; no account below its floor; the reseller's balance moved by its
margin on each paid invoice; the paid customers' expiry at the next period's end, the
others' at T + grace. A failure prints ``INVARIANT FAILED ...`` and exits 1. The last
line is one JSON object with every figure.

PostgreSQL (default): a database ``bench_inv_<pid>`` is made on 127.0.0.1:5432 (through
the ``postgres`` database) and dropped at the end; ``--db postgresql+psycopg://...``
names another server. SQLite: ``--db sqlite`` uses a temporary file; ``--db
sqlite:///path`` a file that must not exist yet.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url

from bench.activations import cpu_of, postgres_pids
from provisioner import batch, billing, invoices, ledger, registry
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.models import (
    Account,
    Customer,
    CustomerStatus,
    CustomerType,
    Invoice,
    Outbox,
    Payment,
    TZDateTime,
)
from provisioner.radius_tables import radcheck, radreply, radusergroup
from provisioner.sale import OPEN, PAID

ACTOR = "bench"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ROUTER, MASTER, PACKAGE, PROFILE, RESELLER = (
    "inv-r1", "inv-home", "inv-home-20m", "inv-home", "inv-res1",
)  # fmt: skip
PRICE, OPERATOR_PRICE = Decimal("500.00"), Decimal("400.00")
# Every customer's paid period ends here; a day every month has, so billing_day = T.day.
T = datetime(2027, 1, 15, tzinfo=UTC)
PASSWORD = "bench-customer-pass"  # one for all: the Encrypted type still encrypts each row
CHUNK = 5000  # customers per bulk INSERT
SEED_REF = "bench-invoices"


def say(msg: str) -> None:
    print(msg, flush=True)


# ---- options --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    db: str | None
    customers: int
    keep_db: bool
    quick: bool
    cprofile: bool
    progress: float = 30.0  # seconds between progress lines during a run; 0: none


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.invoices",
        description="The monthly invoice job (provisioner.invoices.run) over N monthly "
        "customers, half of them paying from their balance.",
    )
    p.add_argument(
        "--db",
        default=None,
        help="default: a fresh PostgreSQL database on 127.0.0.1:5432 (dropped afterwards); "
        "'sqlite' for a temporary SQLite file, or a sqlite:/// or postgresql URL",
    )
    p.add_argument("--customers", type=int, default=None, help="customers (default 100000)")
    p.add_argument("--quick", action="store_true", help="2,000 customers")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument(
        "--cprofile",
        action="store_true",
        help="profile the first run and print its top cumulative entries in provisioner/ "
        "(the profiler slows it: its figures are not comparable)",
    )
    p.add_argument(
        "--progress",
        type=float,
        default=30.0,
        help="seconds between progress lines during a run (default 30; 0: none)",
    )
    a = p.parse_args(argv)
    if a.progress < 0:
        p.error("--progress must not be negative")
    customers = a.customers if a.customers is not None else (2000 if a.quick else 100_000)
    if customers < 2:
        p.error("--customers must be at least 2 (half of them pay)")
    return Options(a.db, customers, a.keep_db, a.quick, a.cprofile, a.progress)


# ---- the database -----------------------------------------------------------------------


@dataclass
class Database:
    url: str
    kind: str
    cleanup: Callable[[], None]


def open_database(opts: Options, workdir: Path) -> Database:
    """A fresh, empty database (as bench.activations makes one, under its own name)."""
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
    name = f"bench_inv_{os.getpid()}"
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

    return Database(url, "postgresql", drop)


# ---- seeding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    reseller_id: int
    customers: int
    with_balance: int  # customers given one invoice's balance
    reseller_balance: Decimal  # the reseller's balance before the job
    seed_s: float


def seed(ctx: Context, n: int) -> World:
    """Router, master package, package and reseller through the service layer; the
    customers, their accounts and ledger rows in bulk."""
    t0 = time.perf_counter()
    with transaction(ctx.factory) as s:
        if s.scalar(select(func.count()).select_from(Customer)):
            raise SystemExit("the database already has customers; give the benchmark a new one")
        router = registry.create_router(
            s,
            ACTOR,
            {
                "name": ROUTER, "host": "127.3.0.1", "api_port": 1, "username": "admin",
                "password": "bench-router-pass", "radius_secret": "bench-radius-secret",
                "customer_types": "pppoe", "mode": "radius",
            },
        )  # fmt: skip
        registry.create_master_package(
            s,
            ACTOR,
            {
                "name": MASTER, "profile_name": PROFILE, "customer_type": "pppoe",
                "billing": "monthly", "rate_down": "20M", "rate_up": "10M",
            },
        )  # fmt: skip
        package, _ = registry.create_package(
            s,
            ACTOR,
            {
                "name": PACKAGE, "master_package": MASTER, "customer_price": str(PRICE),
                "operator_price": str(OPERATOR_PRICE), "visibility": "private",
            },
        )  # fmt: skip
        reseller = registry.create_reseller(s, ACTOR, {"name": RESELLER})
        registry.assign_package(s, ACTOR, RESELLER, PACKAGE)
        # Generous: the job credits the reseller each customer's payment before debiting
        # its own price, so it would not need this; a real reseller has a balance.
        ledger.topup(s, ACTOR, ledger.account_of("reseller", reseller.id), n * OPERATOR_PRICE)
        router_id, package_id, reseller_id = router.id, package.id, reseller.id

    # The customers: one executemany per chunk through Core, so the Encrypted type's bind
    # processor encrypts each password as the service would (one service call each would
    # take hours at 100,000).
    table = cast(Table, Customer.__table__)
    for start in range(0, n, CHUNK):
        rows = [
            {
                "username": f"inv{i:06d}", "password": PASSWORD,
                "customer_type": CustomerType.pppoe, "router_id": router_id,
                "package_id": package_id, "reseller_id": reseller_id,
                "status": CustomerStatus.active, "expires_at": T, "billing_day": T.day,
            }
            for i in range(start, min(start + CHUNK, n))
        ]  # fmt: skip
        with transaction(ctx.factory) as s:
            s.execute(insert(table), rows)

    # Every other customer: one invoice's balance, as an account row and its one ledger
    # row (set-based; the ledger stores integer minor units, as the Money type does).
    at = bindparam("at", type_=TZDateTime())
    with transaction(ctx.factory) as s:
        s.execute(
            text(
                "INSERT INTO accounts (account, balance, floor) "
                "SELECT 'customer:' || id, :minor, 0 FROM customers WHERE id % 2 = 0"
            ),
            {"minor": int(PRICE * 100)},
        )
        s.execute(
            text(
                "INSERT INTO ledger (account, amount, kind, reference, created_by, created_at) "
                "SELECT account, balance, 'topup', :ref, :actor, :at FROM accounts "
                "WHERE account LIKE 'customer:%'"
            ).bindparams(at),
            {"ref": SEED_REF, "actor": ACTOR, "at": datetime.now(UTC)},
        )
        with_balance = s.scalar(
            select(func.count()).select_from(Account).where(Account.account.like("customer:%"))
        )
        bad = ledger.check(s)
        if bad:
            raise SystemExit(f"seeding left the ledger inconsistent: {bad[:3]}")
        reseller_balance = ledger.balance(s, ledger.account_of("reseller", reseller_id))
    # Fresh statistics, as a live database has, and no autovacuum starting mid-run on the
    # tables just filled.
    with ctx.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM (ANALYZE)" if conn.dialect.name == "postgresql" else "ANALYZE"))
    return World(reseller_id, n, int(with_balance or 0), reseller_balance,
                 time.perf_counter() - t0)  # fmt: skip


# ---- counting ---------------------------------------------------------------------------


class StatementCounter:
    """Statements sent while counting, by first keyword: SQLAlchemy's cursor executions,
    and (PostgreSQL) each statement of a ``batch.Batch`` pipeline, which bypasses them.
    ``round_trips`` counts a pipeline as one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: Counter[str] = Counter()
        self.pipelines = 0
        self.pipelined = 0  # statements sent in pipelines
        self.invoices = 0  # INSERT INTO invoices sent: the job's progress, one per invoice

    def _on_execute(self, _c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        self.counts[statement.split(None, 1)[0].upper()] += 1
        if statement.startswith("INSERT INTO invoices"):
            self.invoices += 1

    @contextmanager
    def counting(self) -> Iterator[StatementCounter]:
        self.counts.clear()
        self.pipelines = self.pipelined = self.invoices = 0
        real_run = batch.Batch.run
        me = self

        def counted_run(self: batch.Batch) -> Any:
            # On SQLite a batch runs through Connection.execute: the event counts it.
            if self.pipelined:
                me.pipelines += 1
                for _stmt, _params, compiled, _values in self._items:
                    me.pipelined += 1
                    me.counts[compiled.sql.split(None, 1)[0].upper()] += 1
            return real_run(self)

        event.listen(self.engine, "before_cursor_execute", self._on_execute)
        batch.Batch.run = counted_run  # type: ignore[method-assign]
        try:
            yield self
        finally:
            batch.Batch.run = real_run  # type: ignore[method-assign]
            event.remove(self.engine, "before_cursor_execute", self._on_execute)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def round_trips(self) -> int:
        return self.total - self.pipelined + self.pipelines


# ---- the runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    result: invoices.RunResult
    wall_s: float
    cpu_s: float  # this process
    postgres_cpu_s: float | None  # every postgres process on the machine
    statements: int
    round_trips: int
    by_kind: dict[str, int]


@contextmanager
def progress(counter: StatementCounter, every: float, postgres: bool) -> Iterator[None]:
    """Every ``every`` seconds, how far the run is. The job is one transaction, so nothing
    shows outside this process until it commits; this says whether a long run is worth
    waiting for (0: silent). Each line also gives the last window's rate, CPU (this
    process; the PostgreSQL processes) and the load average: a rate that falls while the
    CPU per invoice stays is the machine's other work, not the job."""
    done = threading.Event()

    def sample() -> tuple[float, float, float, int]:
        pg = sum(cpu_of(postgres_pids()).values()) if postgres else 0.0
        return time.perf_counter(), time.process_time(), pg, counter.invoices

    start = sample()

    def tick() -> None:
        last = start
        while not done.wait(every):
            now = sample()
            wall, cpu, pg, n = (a - b for a, b in zip(now, last, strict=True))
            per = f"{cpu / n * 1000:.1f} ms CPU" if n else "-"
            pg_per = f", postgres {pg / n * 1000:.1f} ms" if n and postgres else ""
            say(
                f"  ... {now[0] - start[0]:.0f} s: {now[3]:,} invoices inserted, "
                f"{counter.total:,} statements; last {wall:.0f} s: {n / wall:.1f}/s, "
                f"{per}{pg_per} per invoice, load {os.getloadavg()[0]:.1f}"
            )
            last = now

    thread = threading.Thread(target=tick, daemon=True)
    if every > 0:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if every > 0:
            thread.join()


def timed_run(
    ctx: Context,
    now: datetime,
    postgres: bool,
    profile: cProfile.Profile | None = None,
    every: float = 0,
) -> Timed:
    counter = StatementCounter(ctx.engine)
    with counter.counting(), progress(counter, every, postgres):
        pg0 = cpu_of(postgres_pids()) if postgres else {}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        result = invoices.run(ctx.factory, now)
        if profile is not None:
            profile.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        pg1 = cpu_of(postgres_pids()) if postgres else {}
    pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) if postgres else None
    return Timed(
        result, wall, cpu, pg, counter.total, counter.round_trips,
        dict(counter.counts.most_common()),
    )  # fmt: skip


def per_s(n: int, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def figures(t: Timed) -> dict[str, Any]:
    r = t.result
    return {
        "issued": r.issued,
        "paid": r.paid,
        "suspended": r.suspended,
        "wall_s": round(t.wall_s, 2),
        "cpu_s": round(t.cpu_s, 2),
        "postgres_cpu_s": None if t.postgres_cpu_s is None else round(t.postgres_cpu_s, 2),
        "issued_per_s": per_s(r.issued, t.wall_s),
        "paid_per_s": per_s(r.paid, t.wall_s),
        "statements": t.statements,
        "round_trips": t.round_trips,
        "statements_per_invoice": round(t.statements / r.issued, 2) if r.issued else None,
        "round_trips_per_invoice": round(t.round_trips / r.issued, 2) if r.issued else None,
        "statements_by_kind": t.by_kind,
    }


def report(name: str, f: dict[str, Any]) -> None:
    pg = f"; postgres CPU {f['postgres_cpu_s']} s" if f["postgres_cpu_s"] is not None else ""
    say(
        f"{name}: issued {f['issued']:,}, paid {f['paid']:,}, suspended {f['suspended']:,}; "
        f"wall {f['wall_s']} s, CPU {f['cpu_s']} s (this process){pg}"
    )
    if f["issued"]:
        say(
            f"  {f['issued_per_s']} issued/s, {f['paid_per_s']} paid/s; "
            f"{f['statements_per_invoice']} statements per invoice "
            f"({f['round_trips_per_invoice']} round trips)"
        )
    say(
        f"  statements {f['statements']:,} ({f['round_trips']:,} round trips): "
        + ", ".join(f"{k} {v:,}" for k, v in f["statements_by_kind"].items())
    )


# ---- side effects and invariants ----------------------------------------------------------


def side_rows(ctx: Context) -> dict[str, int]:
    """Rows of the tables the job may touch through ``effects``."""
    with transaction(ctx.factory) as s:
        return {
            name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for name, t in (
                ("radcheck", radcheck), ("radreply", radreply), ("radusergroup", radusergroup),
                ("outbox", Outbox.__table__),
            )
        }  # fmt: skip


def check(ctx: Context, world: World, first: Timed, second: Timed) -> list[str]:
    """Every invariant that fails, as a sentence (none: all hold)."""
    n, paid_expected = world.customers, world.with_balance
    failed: list[str] = []
    grace = timedelta(days=ctx.settings.invoice_grace_days)
    period_end, _ = billing.month_from(T, T.day)
    with transaction(ctx.factory) as s:
        count = func.count()
        live = Invoice.status.in_((OPEN, PAID))
        total, customers = s.execute(
            select(count, func.count(Invoice.customer_id.distinct())).where(live)
        ).one()
        if (total, customers) != (n, n):
            failed.append(
                f"{total} open+paid invoices over {customers} customers, not {n} (one each)"
            )
        other = s.scalar(select(count).select_from(Invoice).where(~live))
        if other:
            failed.append(f"{other} invoices neither open nor paid")
        paid = s.scalar(select(count).select_from(Invoice).where(Invoice.status == PAID))
        if paid != paid_expected:
            failed.append(f"{paid} paid invoices, {paid_expected} customers with a balance")
        if first.result.paid != paid_expected or first.result.issued != n:
            failed.append(
                f"the first run reported issued {first.result.issued}, paid "
                f"{first.result.paid}; expected {n} and {paid_expected}"
            )
        if (second.result.issued, second.result.paid) != (0, 0):
            failed.append(
                f"the second run issued {second.result.issued} and paid "
                f"{second.result.paid}; expected 0 and 0"
            )
        payments = (
            select(count)
            .select_from(Payment)
            .where(Payment.invoice_id == Invoice.id)
            .scalar_subquery()
        )
        not_one = s.scalar(
            select(count).select_from(Invoice).where(Invoice.status == PAID, payments != 1)
        )
        if not_one:
            failed.append(f"{not_one} paid invoices without exactly one payments row")
        stray = s.scalar(
            select(count)
            .select_from(Payment)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.status != PAID)
        )
        if stray:
            failed.append(f"{stray} payments rows of invoices not paid")
        bad = ledger.check(s)
        if bad:
            failed.append(f"ledger.check: {len(bad)} mismatches, e.g. {bad[:3]}")
        below = s.scalar(select(count).select_from(Account).where(Account.balance < Account.floor))
        if below:
            failed.append(f"{below} accounts below their floor")
        margin = (PRICE - OPERATOR_PRICE) * paid_expected
        now_reseller = ledger.balance(s, ledger.account_of("reseller", world.reseller_id))
        if now_reseller != world.reseller_balance + margin:
            failed.append(
                f"reseller balance {now_reseller}, expected {world.reseller_balance} + "
                f"{margin} (its margin on each paid invoice)"
            )
        left = s.scalar(
            select(count)
            .select_from(Account)
            .where(Account.account.like("customer:%"), Account.balance != 0)
        )
        if left:
            failed.append(f"{left} customer balances not spent on their invoice")
        # Paid: the next period's end; unpaid: service through the grace.
        with_balance = Customer.id.in_(select(Invoice.customer_id).where(Invoice.status == PAID))
        moved = s.scalar(
            select(count)
            .select_from(Customer)
            .where(with_balance, Customer.expires_at == period_end)
        )
        if moved != paid_expected:
            failed.append(f"{moved} paid customers expire at {period_end}, not {paid_expected}")
        if grace:
            graced = s.scalar(
                select(count)
                .select_from(Customer)
                .where(~with_balance, Customer.expires_at == T + grace)
            )
            if graced != n - paid_expected:
                failed.append(
                    f"{graced} unpaid customers expire at T + grace, not {n - paid_expected}"
                )
    return failed


# ---- main -------------------------------------------------------------------------------


def top_of_profile(profile: cProfile.Profile, entries: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats("cumulative")
    stats.print_stats("provisioner/", entries)  # our code only: the library below is noise
    return out.getvalue()


def run(opts: Options, workdir: Path) -> int:
    db = open_database(opts, workdir)
    ctx: Context | None = None
    try:
        ctx = open_context(Settings(database_url=db.url, key_file=workdir / "key"))
        postgres = db.kind == "postgresql"
        world = seed(ctx, opts.customers)
        ahead = ctx.settings.invoice_days_ahead
        now = T - timedelta(days=ahead)
        say(
            f"invoices benchmark: {db.kind}, {world.customers:,} monthly customers expiring "
            f"{T:%Y-%m-%d %H:%M}Z, {world.with_balance:,} with one invoice's balance "
            f"({PRICE}); job run as of {now:%Y-%m-%d} (invoice_days_ahead {ahead}, "
            f"grace {ctx.settings.invoice_grace_days} d); {os.cpu_count()} CPUs; seeded in "
            f"{world.seed_s:.1f} s"
        )
        before = side_rows(ctx)
        profile = cProfile.Profile() if opts.cprofile else None
        first = timed_run(ctx, now, postgres, profile, opts.progress)
        first_fig = figures(first)
        report("first run" + (" (under cProfile)" if profile else ""), first_fig)
        after = side_rows(ctx)
        written = {k: after[k] - before[k] for k in after}
        first_fig["rows_added"] = written
        say("  rows added by effects: " + ", ".join(f"{k} {v:,}" for k, v in written.items()))
        second = timed_run(ctx, now, postgres, every=opts.progress)
        second_fig = figures(second)
        report("second run, same instant", second_fig)
        if profile is not None:
            say("--- cProfile of the first run, by cumulative time, provisioner/ only ---")
            say(top_of_profile(profile))

        failed = check(ctx, world, first, second)
        for what in failed:
            say(f"INVARIANT FAILED {what}")
        if not failed:
            say(
                "invariants: ok (one open or paid invoice per customer, paid = customers "
                "with a balance, one payment per paid invoice, ledger.check empty, no "
                "account below its floor, reseller margin exact, expiries moved; second "
                "run issued and paid nothing)"
            )
        out = {
            "bench": "invoices",
            "db": db.kind,
            "customers": world.customers,
            "with_balance": world.with_balance,
            "cpus": os.cpu_count(),
            "seed_s": round(world.seed_s, 2),
            "invoice_days_ahead": ahead,
            "invoice_grace_days": ctx.settings.invoice_grace_days,
            "cprofile": opts.cprofile,
            "first": first_fig,
            "second": second_fig,
            "invariants": failed if failed else "ok",
        }
        print(json.dumps(out), flush=True)
        return 1 if failed else 0
    finally:
        if ctx is not None:
            ctx.close()
        db.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-inv-"))
    try:
        return run(opts, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
