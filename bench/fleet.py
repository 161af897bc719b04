"""Fleet benchmark: the sync engine against many simulated RouterOS routers.

    python -m bench.fleet            # 200 routers x (50 profiles, 2,000 secrets)
    python -m bench.fleet --quick    # 10 routers x (20 profiles, 200 secrets)

Scenario (see bench/README.md): registry set-up, first sync from empty, a no-change pass,
drift made by hand on every router then repaired, and a naive "remove every managed
object and add it again" baseline (REFERENCE.md §8) run with librouteros directly on the
same fleet from an equally drifted state. Writes, reads and connections are counted by
the simulators, not by the engine. Exits 1 when an invariant fails (writes on a converged
fleet, drift repair writes != drifted objects, a hand-made object touched, a router not
converged).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import librouteros
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from nas_adapters.routeros_sim import SimulatedFleet, SimulatedRouter
from provisioner import registry
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.fleet import processes as fleet_processes
from provisioner.fleet import usage as fleet_usage
from provisioner.mapping.marker import parse_marker
from provisioner.mapping.menus import POOL, PPP_PROFILE, PPP_SECRET
from provisioner.mapping.routeros import desired_objects
from provisioner.models import Customer, CustomerStatus, CustomerType, NasObject, Router
from provisioner.state import all_masters, options, router_customers, router_spec
from provisioner.sync import sync_many

T = TypeVar("T")

ACTOR = "bench"
SIM_USER, SIM_PASSWORD = "admin", "bench-router-pass"
# The menus a pppoe/local router carries for us, in add order (removes go in reverse).
MANAGED_MENUS = (POOL, PPP_PROFILE, PPP_SECRET)
HANDMADE_COMMENT = "added by hand on the router"
NOISE_CALLER_ID = "00:0C:29:AA:BB:CC"


def say(msg: str) -> None:
    print(msg, flush=True)


# ---- options ------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    routers: int
    profiles: int
    secrets: int
    drift: float
    concurrency: int
    db: str | None
    keep_db: bool
    seed: int
    latency_ms: float = 0.0
    resync: bool = False
    processes: int | None = None
    engine_only: bool = False


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench.fleet",
        description="Benchmark the sync engine against a fleet of simulated RouterOS routers.",
    )
    p.add_argument("--routers", type=int, default=None, help="routers (default 200)")
    p.add_argument("--profiles", type=int, default=None, help="profiles per router (default 50)")
    p.add_argument(
        "--secrets", type=int, default=None, help="PPPoE secrets per router (default 2000)"
    )
    p.add_argument(
        "--drift", type=float, default=0.01, help="fraction of objects drifted (default 0.01)"
    )
    p.add_argument(
        "--concurrency", type=int, default=16, help="routers synced at once (default 16)"
    )
    p.add_argument(
        "--db",
        default=None,
        help="database: default a temporary SQLite file; a PostgreSQL URL (e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/test) gets a fresh database "
        "created on that server and dropped afterwards",
    )
    p.add_argument("--quick", action="store_true", help="10 routers, 20 profiles, 200 secrets")
    p.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    p.add_argument("--seed", type=int, default=1, help="seed of the drift (default 1)")
    p.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="delay of every simulator reply, a stand-in for the round trip (default 0)",
    )
    p.add_argument(
        "--resync",
        action="store_true",
        help="after the baseline, sync once more with the engine (must write nothing)",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="processes the engine's fleet passes spread over (sync_processes; default "
        "one per core on PostgreSQL; SQLite always syncs in this process)",
    )
    p.add_argument(
        "--engine-only",
        action="store_true",
        help="the engine's passes only (first sync, no-change, drift repair): no naive "
        "baseline, no single-router pushes",
    )
    a = p.parse_args(argv)
    routers, profiles, secrets = (10, 20, 200) if a.quick else (200, 50, 2000)
    opts = Options(
        routers=a.routers if a.routers is not None else routers,
        profiles=a.profiles if a.profiles is not None else profiles,
        secrets=a.secrets if a.secrets is not None else secrets,
        drift=a.drift,
        concurrency=a.concurrency,
        db=a.db,
        keep_db=a.keep_db,
        seed=a.seed,
        latency_ms=a.latency,
        resync=a.resync,
        processes=a.processes,
        engine_only=a.engine_only,
    )
    if not (1 <= opts.routers <= 60_000 and 1 <= opts.profiles <= 4096 and opts.secrets >= 1):
        p.error("need 1..60000 routers, 1..4096 profiles and at least 1 secret")
    if not 0 < opts.drift <= 0.2:
        p.error("--drift must be in (0, 0.2]")
    if opts.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if not 0 <= opts.latency_ms <= 1000:
        p.error("--latency must be 0..1000 ms")
    return opts


# ---- database -----------------------------------------------------------------------


@dataclass
class Database:
    url: str
    kind: str
    cleanup: Callable[[], None]


def open_database(opts: Options, workdir: Path) -> Database:
    """A fresh, empty database: a SQLite file in `workdir`, or a new PostgreSQL database."""
    if opts.db is None or opts.db.startswith("sqlite"):
        url = opts.db or f"sqlite:///{workdir / 'bench.sqlite3'}"
        return Database(url, "sqlite", lambda: None)
    given = make_url(opts.db)
    if given.get_backend_name() != "postgresql":
        raise SystemExit(f"--db: only SQLite and PostgreSQL URLs are supported, not {opts.db}")
    name = f"bench_fleet_{uuid.uuid4().hex[:10]}"
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
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


# ---- fleet and registry -------------------------------------------------------------


def loopback(i: int) -> str:
    """Router i's own loopback address: 127.1.0.1, 127.1.0.2, ... (250 per /24)."""
    return f"127.1.{i // 250}.{i % 250 + 1}"


def start_fleet(count: int, latency_ms: float = 0.0) -> SimulatedFleet:
    fleet = SimulatedFleet(count, username=SIM_USER, password=SIM_PASSWORD)
    for i, sim in enumerate(fleet.routers):
        sim.host = loopback(i)  # bound at start(); the registry's hosts must be unique
        sim.latency = latency_ms / 1000
    return fleet.start()


def sim_cpu_seconds() -> float | None:
    """CPU time of the simulators' event-loop thread (Linux), to tell it from ours."""
    for t in threading.enumerate():
        if t.name == "routeros-sim-fleet" and t.native_id is not None:
            try:
                stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
            except OSError:
                return None
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def process_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def profile_name(k: int) -> str:
    return f"bench-{k:04d}"


def setup_registry(ctx: Context, fleet: SimulatedFleet, opts: Options) -> list[int]:
    """Routers, master packages and packages through the service layer; customers in bulk."""
    with transaction(ctx.factory) as s:
        router_ids = []
        for i, sim in enumerate(fleet.routers):
            r = registry.create_router(
                s,
                ACTOR,
                {
                    "name": f"r{i:05d}",
                    "host": sim.host,
                    "api_port": sim.port,
                    "username": SIM_USER,
                    "password": SIM_PASSWORD,
                    "radius_secret": f"radius-{i}",
                    "mode": "local",
                    "customer_types": "pppoe",
                },
            )
            router_ids.append(r.id)
        package_ids = []
        for k in range(opts.profiles):
            net = f"10.{64 + k // 256}.{k % 256}"
            m = registry.create_master_package(
                s,
                ACTOR,
                {
                    "name": profile_name(k),
                    "customer_type": "pppoe",
                    "billing": "monthly",
                    "rate_down": f"{5 + k}M",
                    "rate_up": f"{1 + k // 2}M",
                    "pool_name": f"pool-{k:04d}",
                    "pool_ranges": f"{net}.2-{net}.254",
                },
            )
            p, _ = registry.create_package(
                s,
                ACTOR,
                {
                    "name": f"{profile_name(k)}-retail",
                    "master_package": m.name,
                    "customer_price": "500",
                    "operator_price": "400",
                },
            )
            package_ids.append(p.id)
    # One transaction, one executemany per router (passwords are encrypted on the way in).
    with transaction(ctx.factory) as s:
        for i, rid in enumerate(router_ids):
            rows = [
                {
                    "username": f"r{i:05d}-u{j:05d}",
                    "password": f"pw-{i}-{j}-{(i * 7919 + j * 104729) % 1_000_003:x}",
                    "customer_type": CustomerType.pppoe,
                    "router_id": rid,
                    "package_id": package_ids[(i + j) % len(package_ids)],
                    "status": CustomerStatus.active,
                }
                for j in range(opts.secrets)
            ]
            s.execute(insert(Customer), rows)
    return router_ids


# ---- measuring ----------------------------------------------------------------------


@dataclass
class PassFigures:
    """One pass over the whole fleet, as the simulators counted it."""

    name: str
    wall_s: float
    routers: int
    writes: int
    reads: int
    connections: int
    commands: int
    writes_range: tuple[int, int]
    reads_range: tuple[int, int]
    connections_range: tuple[int, int]
    reads_by_menu: dict[str, int]  # of the first router
    cpu_s: float = 0.0  # this process: engine, database driver and simulators together
    sim_cpu_s: float | None = None  # of which the simulators' thread
    rss_before_mb: float = 0.0  # resident before the pass (simulators' state included)
    rss_peak_mb: float = 0.0  # the most resident during the pass
    fleet_cpu_s: float = 0.0  # the fleet's sync processes (provisioner.fleet)
    fleet_rss_peak_mb: float = 0.0  # the most any of them held
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def engine_cpu_s(self) -> float:
        return self.cpu_s - (self.sim_cpu_s or 0.0) + self.fleet_cpu_s

    def per_router(self, total: int) -> float:
        return total / self.routers if self.routers else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "writes": self.writes,
            "writes_per_router": round(self.per_router(self.writes), 2),
            "reads": self.reads,
            "reads_per_router": round(self.per_router(self.reads), 2),
            "connections_per_router": round(self.per_router(self.connections), 2),
            "commands": self.commands,
            "writes_min_max": list(self.writes_range),
            "reads_min_max": list(self.reads_range),
            "connections_min_max": list(self.connections_range),
            "cpu_s": round(self.cpu_s, 2),
            "sim_cpu_s": None if self.sim_cpu_s is None else round(self.sim_cpu_s, 2),
            "engine_cpu_s": round(self.engine_cpu_s, 2),
            "rss_before_mb": round(self.rss_before_mb),
            "rss_peak_mb": round(self.rss_peak_mb),
            "fleet_cpu_s": round(self.fleet_cpu_s, 2),
            "fleet_rss_peak_mb": round(self.fleet_rss_peak_mb),
            "failed_routers": self.failed,
        }


def _range(values: list[int]) -> tuple[int, int]:
    return (min(values), max(values)) if values else (0, 0)


def _status_mb(field_name: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB; 0 elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reset_peak_rss() -> None:
    """Start a new high-water mark of resident memory (Linux: clear_refs 5), so a pass's
    peak is its own, not an earlier pass's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(name: str, fleet: SimulatedFleet, run: Callable[[], T]) -> tuple[PassFigures, T]:
    for sim in fleet.routers:
        sim.reset_stats()
    reset_peak_rss()
    rss_before = _status_mb("VmRSS")
    sim_cpu, cpu = sim_cpu_seconds(), process_cpu_seconds()
    spread_cpu = fleet_usage.cpu_s
    fleet_usage.peak_rss_mb = 0.0
    start = time.perf_counter()
    out = run()
    wall = time.perf_counter() - start
    cpu = process_cpu_seconds() - cpu
    sim_after = sim_cpu_seconds()
    sim_cpu = None if sim_cpu is None or sim_after is None else sim_after - sim_cpu
    stats = [sim.stats for sim in fleet.routers]
    writes = [st.writes for st in stats]
    reads = [st.reads for st in stats]
    conns = [st.connections for st in stats]
    figures = PassFigures(
        name=name,
        wall_s=wall,
        routers=len(stats),
        writes=sum(writes),
        reads=sum(reads),
        connections=sum(conns),
        commands=sum(st.commands for st in stats),
        writes_range=_range(writes),
        reads_range=_range(reads),
        connections_range=_range(conns),
        reads_by_menu=dict(stats[0].reads_by_menu) if stats else {},
        cpu_s=cpu,
        sim_cpu_s=sim_cpu,
        rss_before_mb=rss_before,
        rss_peak_mb=_status_mb("VmHWM"),
        fleet_cpu_s=fleet_usage.cpu_s - spread_cpu,
        fleet_rss_peak_mb=fleet_usage.peak_rss_mb,
    )
    return figures, out


def engine_pass(
    name: str,
    ctx: Context,
    fleet: SimulatedFleet,
    ids: list[int],
    settings: Settings | None = None,
) -> PassFigures:
    say(f"-- {name}: sync_many over {len(ids)} routers ...")
    figures, results = measure(
        name,
        fleet,
        lambda: sync_many(
            ctx.factory,
            settings or ctx.settings,
            ids,
            trigger="bench",
            keep_plans=False,
            spread=True,
        ),
    )
    figures.routers = len(ids)
    note_failures(figures, [(r.router, r.status, r.error) for r in results if r.status != "ok"])
    planned = sum(r.planned for r in results)
    applied = sum(r.applied for r in results)
    say(
        f"   {figures.wall_s:.2f} s, {figures.writes} writes (engine: {planned} planned, "
        f"{applied} applied), {figures.reads} reads, {figures.failed} routers not ok"
    )
    return figures


def note_failures(figures: PassFigures, bad: list[tuple[str, str, str | None]]) -> None:
    figures.failed = len(bad)
    figures.errors = [f"{name}: {status}: {error}" for name, status, error in bad[:5]]
    for line in figures.errors:
        say(f"   ! {line}")


# ---- drift --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """After a repair, `name` in `menu` of router `router` exists, and `prop` (if any)
    reads `value` again (a managed property put back, or an unmanaged one left alone)."""

    router: int
    menu: str
    name: str
    prop: str | None = None
    value: str | None = None


@dataclass
class Drift:
    objects: int = 0  # D: managed objects changed or removed; each needs exactly one write
    kinds: dict[str, int] = field(default_factory=dict)
    unmanaged_edits: int = 0  # properties we do not manage, changed: need no write
    expects: list[Expect] = field(default_factory=list)
    handmade: dict[int, dict[str, str]] = field(default_factory=dict)  # router → its row

    def count(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind != "unmanaged":
            self.objects += 1


def _ours(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if parse_marker(r.get("comment", "")) is not None]


def _share(fraction: float, n: int, floor: int) -> int:
    return min(n, max(floor, round(fraction * n))) if n else 0


def make_drift(fleet: SimulatedFleet, fraction: float, seed: int) -> Drift:
    """Change `fraction` of every router's managed objects by hand, plus a few unmanaged
    properties and one hand-made secret (added once, kept across drifts)."""
    drift = Drift()
    for i, sim in enumerate(fleet.routers):
        rng = random.Random(seed * 1_000_003 + i)
        pools, profiles, secrets = (_ours(sim.items(m)) for m in MANAGED_MENUS)
        names = [p["name"] for p in profiles]
        for row in rng.sample(pools, _share(fraction, len(pools), 1)):
            drift.expects.append(Expect(i, POOL, row["name"], "ranges", row["ranges"]))
            sim.set_item(POOL, row[".id"], ranges="192.168.250.2-192.168.250.9")
            drift.count("pool ranges")
        for row in rng.sample(profiles, _share(fraction, len(profiles), 1)):
            drift.expects.append(
                Expect(i, PPP_PROFILE, row["name"], "rate-limit", row["rate-limit"])
            )
            sim.set_item(PPP_PROFILE, row[".id"], rate_limit="1k/1k")
            drift.count("profile rate-limit")
        k = _share(fraction, len(secrets), 4)
        noise = max(1, k // 4)
        picked = rng.sample(secrets, min(len(secrets), k + noise))
        for j, row in enumerate(picked[:k]):
            name, sid = row["name"], row[".id"]
            kind = j % 4
            if kind == 0:
                drift.expects.append(Expect(i, PPP_SECRET, name, "password", row["password"]))
                sim.set_item(PPP_SECRET, sid, password=row["password"] + "-changed")
                drift.count("secret password")
            elif kind == 1:
                other = next((n for n in names if n != row["profile"]), "default")
                drift.expects.append(Expect(i, PPP_SECRET, name, "profile", row["profile"]))
                sim.set_item(PPP_SECRET, sid, profile=other)
                drift.count("secret profile")
            elif kind == 2:
                drift.expects.append(Expect(i, PPP_SECRET, name, "disabled", row["disabled"]))
                flipped = "no" if row["disabled"] == "true" else "yes"
                sim.set_item(PPP_SECRET, sid, disabled=flipped)
                drift.count("secret disabled")
            else:
                drift.expects.append(Expect(i, PPP_SECRET, name))
                sim.remove_item(PPP_SECRET, sid)
                drift.count("secret removed")
        for row in picked[k:]:
            drift.expects.append(Expect(i, PPP_SECRET, row["name"], "caller-id", NOISE_CALLER_ID))
            sim.set_item(PPP_SECRET, row[".id"], caller_id=NOISE_CALLER_ID)
            drift.count("unmanaged")
            drift.unmanaged_edits += 1
        drift.handmade[i] = handmade_secret(sim, i)
    return drift


def handmade_secret(sim: SimulatedRouter, i: int) -> dict[str, str]:
    """The router's hand-made, unmarked secret (made on first call) as `print` shows it."""
    name = f"handmade-{i}"
    for row in sim.items(PPP_SECRET):
        if row.get("name") == name:
            return row
    sim.add_item(
        PPP_SECRET, name=name, password="by-hand", profile="default", comment=HANDMADE_COMMENT
    )
    return next(r for r in sim.items(PPP_SECRET) if r.get("name") == name)


def check_drift_repaired(fleet: SimulatedFleet, drift: Drift) -> tuple[list[str], int]:
    """Every drifted object back and hand-made secrets untouched (problems), and how many
    unmanaged edits were lost (a repair that keeps what it does not manage loses none)."""
    problems: list[str] = []
    lost = 0
    by_router: dict[int, list[Expect]] = {}
    for e in drift.expects:
        by_router.setdefault(e.router, []).append(e)
    for i, expects in by_router.items():
        sim = fleet.routers[i]
        rows = {m: {r.get("name", ""): r for r in sim.items(m)} for m in MANAGED_MENUS}
        for e in expects:
            row = rows[e.menu].get(e.name)
            if row is None:
                problems.append(f"router {i}: {e.menu} {e.name} missing after repair")
            elif e.prop == "caller-id" and row.get(e.prop) != e.value:
                lost += 1
            elif e.prop is not None and row.get(e.prop) != e.value:
                problems.append(
                    f"router {i}: {e.menu} {e.name} {e.prop}={row.get(e.prop)!r}, "
                    f"expected {e.value!r}"
                )
    problems += check_handmade(fleet, drift)
    return problems, lost


def check_records(ctx: Context, when: str, expected: int) -> list[str]:
    """The engine's ownership records: one per managed object, none stale."""
    with transaction(ctx.factory) as s:
        records = s.scalar(select(func.count()).select_from(NasObject)) or 0
    return [] if records == expected else [f"{when}: {records} ownership records, not {expected}"]


def check_counts(fleet: SimulatedFleet, opts: Options) -> list[str]:
    """Every router carries exactly its pools, profiles and secrets, each once."""
    want = {POOL: opts.profiles, PPP_PROFILE: opts.profiles, PPP_SECRET: opts.secrets}
    problems = []
    for i, sim in enumerate(fleet.routers):
        for menu, n in want.items():
            names = [r["name"] for r in _ours(sim.items(menu))]
            if len(names) != n or len(set(names)) != n:
                problems.append(f"router {i}: {len(names)} of our {menu} items, expected {n}")
    return problems


def check_handmade(fleet: SimulatedFleet, drift: Drift) -> list[str]:
    problems = []
    for i, before in drift.handmade.items():
        now = next(
            (r for r in fleet.routers[i].items(PPP_SECRET) if r.get(".id") == before[".id"]),
            None,
        )
        if now != before:
            problems.append(f"router {i}: hand-made secret changed: {before} -> {now}")
    return problems


def wipe(sim: SimulatedRouter) -> int:
    """Remove every object of ours from a router by hand (users first), leaving it as a
    router never synced; hand-made objects stay. Returns how many were removed."""
    n = 0
    for menu in reversed(MANAGED_MENUS):
        for row in _ours(sim.items(menu)):
            sim.remove_item(menu, row[".id"])
            n += 1
    return n


# ---- the naive baseline -------------------------------------------------------------


def naive_router(ctx: Context, router_id: int) -> None:
    """What REFERENCE.md §8's tools amount to, made generous: one connection, one print
    per menu, then remove every managed object and add every desired one again."""
    with transaction(ctx.factory) as s:
        router = s.get(Router, router_id)
        assert router is not None
        spec = router_spec(router)
        desired = desired_objects(
            spec, all_masters(s), router_customers(s, router_id), options(ctx.settings)
        )
        host, port, user, password = router.host, router.api_port, router.username, router.password
    api = librouteros.connect(
        host,
        user,
        password,
        port=port,
        encoding="utf-8",
        timeout=ctx.settings.router_timeout_seconds,
    )
    try:
        for menu in reversed(MANAGED_MENUS):  # users before the profiles and pools they use
            rows = api.rawCmd(f"{menu}/print", "=.proplist=.id,comment")
            for row in rows:
                if parse_marker(str(row.get("comment", ""))) is not None:
                    tuple(api.rawCmd(f"{menu}/remove", f"=.id={row['.id']}"))
        for obj in desired:
            if obj.menu in MANAGED_MENUS:
                tuple(api.rawCmd(f"{obj.menu}/add", *(f"={k}={v}" for k, v in obj.props.items())))
    finally:
        api.close()


def naive_pass(
    ctx: Context, fleet: SimulatedFleet, ids: list[int], concurrency: int
) -> PassFigures:
    say(f"-- naive baseline: remove + re-add over {len(ids)} routers ...")

    def one(rid: int) -> tuple[int, str | None]:
        try:
            naive_router(ctx, rid)
            return rid, None
        except Exception as exc:  # noqa: BLE001 - reported as a failed router
            return rid, f"{type(exc).__name__}: {exc}"

    def run() -> list[tuple[int, str | None]]:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(ids)))) as pool:
            return list(pool.map(one, ids))

    figures, results = measure("naive baseline", fleet, run)
    note_failures(figures, [(str(rid), "failed", err) for rid, err in results if err])
    say(f"   {figures.wall_s:.2f} s, {figures.writes} writes, {figures.reads} reads")
    return figures


# ---- report -------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def print_table(passes: list[PassFigures]) -> None:
    head = (
        f"{'pass':<30}{'routers':>8}{'wall s':>8}{'writes':>9}{'writes/rtr':>11}{'reads/rtr':>10}"
        f"{'ms/rtr':>8}{'cpu s':>7}{'sim cpu':>8}{'procs':>7}{'engine':>7}{'RSS MB':>7}"
        f"{'peak':>6}{'procs':>6}{'failed':>7}"
    )
    say("")
    say(head)
    say("-" * len(head))
    for p in passes:
        ms = 1000 * p.wall_s / p.routers if p.routers else 0.0
        sim = "-" if p.sim_cpu_s is None else f"{p.sim_cpu_s:.1f}"
        say(
            f"{p.name:<30}{p.routers:>8}{p.wall_s:>8.2f}{p.writes:>9}"
            f"{p.per_router(p.writes):>11.1f}{p.per_router(p.reads):>10.1f}"
            f"{ms:>8.1f}{p.cpu_s:>7.1f}{sim:>8}{p.fleet_cpu_s:>7.1f}{p.engine_cpu_s:>7.1f}"
            f"{p.rss_before_mb:>7.0f}{p.rss_peak_mb:>6.0f}{p.fleet_rss_peak_mb:>6.0f}"
            f"{p.failed:>7}"
        )
    say(
        "cpu s: this process (engine, drivers, simulators); sim cpu: the simulators' thread; "
        "procs: the fleet's sync processes (a pass spread over them); engine = cpu - sim + "
        "procs; RSS MB: resident before the pass (simulators' routers included), peak: its "
        "high-water mark during the pass, procs: the most any sync process held"
    )


def run(opts: Options) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    db = open_database(opts, workdir)
    fleet: SimulatedFleet | None = None
    ctx: Context | None = None
    failures: list[str] = []
    try:
        say(
            f"fleet benchmark: {opts.routers} routers x ({opts.profiles} profiles + pools, "
            f"{opts.secrets} secrets), drift {opts.drift:g}, concurrency {opts.concurrency}, "
            f"db {db.kind}, reply latency {opts.latency_ms:g} ms"
        )
        t0 = time.perf_counter()
        settings = Settings(
            database_url=db.url,
            secret_key=Fernet.generate_key().decode(),
            key_file=workdir / "secret.key",
            sync_concurrency=opts.concurrency,
            sync_processes=opts.processes,
            router_timeout_seconds=30.0,
        )
        ctx = open_context(settings)
        procs = fleet_processes(settings, ctx.engine.dialect.name)
        say(f"fleet passes in {procs} process{'es' * (procs > 1)} ({os.cpu_count()} cores)")
        fleet = start_fleet(opts.routers, opts.latency_ms)
        t_fleet = time.perf_counter()
        ids = setup_registry(ctx, fleet, opts)
        setup_s = time.perf_counter() - t0
        say(
            f"set-up: {setup_s:.1f} s (migrate + {opts.routers} simulators "
            f"{t_fleet - t0:.1f} s, registry {time.perf_counter() - t_fleet:.1f} s; "
            f"{opts.routers * opts.secrets} customers)"
        )
        per_router = 2 * opts.profiles + opts.secrets  # pools + profiles + secrets

        first = engine_pass("first sync", ctx, fleet, ids)
        if first.failed or first.writes != per_router * opts.routers:
            failures.append(
                f"first sync: {first.writes} writes, expected {per_router * opts.routers} "
                f"({first.failed} routers not ok)"
            )
        failures += check_records(ctx, "first sync", per_router * opts.routers)

        steady = engine_pass("no-change", ctx, fleet, ids)
        say(
            f"   per router: reads {steady.reads_range[0]}..{steady.reads_range[1]} "
            f"(router 0: {steady.reads_by_menu}), connections "
            f"{steady.connections_range[0]}..{steady.connections_range[1]}"
        )
        if steady.writes or steady.failed:
            failures.append(
                f"no-change pass: {steady.writes} writes ({steady.failed} routers not ok)"
            )

        drift = make_drift(fleet, opts.drift, opts.seed)
        say(
            f"-- drift: {drift.objects} managed objects changed by hand ({drift.kinds}), "
            f"{drift.unmanaged_edits} unmanaged edits, {len(drift.handmade)} hand-made secrets"
        )
        repair = engine_pass("drift repair", ctx, fleet, ids)
        if repair.writes != drift.objects or repair.failed:
            failures.append(
                f"drift repair: {repair.writes} writes, expected D={drift.objects} "
                f"({repair.failed} routers not ok)"
            )
        problems, lost = check_drift_repaired(fleet, drift)
        failures += [f"drift repair: {p}" for p in problems[:10]]
        if lost:
            failures.append(f"drift repair: {lost} unmanaged edits lost")
        failures += check_records(ctx, "drift repair", per_router * opts.routers)
        if opts.engine_only:
            print_table([first, steady, repair])
            say(
                f"\nconverged re-sync of {steady.routers} routers: {steady.wall_s:.2f} s wall, "
                f"{steady.engine_cpu_s:.1f} s engine CPU, peak RSS {steady.rss_peak_mb:.0f} MB "
                f"(sync processes: {steady.fleet_rss_peak_mb:.0f} MB each at most)"
            )
            for line in failures:
                say(f"INVARIANT FAILED: {line}")
            passes_json = {p.name: p.to_json() for p in (first, steady, repair)}
            print(json.dumps({"routers": opts.routers, "passes": passes_json}), flush=True)
            return 1 if failures else 0

        drift2 = make_drift(fleet, opts.drift, opts.seed + 1)
        say(f"-- re-drift for the baseline: {drift2.objects} managed objects ({drift2.kinds})")
        naive = naive_pass(ctx, fleet, ids, opts.concurrency)
        failures += [f"naive baseline: {e}" for e in naive.errors]
        problems, naive_lost = check_drift_repaired(fleet, drift2)
        failures += [f"naive baseline: {p}" for p in problems[:10]]
        failures += [f"naive baseline: {p}" for p in check_counts(fleet, opts)[:10]]
        say(
            f"   baseline lost {naive_lost} of {drift2.unmanaged_edits} unmanaged edits "
            "(hand-set properties of objects it re-added)"
        )

        passes = [first, steady, repair, naive]
        if opts.resync:
            after = engine_pass("re-sync after naive", ctx, fleet, ids)
            passes.append(after)
            if after.writes or after.failed:
                failures.append(
                    f"re-sync after naive: {after.writes} writes, expected 0 "
                    f"({after.failed} routers not ok)"
                )
        # The first push of one router, one write at a time and pipelined, from empty.
        one = ids[:1]
        serial_settings = ctx.settings.model_copy(update={"router_pipeline": 1})
        pushes = []
        for name, settings in (
            ("first push 1 rtr, 1 at a time", serial_settings),
            ("first push 1 rtr, pipelined", ctx.settings),
        ):
            wipe(fleet.routers[0])
            push = engine_pass(name, ctx, fleet, one, settings)
            if push.failed or push.writes != per_router:
                failures.append(f"{name}: {push.writes} writes, expected {per_router}")
            pushes.append(push)
            passes.append(push)
        serial, piped = pushes
        print_table(passes)
        ratios = {
            "naive_over_repair_time": _ratio(naive.wall_s, repair.wall_s),
            "naive_over_repair_writes": _ratio(naive.writes, repair.writes),
            "naive_over_nochange_time": _ratio(naive.wall_s, steady.wall_s),
            "first_push_serial_over_pipelined": _ratio(serial.wall_s, piped.wall_s),
        }
        say(
            f"\nconverged re-sync of {steady.routers} routers: {steady.wall_s:.2f} s wall, "
            f"{steady.engine_cpu_s:.1f} s engine CPU ({steady.cpu_s:.1f} s with the "
            f"simulators), peak RSS {steady.rss_peak_mb:.0f} MB "
            f"({steady.rss_before_mb:.0f} MB before it)"
        )
        say(
            f"first push of one router ({per_router} objects): {serial.wall_s:.2f} s one "
            f"write at a time, {piped.wall_s:.2f} s pipelined "
            f"({ratios['first_push_serial_over_pipelined']}x)"
        )
        if opts.latency_ms == 20 and (opts.profiles, opts.secrets) == (50, 2000):
            say(
                f"   phpnuxbill's first push of the same router at 20 ms: 446.4 s (issue 26, "
                f"not measured in this run): {446.4 / piped.wall_s:.1f}x the pipelined push"
            )
        say(
            f"\nnaive / drift repair: {ratios['naive_over_repair_time']}x time, "
            f"{ratios['naive_over_repair_writes']}x writes "
            f"(D = {drift.objects} drifted objects, {drift.objects / opts.routers:.1f} per router)"
        )
        say(
            f"set-up {setup_s:.1f} s (not part of any pass); peak RSS of any pass "
            f"{max(p.rss_peak_mb for p in passes):.0f} MB"
        )
        for line in failures:
            say(f"INVARIANT FAILED: {line}")
        if not failures:
            say("invariants: ok")
        figures = {
            "routers": opts.routers,
            "profiles": opts.profiles,
            "secrets": opts.secrets,
            "drift": opts.drift,
            "concurrency": opts.concurrency,
            "db": db.kind,
            "setup_s": round(setup_s, 2),
            "drifted_objects": drift.objects,
            "drift_kinds": drift.kinds,
            "unmanaged_edits": drift.unmanaged_edits,
            "naive_lost_unmanaged_edits": naive_lost,
            "latency_ms": opts.latency_ms,
            "passes": {p.name: p.to_json() for p in passes},
            "ratios": ratios,
            "peak_rss_mb": round(max(p.rss_peak_mb for p in passes)),
            "invariants_ok": not failures,
        }
        print(json.dumps(figures, separators=(",", ":")), flush=True)
        return 1 if failures else 0
    finally:
        if fleet is not None:
            fleet.stop()
        if ctx is not None:
            ctx.close()
        db.cleanup()
        if not opts.keep_db:
            shutil.rmtree(workdir, ignore_errors=True)
        elif db.kind == "sqlite":
            say(f"kept {db.url}")


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
