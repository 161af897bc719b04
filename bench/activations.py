"""Activation benchmark: resellers activating packages through the HTTP API, concurrently.

    python -m bench.activations                 # 2,000 customers, 32 clients, PostgreSQL
    python -m bench.activations --quick         # 200 customers, 8 clients
    python -m bench.activations --db sqlite     # the same on a temporary SQLite file
    python -m bench.activations --workers 2     # two uvicorn worker processes

Scenario (see bench/README.md): a fresh database is seeded through the service layer
(RADIUS-mode routers, one master package and one package, resellers with it assigned,
customers spread over the resellers, tokens); the real app is served by uvicorn in a
subprocess (``server_app`` below is its factory); resellers are topped up through
``POST /topups``; as the baseline, the same clients send as many ``GET /balance``
(an authenticated read: token check, one ledger sum) as there are customers; then every
customer is activated once through
``POST /activations`` from ``--clients`` threads (one keep-alive ``httpx.Client``
each, a distinct idempotency key per activation), and 10% of the keys are sent again
(idempotent replays: 200, the first activation, nothing charged). Afterwards the
database is read and the invariants checked (exact balances, one activation and one
debit per customer, no negative balance, RADIUS rows in place); a failure prints
``INVARIANT FAILED ...`` and exits 1. The invariants are checked after the timing, never
inside it. The last line is one JSON object with every figure.

PostgreSQL (default): a database ``bench_act_<pid>`` is made on 127.0.0.1:5432 (through
the ``postgres`` database) and dropped at the end; ``--db postgresql+psycopg://...`` names
another server (its database is only used to create and drop ours). SQLite: ``--db
sqlite`` uses a temporary file; ``--db sqlite:///path`` a file that must not exist yet.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from provisioner import ledger, registry
from provisioner.auth import create_token
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.models import Account, Activation, Customer, CustomerStatus, LedgerEntry, Reseller
from provisioner.radius_tables import radcheck, radusergroup

ACTOR = "bench"
API = "/api/v1"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ENV_URL = "BENCH_ACT_DATABASE_URL"
ENV_KEY = "BENCH_ACT_KEY_FILE"
MASTER, PACKAGE, PROFILE = "bench-home", "bench-home-20m", "bench-home"
# A price with cents, so the balance check also checks exact decimal arithmetic.
PRICE = Decimal("399.99")
SPARE = 3  # activations' worth of balance left on each reseller at the end
ROUTERS = 4
REPLAY_FRACTION = 0.10


def say(msg: str) -> None:
    print(msg, flush=True)


# ---- the server's app factory (uvicorn --factory bench.activations:server_app) -------------


def server_app() -> Any:
    """The API over the benchmark's database, for uvicorn's ``--factory`` (every worker).

    The database URL and key file come from ``BENCH_ACT_DATABASE_URL`` and
    ``BENCH_ACT_KEY_FILE``; the schema is already migrated by the benchmark.
    """
    from provisioner.api import create_app

    settings = Settings(database_url=os.environ[ENV_URL], key_file=Path(os.environ[ENV_KEY]))
    return create_app(open_context(settings, upgrade=False))


# ---- options --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    db: str | None
    customers: int
    clients: int
    resellers: int
    workers: int
    keep_db: bool
    seed: int
    quick: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.activations",
        description="Concurrent activations through the HTTP API, then idempotent replays.",
    )
    p.add_argument(
        "--db",
        default=None,
        help="default: a fresh PostgreSQL database on 127.0.0.1:5432 (dropped afterwards); "
        "'sqlite' for a temporary SQLite file, or a sqlite:/// or postgresql URL",
    )
    p.add_argument("--customers", type=int, default=None, help="activations (default 2000)")
    p.add_argument("--clients", type=int, default=None, help="concurrent clients (default 32)")
    p.add_argument("--resellers", type=int, default=4, help="resellers (default 4)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--quick", action="store_true", help="200 customers, 8 clients")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=1, help="seed of the order and the replays")
    a = p.parse_args(argv)
    customers = a.customers if a.customers is not None else (200 if a.quick else 2000)
    clients = a.clients if a.clients is not None else (8 if a.quick else 32)
    for name, v in (
        ("customers", customers),
        ("clients", clients),
        ("resellers", a.resellers),
        ("workers", a.workers),
    ):
        if v < 1:
            p.error(f"--{name} must be at least 1")
    return Options(a.db, customers, clients, a.resellers, a.workers, a.keep_db, a.seed, a.quick)


# ---- the database -----------------------------------------------------------------------


@dataclass
class Database:
    url: str
    kind: str
    cleanup: Callable[[], None]


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

    return Database(url, "postgresql", drop)


# ---- seeding ----------------------------------------------------------------------------


@dataclass
class World:
    admin_token: str
    tokens: dict[int, str]  # reseller id -> bearer token
    customers: list[tuple[str, int]]  # (username, reseller id)
    topups: dict[int, Decimal] = field(default_factory=dict)


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
        tokens: dict[int, str] = {}
        for k in range(opts.resellers):
            r = registry.create_reseller(s, ACTOR, {"name": f"bench-res{k + 1}"})
            registry.assign_package(s, ACTOR, r.name, PACKAGE)
            rids.append(r.id)
            tokens[r.id] = create_token(s, role="reseller", reseller=r.name)
        admin_token = create_token(s, role="admin", name=ACTOR)
    customers = [(f"bc{i:06d}", rids[i % len(rids)]) for i in range(opts.customers)]
    for start in range(0, len(customers), 250):
        with transaction(ctx.factory) as s:
            names = {rid: s.get(Reseller, rid).name for rid in rids}  # type: ignore[union-attr]
            for i, (username, rid) in enumerate(customers[start : start + 250], start):
                registry.create_customer(
                    s,
                    ACTOR,
                    {
                        "username": username,
                        "password": f"pw-{username}",
                        "customer_type": "pppoe",
                        "router": f"bench-r{i % ROUTERS + 1}",
                        "reseller": names[rid],
                    },
                )
    return World(admin_token, tokens, customers)


# ---- the server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn in a subprocess, serving ``server_app`` on a free loopback port."""

    def __init__(self, url: str, key_file: Path, workers: int, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {**os.environ, ENV_URL: url, ENV_KEY: str(key_file)}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable, "-m", "uvicorn", "bench.activations:server_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
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


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        f = _stat(pid)
        if f is not None:
            out[pid] = (int(f[11]) + int(f[12])) / tick
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


@dataclass
class Result:
    status: str
    ms: float
    activation_id: int | None = None


Send = Callable[[httpx.Client, Job, dict[str, str]], httpx.Response]


def activate(c: httpx.Client, job: Job, headers: dict[str, str]) -> httpx.Response:
    body = {"customer": job.customer, "package": PACKAGE, "idempotency_key": job.key}
    return c.post(f"{API}/activations", json=body, headers=headers)


def read_balance(c: httpx.Client, job: Job, headers: dict[str, str]) -> httpx.Response:
    """The baseline: an authenticated read through the same server, clients and database
    (token check, one ledger sum), so the ratio is what the activation itself costs."""
    return c.get(f"{API}/balance", headers=headers)


def fire(
    base: str,
    jobs: list[Job],
    tokens: dict[int, str],
    clients: int,
    send: Send = activate,
) -> tuple[list[Result], float]:
    """Send every job from ``clients`` threads; (results in job order, wall seconds)."""
    results: list[Result | None] = [None] * len(jobs)
    nxt = iter(range(len(jobs)))
    take = threading.Lock()
    n = min(clients, len(jobs))
    ready = threading.Barrier(n + 1)
    headers = {rid: {"Authorization": f"Bearer {t}"} for rid, t in tokens.items()}

    def client() -> None:
        with httpx.Client(base_url=base, timeout=120.0) as c:
            c.get(f"{API}/health")  # the connection is made before the clock starts
            ready.wait()
            while True:
                with take:
                    i = next(nxt, None)
                if i is None:
                    return
                job = jobs[i]
                t0 = time.perf_counter()
                try:
                    r = send(c, job, headers[job.reseller_id])
                    ms = (time.perf_counter() - t0) * 1000
                    act_id = r.json().get("id") if r.status_code in (200, 201) else None
                    results[i] = Result(str(r.status_code), ms, act_id)
                except httpx.HTTPError as exc:
                    ms = (time.perf_counter() - t0) * 1000
                    results[i] = Result(type(exc).__name__, ms)

    threads = [threading.Thread(target=client, name=f"client-{k}") for k in range(n)]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return [r if r is not None else Result("not sent", 0.0) for r in results], wall


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_ms:
        return 0.0
    k = max(0, min(len(sorted_ms) - 1, int(-(-q * len(sorted_ms) // 100)) - 1))
    return sorted_ms[k]


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


# ---- invariants (read from the database after the timed phases) -------------------------


def check(
    ctx: Context,
    world: World,
    first: list[Result],
    replays: list[tuple[Job, Result]],
    firsts: dict[str, int | None],
    ledger_before_replay: tuple[int, dict[str, Decimal]],
    api_balances: dict[int, str],
) -> list[str]:
    failed: list[str] = []

    def expect(ok: bool, what: str) -> None:
        if not ok:
            failed.append(what)

    n = len(world.customers)
    per_reseller = Counter(rid for _, rid in world.customers)
    bad = Counter(r.status for r in first if r.status != "201")
    expect(not bad, f"first activations not all 201: {dict(bad)}")
    bad_replays = [
        (j.key, r.status, r.activation_id, firsts.get(j.key))
        for j, r in replays
        if r.status != "200" or r.activation_id is None or r.activation_id != firsts.get(j.key)
    ]
    expect(
        not bad_replays,
        f"{len(bad_replays)} replays were not 200 with the first activation, e.g. "
        f"(key, status, id, first id) {bad_replays[:3]}",
    )
    with transaction(ctx.factory) as s:
        acts = s.scalar(select(func.count()).select_from(Activation))
        expect(acts == n, f"activations rows = {acts}, customers = {n}")
        keys = s.scalar(select(func.count(func.distinct(Activation.idempotency_key))))
        expect(keys == n, f"distinct idempotency keys = {keys}, customers = {n}")
        per_customer = s.scalar(
            select(func.count(func.distinct(Activation.customer_id))).select_from(Activation)
        )
        expect(per_customer == n, f"customers with an activation = {per_customer}, want {n}")
        debits = s.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "activation")
        )
        expect(debits == n, f"activation debits in the ledger = {debits}, customers = {n}")
        for rid, count in sorted(per_reseller.items()):
            account = ledger.account_of("reseller", rid)
            have = ledger.balance(s, account)
            want = world.topups[rid] - count * PRICE
            expect(
                have == want,
                f"{account}: balance {have} != top-ups {world.topups[rid]} - {count} x {PRICE}"
                f" = {want}",
            )
            expect(
                api_balances.get(rid) == str(want),
                f"{account}: GET /balance says {api_balances.get(rid)}, want {want}",
            )
        for account in s.scalars(select(Account.account)):
            b = ledger.balance(s, account)
            expect(b >= 0, f"{account}: negative balance {b}")
        rows, balances = ledger_before_replay
        rows_now = s.scalar(select(func.count()).select_from(LedgerEntry))
        expect(rows_now == rows, f"replays wrote ledger rows: {rows} before, {rows_now} after")
        for account, before in balances.items():
            now = ledger.balance(s, account)
            expect(now == before, f"{account}: replays changed the balance {before} -> {now}")
        active = s.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.status == CustomerStatus.active, Customer.expires_at.is_not(None))
        )
        expect(active == n, f"active customers with an expiry = {active}, want {n}")
        groups = s.scalar(
            select(func.count())
            .select_from(radusergroup)
            .where(radusergroup.c.groupname == PROFILE)
        )
        expect(groups == n, f"radusergroup rows in {PROFILE!r} = {groups}, want {n}")
        expiries = s.scalar(
            select(func.count()).select_from(radcheck).where(radcheck.c.attribute == "Expiration")
        )
        expect(expiries == n, f"radcheck Expiration rows = {expiries}, want {n}")
    return failed


def ledger_state(ctx: Context) -> tuple[int, dict[str, Decimal]]:
    with transaction(ctx.factory) as s:
        rows = int(s.scalar(select(func.count()).select_from(LedgerEntry)) or 0)
        return rows, {a: ledger.balance(s, a) for a in s.scalars(select(Account.account))}


# ---- main -------------------------------------------------------------------------------


def run(opts: Options, workdir: Path) -> int:
    db = open_database(opts, workdir)
    ctx: Context | None = None
    server: Server | None = None
    try:
        key_file = workdir / "secret.key"
        t0 = time.perf_counter()
        ctx = open_context(Settings(database_url=db.url, key_file=key_file))
        world = seed(ctx, opts)
        seed_s = time.perf_counter() - t0
        say(
            f"activations benchmark: {db.kind}, {opts.customers} customers over "
            f"{opts.resellers} resellers, {opts.clients} clients, {opts.workers} worker(s), "
            f"{os.cpu_count()} CPUs; seeded in {seed_s:.1f} s"
        )
        server = Server(db.url, key_file, opts.workers, workdir / "server.log")
        server.wait_ready()
        say(f"server: uvicorn pid {server.proc.pid} on {server.base}")
        admin = {"Authorization": f"Bearer {world.admin_token}"}
        per_reseller = Counter(rid for _, rid in world.customers)
        with httpx.Client(base_url=server.base, timeout=60.0, headers=admin) as c:
            for rid in world.tokens:
                amount = (per_reseller[rid] + SPARE) * PRICE
                r = c.post(
                    f"{API}/topups", json={"account": f"reseller:{rid}", "amount": str(amount)}
                )
                if r.status_code != 201:
                    raise SystemExit(f"top-up of reseller:{rid} failed: {r.status_code} {r.text}")
                world.topups[rid] = amount

        rng = random.Random(opts.seed)
        jobs = [Job(u, rid, f"bench-{opts.seed}-{u}") for u, rid in world.customers]
        rng.shuffle(jobs)
        cpu = CpuMeter(server, db.kind == "postgresql")
        base, base_wall = fire(server.base, jobs, world.tokens, opts.clients, read_balance)
        base_cpu = cpu.stop()
        base_fig = figures(base, base_wall)
        report("baseline (GET /balance)", base_fig, base_cpu)

        cpu = CpuMeter(server, db.kind == "postgresql")
        first, wall = fire(server.base, jobs, world.tokens, opts.clients)
        first_cpu = cpu.stop()
        first_fig = figures(first, wall)
        report("activations", first_fig, first_cpu)
        ratios = {
            "throughput": round(first_fig["per_s"] / base_fig["per_s"], 2),
            "p50": round(first_fig["p50_ms"] / max(base_fig["p50_ms"], 0.1), 2),
            "p99": round(first_fig["p99_ms"] / max(base_fig["p99_ms"], 0.1), 2),
        }
        say(
            f"  vs baseline: {ratios['throughput']}x throughput, {ratios['p50']}x p50, "
            f"{ratios['p99']}x p99"
        )
        firsts = {j.key: r.activation_id for j, r in zip(jobs, first, strict=True)}

        before = ledger_state(ctx)
        sample = rng.sample(jobs, max(1, round(len(jobs) * REPLAY_FRACTION)))
        cpu = CpuMeter(server, db.kind == "postgresql")
        again, replay_wall = fire(server.base, sample, world.tokens, opts.clients)
        replay_cpu = cpu.stop()
        replay_fig = figures(again, replay_wall)
        report("replays", replay_fig, replay_cpu)

        api_balances: dict[int, str] = {}
        for rid, token in world.tokens.items():
            r = httpx.get(
                f"{server.base}{API}/balance",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60.0,
            )
            api_balances[rid] = r.json().get("balance") if r.status_code == 200 else r.text
        failed = check(
            ctx, world, first, list(zip(sample, again, strict=True)), firsts, before, api_balances
        )
        if set(base_fig["status"]) != {"200"}:
            failed.append(f"baseline reads not all 200: {base_fig['status']}")
        for f in failed:
            say(f"INVARIANT FAILED {f}")
        if not failed:
            say("invariants: ok (balances exact, one activation and debit per customer, "
                "no negative balance, replays 200 and free, RADIUS rows in place)")  # fmt: skip
        out = {
            "bench": "activations",
            "db": db.kind,
            "customers": opts.customers,
            "clients": opts.clients,
            "resellers": opts.resellers,
            "workers": opts.workers,
            "cpus": os.cpu_count(),
            "seed_s": round(seed_s, 2),
            "baseline": {**base_fig, "cpu_s": base_cpu},
            "activations": {**first_fig, "cpu_s": first_cpu},
            "activations_over_baseline": ratios,
            "replays": {**replay_fig, "cpu_s": replay_cpu},
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
