"""Customer CSV import benchmark: 10,000 customers from one file, dry run then import.

    python -m bench.import                       # 10,000 rows on SQLite and PostgreSQL
    python -m bench.import --rows 2000 --db sqlite

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
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from provisioner import bulk, registry
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import transaction
from provisioner.effects import SYNC_ROUTER
from provisioner.models import AuditLog, Customer, Outbox
from provisioner.radius_tables import radcheck
from provisioner.read import ADMIN

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


def run(url: str, key_dir: Path, rows: int, label: str) -> dict[str, Any]:
    settings = Settings(
        database_url=url, key_file=key_dir / f"{label}.key", sync_debounce_seconds=0.0
    )
    ctx = open_context(settings)
    try:
        world = seed(ctx)
        with transaction(ctx.factory) as s:
            s.query(Outbox).delete()
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
            "every row stored": out.created == stored == rows,
            "a RADIUS password row each": passwords == rows,
            "one sync per local-mode router": len(syncs) == len(set(syncs)) == 2,
            "an audit row each": audited == rows,
        }
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
        }
        say(
            f"{label}: dry run {t_dry:.2f} s, import {t_import:.2f} s "
            f"({rows / t_import:,.0f} customers/s; RADIUS rows and 2 router syncs included)"
        )
        return figures
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    opts = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if opts.db in ("sqlite", "both"):
            results.append(run(f"sqlite:///{work / 'bench.sqlite3'}", work, opts.rows, "sqlite"))
        if opts.db in ("postgresql", "both"):
            name = f"bench_imp_{os.getpid()}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
                results.append(run(url, work, opts.rows, "postgresql"))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    print(json.dumps({"bench": "import", "results": results}))


if __name__ == "__main__":
    main()
