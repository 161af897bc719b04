"""Customer CSV import benchmark: 10,000 customers from one file, dry run then import.

    python -m bench.import                       # 10,000 rows on SQLite and PostgreSQL
    python -m bench.import --rows 2000 --db sqlite
    python -m bench.import --db postgresql --existing 1000000   # into a registry of 1M

``--existing N``: before the import, N customers (on the RADIUS-mode router, half of
them active) are inserted set-based (Core, each password encrypted as the service does)
and their RADIUS rows written by ``radius sync``'s own plan and apply, timed; after the
import, ``radius diff`` over all of them is timed and must be empty. Peak resident
memory of the process is printed, and that of the sync and of the diff alone (Linux:
the high-water mark is reset before each, so ``time -v`` reports the last step's). Then (with or without ``--existing``) the local-mode
router ``core-1`` is pointed at a simulated RouterOS and synced twice: the first sync and
the converged re-sync (which must write nothing) are timed.

A fresh database per backend is seeded through the service layer (two local-mode routers,
one RADIUS-mode router, a pppoe master package, three packages, three resellers with
packages assigned), then a CSV of ``--rows`` customers is generated (spread over the
routers, packages and resellers; a third with a MAC address) and handed to
``bulk.import_csv`` as the CLI and the API do: a dry run in its own (rolled back)
transaction, then the import in one transaction, committed. Figures are printed (no
timed assertion); the invariants are checked after the timing: every row stored, one
``radcheck`` password row per customer, one pending ``sync_router`` row per router that
holds customers (local mode), an audit row per customer. The last line is one JSON object.

PostgreSQL: a database ``bench_imp_<pid>`` on 127.0.0.1:5432 (trust, user postgres),
made and dropped here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, create_engine, func, insert, select, text

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import bulk, radius_store, registry, sync
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import reading, transaction
from provisioner.effects import SYNC_ROUTER
from provisioner.models import (
    AuditLog,
    Customer,
    CustomerStatus,
    CustomerType,
    Outbox,
    Package,
    Router,
)
from provisioner.radius_tables import radcheck
from provisioner.read import ADMIN
from provisioner.state import options

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def seed(ctx: Context) -> dict[str, list[str]]:
    with transaction(ctx.factory) as s:
        routers = []
        for i, mode in enumerate(("local", "local", "radius"), 1):
            routers.append(
                registry.create_router(
                    s,
                    "bench",
                    {
                        "name": f"core-{i}",
                        "host": f"10.0.0.{i}",
                        "username": "api",
                        "password": "pw",
                        "radius_secret": "s3cret",
                        "mode": mode,
                    },
                ).name
            )
        registry.create_master_package(
            s,
            "bench",
            {
                "name": "home",
                "customer_type": "pppoe",
                "rate_down": "10M",
                "rate_up": "5M",
                "pool_name": "pool-home",
                "pool_ranges": "10.64.0.2-10.127.255.254",
            },
        )
        packages = []
        for i in range(3):
            packages.append(
                registry.create_package(
                    s,
                    "bench",
                    {
                        "name": f"Home {i}",
                        "master_package": "home",
                        "customer_price": "500",
                        "operator_price": "400",
                    },
                )[0].name
            )
        resellers = []
        for i in range(3):
            r = registry.create_reseller(s, "bench", {"name": f"Reseller {i}"}).name
            for p in packages:
                registry.assign_package(s, "bench", r, p, None)
            resellers.append(r)
    return {"routers": routers, "packages": packages, "resellers": resellers}


def make_csv(n: int, world: dict[str, list[str]]) -> str:
    routers, packages, resellers = world["routers"], world["packages"], world["resellers"]
    lines = ["username,password,customer_type,router,package,reseller,mac_address,status"]
    for i in range(n):
        mac = f"02:00:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}:01" if i % 3 == 0 else ""
        lines.append(
            f"user{i:06d},pw-{i:06d},pppoe,{routers[i % len(routers)]},"
            f"{packages[i % len(packages)]},{resellers[i % len(resellers)] if i % 4 else ''},"
            f"{mac},{'active' if i % 2 else ''}"
        )
    return "\n".join(lines) + "\n"


_PEAK_BEFORE = [0.0]  # the process's peak before the last reset of the high-water mark


def rss_peak_mb() -> float:
    """The process's peak resident memory (across ``step_peak_reset``, which also resets
    what ``getrusage`` and ``time -v`` report)."""
    return max(_PEAK_BEFORE[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def step_peak_reset() -> None:
    """Start a new high-water mark of resident memory (Linux: clear_refs 5), so that
    ``step_peak_mb`` is one step's own peak; elsewhere the process's peak is kept."""
    _PEAK_BEFORE[0] = rss_peak_mb()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def step_peak_mb() -> float:
    """The resident high-water mark since ``step_peak_reset`` (VmHWM), in MB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return rss_peak_mb()


def fill(ctx: Context, n: int) -> dict[str, float]:
    """``n`` customers already there (set-based), then their RADIUS rows as ``radius
    sync`` writes them; the times of both."""
    with transaction(ctx.factory) as s:
        router = s.scalars(select(Router).where(Router.mode == "radius")).one().id
        package = s.scalars(select(Package).order_by(Package.id)).first()
        assert package is not None
        package_id = package.id
    table = cast(Table, Customer.__table__)
    t0 = time.perf_counter()
    for start in range(0, n, 20_000):
        rows = [
            {
                "username": f"old{i:07d}", "password": f"pw-{i:07d}",
                "customer_type": CustomerType.pppoe, "router_id": router,
                "package_id": package_id,
                "status": CustomerStatus.active if i % 2 else CustomerStatus.expired,
            }
            for i in range(start, min(start + 20_000, n))
        ]  # fmt: skip
        with transaction(ctx.factory) as s:
            s.execute(insert(table), rows)
    t_insert = time.perf_counter() - t0
    step_peak_reset()
    t0 = time.perf_counter()
    written, _ = radius_store.sync_all(ctx.factory, options(ctx.settings))
    t_radius = time.perf_counter() - t0
    sync_peak = step_peak_mb()
    with ctx.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM (ANALYZE)" if conn.dialect.name == "postgresql" else "ANALYZE"))
    say(
        f"{n:,} customers inserted in {t_insert:.1f} s; radius sync wrote {written:,} rows "
        f"in {t_radius:.1f} s (peak RSS of the sync {sync_peak:.0f} MB); "
        f"peak RSS so far {rss_peak_mb():.0f} MB"
    )
    return {"existing_insert_s": round(t_insert, 1), "radius_sync_s": round(t_radius, 1),
            "radius_rows": written, "radius_sync_peak_mb": round(sync_peak)}  # fmt: skip


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def resync_local(ctx: Context) -> dict[str, Any]:
    """``core-1`` (local mode) pointed at a simulated RouterOS: its first sync (every
    secret of its customers written), then a converged re-sync (nothing to write), timed
    (wall, and this process's CPU: engine, driver and the simulator's thread)."""
    with SimulatedRouter(username="api", password="pw") as sim:
        with transaction(ctx.factory) as s:
            registry.update_router(s, "bench", "core-1", {"host": sim.host, "api_port": sim.port})
            rid = s.scalars(select(Router.id).where(Router.name == "core-1")).one()
            n = s.scalar(
                select(func.count()).select_from(Customer).where(Customer.router_id == rid)
            )
        t0 = time.perf_counter()
        first = sync.sync_router(ctx.factory, ctx.settings, rid, trigger="bench")
        t_first = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), cpu_s()
        again = sync.sync_router(ctx.factory, ctx.settings, rid, trigger="bench")
        t_again, c_again = time.perf_counter() - t0, cpu_s() - c0
    ok = first.status == "ok" and first.applied > 0 and again.status == "ok" and again.applied == 0
    say(
        f"local-mode router of {n:,} customers: first sync {t_first:.2f} s "
        f"({first.applied:,} writes, {first.status}); converged re-sync {t_again:.3f} s wall, "
        f"{c_again:.3f} s CPU ({again.applied} writes, {again.status})"
    )
    return {"local_router_customers": n, "local_first_sync_s": round(t_first, 2),
            "local_resync_s": round(t_again, 3), "local_resync_cpu_s": round(c_again, 3),
            "local_resync_ok": ok}  # fmt: skip


def run(url: str, key_dir: Path, rows: int, label: str, existing: int = 0) -> dict[str, Any]:
    settings = Settings(
        database_url=url, key_file=key_dir / f"{label}.key", sync_debounce_seconds=0.0
    )
    ctx = open_context(settings)
    try:
        world = seed(ctx)
        with transaction(ctx.factory) as s:
            s.query(Outbox).delete()
        filled = fill(ctx, existing) if existing else {}
        data = make_csv(rows, world)
        say(f"{label}: {rows} rows, {len(data) / 1e6:.2f} MB of CSV")

        t0 = time.perf_counter()
        with ctx.factory() as s:
            dry = bulk.import_csv(s, ADMIN, data, dry_run=True)
            s.rollback()
        t_dry = time.perf_counter() - t0
        assert not dry.errors, dry.errors[:5]

        t0 = time.perf_counter()
        with transaction(ctx.factory) as s:
            out = bulk.import_csv(s, ADMIN, data, dry_run=False)
        t_import = time.perf_counter() - t0

        with transaction(ctx.factory) as s:
            stored = s.scalar(select(func.count()).select_from(Customer))
            passwords = s.scalar(
                select(func.count())
                .select_from(radcheck)
                .where(radcheck.c.attribute == "Cleartext-Password")
            )
            syncs = sorted(s.scalars(select(Outbox.router_id).where(Outbox.kind == SYNC_ROUTER)))
            audited = s.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.entity == "customers")
            )
        checks = {
            "every row stored": out.created == rows and stored == rows + existing,
            "a RADIUS password row each": passwords == rows + existing,
            "one sync per local-mode router": len(syncs) == len(set(syncs)) == 2,
            "an audit row each": audited == rows,
        }
        diff_s = diff_peak = None
        if existing:
            say(f"{label}: peak RSS after the import {rss_peak_mb():.0f} MB")
            step_peak_reset()
            t0 = time.perf_counter()
            with reading(ctx.factory) as s:
                pending = radius_store.plan(s, options(ctx.settings))
            diff_s = time.perf_counter() - t0
            diff_peak = round(step_peak_mb())
            checks["radius diff empty after all"] = not pending.has_changes
            say(
                f"{label}: radius diff over {rows + existing:,} customers {diff_s:.1f} s "
                f"(peak RSS of the diff {diff_peak} MB)"
            )
        local = resync_local(ctx)
        checks["a local-mode router's re-sync writes nothing"] = bool(local["local_resync_ok"])
        for name, ok in checks.items():
            if not ok:
                say(f"INVARIANT FAILED {label}: {name}")
                raise SystemExit(1)
        figures = {
            "db": label,
            "rows": rows,
            "dry_run_s": round(t_dry, 2),
            "import_s": round(t_import, 2),
            "import_rows_per_s": round(rows / t_import),
            "existing": existing,
            **filled,
            "radius_diff_s": None if diff_s is None else round(diff_s, 1),
            "radius_diff_peak_mb": diff_peak,
            **local,
            "peak_rss_mb": round(rss_peak_mb()),
        }
        say(
            f"{label}: dry run {t_dry:.2f} s, import {t_import:.2f} s "
            f"({rows / t_import:,.0f} customers/s; RADIUS rows and 2 router syncs included) "
            f"into {existing:,} customers; peak RSS {rss_peak_mb():.0f} MB"
        )
        return figures
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--existing", type=int, default=0, help="customers there before")
    opts = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if opts.db in ("sqlite", "both"):
            results.append(
                run(f"sqlite:///{work / 'bench.sqlite3'}", work, opts.rows, "sqlite", opts.existing)
            )
        if opts.db in ("postgresql", "both"):
            name = f"bench_imp_{os.getpid()}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                results.append(run(url, work, opts.rows, "postgresql", opts.existing))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(json.dumps({"bench": "import", "results": results}))


if __name__ == "__main__":
    main()
