"""The audit page over a long log: time to first byte of ``/ui/audit`` (newest, filtered by
what, by who, by days, and a deep page), against ``/ui/routers/new`` served by the same
app in the same run (the reference: a logged-in page of the same stack, no audit read).

    python -m bench.audit_page                    # 500,000 rows, SQLite
    python -m bench.audit_page --rows 2000000 --db postgresql+psycopg://postgres@127.0.0.1:5432/postgres

The app runs in this process under uvicorn on loopback; each page is fetched
``--repeat`` times after one warm-up, and the median is printed. Invariants: every page
answers 200 with its 50 rows (the date range: the rows of that day). The last line is
one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import uvicorn
from sqlalchemy import insert

from bench.invoices import open_database
from provisioner import registry, users
from provisioner.api import create_app
from provisioner.config import Settings
from provisioner.context import open_context
from provisioner.db import transaction
from provisioner.models import AuditLog, Reseller

ADMIN = ("root", "root-pass-123")
CHUNK = 10_000
ENTITIES = ("customers", "packages", "master_packages", "resellers", "routers")


def seed(factory: Any, rows: int) -> tuple[int, datetime]:
    """``rows`` audit rows, one a second back from now, spread over entities and actors
    (in the rows' own spellings, old and new); returns the reseller's id and the start."""
    with transaction(factory) as s:
        users.create_user(s, "seed", ADMIN[0], role="admin", password=ADMIN[1])
        registry.create_reseller(s, "seed", {"name": "resA"})
        res = s.query(Reseller).filter_by(name="resA").one().id
    actors = ("admin:root", "cli", "admin:cli", f"reseller:{res}", "system:invoices")
    start = datetime.now(UTC) - timedelta(seconds=rows)
    for first in range(0, rows, CHUNK):
        batch = [
            {
                "at": start + timedelta(seconds=i),
                "actor": actors[i % len(actors)],
                "action": "update",
                "entity": ENTITIES[i % len(ENTITIES)] if i % 1000 else "routers",
                "entity_id": i % 500 + 1,
                "before": {"rate_down": 10_000_000, "package_id": 1},
                "after": {"rate_down": 12_000_000, "package_id": 2},
            }
            for i in range(first, min(rows, first + CHUNK))
        ]
        with transaction(factory) as s:
            s.execute(insert(AuditLog), batch)
    return res, start


class Server:
    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="off", access_log=False)  # fmt: skip
        self.server = uvicorn.Server(config)
        sock = config.bind_socket()
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]})
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def ttfb(client: httpx.Client, url: str) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    with client.stream("GET", url) as r:
        chunks = r.iter_bytes()
        head = next(chunks, b"")
        first = time.perf_counter() - t0
        body = head + b"".join(chunks)
        return first, r.status_code, body.decode(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.audit_page", description=__doc__)
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--db", default=None, help="sqlite (default) or a PostgreSQL URL")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--keep-db", action="store_true")
    opts = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    db = open_database(SimpleNamespace(db=opts.db or "sqlite", keep_db=opts.keep_db), workdir)
    failed: list[str] = []
    try:
        ctx = open_context(Settings(database_url=db.url, key_file=workdir / "secret.key"))
        t0 = time.perf_counter()
        res, start = seed(ctx.factory, opts.rows)
        seed_s = time.perf_counter() - t0
        print(f"seeded {opts.rows:,} audit rows in {seed_s:.1f} s ({db.kind})", flush=True)
        server = Server(create_app(ctx))
        try:
            client = httpx.Client(base_url=server.base, timeout=60)
            form = client.get("/ui/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf is not None
            r = client.post("/ui/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                               "csrf": csrf[1]})  # fmt: skip
            assert r.status_code in (200, 303), r.status_code
            day = (start + timedelta(seconds=opts.rows // 2)).date().isoformat()
            pages = {
                "reference /ui/routers/new": "/ui/routers/new",
                "newest": "/ui/audit",
                "by what (customers)": "/ui/audit?entity=customers",
                "by what, rare (routers)": "/ui/audit?entity=routers",
                "by who (resA)": "/ui/audit?actor=resA",
                "by who (cli, two spellings)": "/ui/audit?actor=cli",
                "by days (one day)": f"/ui/audit?since={day}&until={day}",
                "deep page (older than the middle)": f"/ui/audit?before={opts.rows // 2}",
            }
            figures: dict[str, float] = {}
            for name, url in pages.items():
                ttfb(client, url)  # warm-up
                runs = [ttfb(client, url) for _ in range(opts.repeat)]
                figures[name] = statistics.median(t for t, _, _ in runs) * 1000
                status, body = runs[-1][1], runs[-1][2]
                rows = body.count('<tr id="audit-')
                if status != 200 or (url.startswith("/ui/audit") and rows != 50):
                    failed.append(f"{name}: status {status}, {rows} rows")
            ref = figures["reference /ui/routers/new"]
            print(f"{'page':<36} {'TTFB ms':>9} {'x reference':>12}")
            for name, ms in figures.items():
                print(f"{name:<36} {ms:>9.1f} {ms / ref:>12.1f}")
        finally:
            server.stop()
            ctx.close()
    finally:
        db.cleanup()
    for f in failed:
        print(f"INVARIANT FAILED {f}")
    print(json.dumps({"bench": "audit_page", "rows": opts.rows, "db": db.kind,
                      "seed_s": round(seed_s, 1),
                      "ttfb_ms": {k: round(v, 1) for k, v in figures.items()}}))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
