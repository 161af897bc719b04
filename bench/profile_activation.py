"""Where one activation's time goes, in process: statements, round trips and Python.

    .venv/bin/python -m bench.profile_activation              # 300 activations, PostgreSQL
    .venv/bin/python -m bench.profile_activation --cprofile   # and the top of a cProfile
    .venv/bin/python -m bench.profile_activation --http       # through the app (TestClient)

A fresh PostgreSQL database seeded as ``bench.activations`` seeds it (RADIUS-mode routers,
a monthly PPPoE package, resellers with tokens), then one reseller activates N customers
one after the other through ``activation.run_and_view`` with the API's own view (or through
the HTTP app with ``--http``). It prints statements per activation by kind (counted by a
SQLAlchemy event and, for raw psycopg pipelines, by the pipeline) and CPU per activation.
No concurrency: this is the cost of one activation, not a throughput figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.activations import (
    CASE_PACKAGE,
    PACKAGE,
    Options,
    cpu_of,
    open_database,
    postgres_pids,
    seed,
)
from provisioner import batch, ledger
from provisioner.activation import ActivationRequest, run_and_view
from provisioner.auth import authenticate
from provisioner.config import Settings
from provisioner.context import open_context
from provisioner.db import reading, transaction
from provisioner.read import activations


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile_activation")
    p.add_argument("-n", type=int, default=300, help="activations (default 300)")
    p.add_argument("--db", default=None, help="as bench.activations --db")
    p.add_argument("--cprofile", action="store_true", help="print the top of a cProfile")
    p.add_argument("--http", action="store_true", help="through the HTTP app (TestClient)")
    p.add_argument("--show", action="store_true", help="print the last activation's SQL")
    p.add_argument(
        "--case", choices=("static", "ipv6"), default=None,
        help="that case's activations (bench.activations --cases) instead of the common one",
    )  # fmt: skip
    a = p.parse_args(argv)
    opts = Options(
        a.db, a.n, 1, 1, 1, False, 1, True, 0, False, 0, 1, None, "customer",
        cases=(a.case,) if a.case else (), case_customers=a.n,
    )  # fmt: skip
    package = CASE_PACKAGE[a.case][0] if a.case else PACKAGE
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        db = open_database(opts, Path(tmp))
        try:
            settings = Settings(
                database_url=db.url,
                key_file=Path(tmp) / "key",
            )
            ctx = open_context(settings)
            world = seed(ctx, opts)
            run = world.runs[a.case or "empty"]
            rid = run[0][1]
            with transaction(ctx.factory) as s:
                ledger.topup(s, "bench", f"reseller:{rid}", Decimal(1_000_000))
            token = world.tokens[rid]
            customers = [u for u, r in run if r == rid]
            counts: Counter[str] = Counter()

            shown: list[str] = []

            def _count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
                counts[statement.split(None, 1)[0].upper()] += 1
                shown.append(" ".join(statement.split())[:160])

            def _event(name: str) -> Any:
                def count(_c: Any) -> None:
                    counts[name] += 1

                return count

            event.listen(ctx.engine, "before_cursor_execute", _count)
            for name in ("BEGIN", "COMMIT", "ROLLBACK"):
                event.listen(ctx.engine, name.lower(), _event(name))

            real_run = batch.Batch.run

            def counted_run(self: batch.Batch) -> Any:
                # Statements sent together (one round trip on PostgreSQL), by kind.
                # As sent: on PostgreSQL, INSERTs in a row as one statement (``batch``).
                if self.pipelined:
                    sent = [(sql, len(m)) for sql, _, m in batch._statements(self._items)]
                else:
                    sent = [(c.sql, 1) for _, _, c, _ in self._items]
                for sql, fused in sent:
                    kind = sql.split(None, 1)[0].upper()
                    label = f"batch, {fused} INSERTs" if fused > 1 else "batch"
                    counts[f"{kind} ({label})"] += 1
                    shown.append("  batch: " + " ".join(sql.split())[:150])
                counts["round trips saved"] -= max(len(sent) - 1, 0)
                return real_run(self)

            batch.Batch.run = counted_run  # type: ignore[method-assign]
            real_ping = ctx.engine.dialect.do_ping

            def counted_ping(dbapi_conn: Any) -> bool:
                counts["ping"] += 1  # a pool's pre-ping at checkout: a round trip
                return bool(real_ping(dbapi_conn))

            ctx.engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]
            # The round trips as sent: libpq's trace of every connection while measured,
            # each Sync (the extended protocol's, a pipeline's) or simple Query a wait.
            wire = tempfile.TemporaryFile("w+") if db.kind == "postgresql" else None  # noqa: SIM115 - gone with the process
            tracing: list[bool] = []

            @event.listens_for(ctx.engine, "checkout")
            def _trace(dbapi_conn: Any, _rec: Any, _proxy: Any) -> None:
                if wire is not None and tracing:
                    dbapi_conn.pgconn.trace(wire.fileno())

            @event.listens_for(ctx.engine, "checkin")
            def _untrace(dbapi_conn: Any, _rec: Any) -> None:
                if wire is not None and dbapi_conn is not None:
                    dbapi_conn.pgconn.untrace()

            if a.http:
                from fastapi.testclient import TestClient

                from provisioner.api import create_app

                client = TestClient(create_app(ctx))
                headers = {"Authorization": f"Bearer {token}"}

                def one(i: int, username: str) -> None:
                    r = client.post(
                        "/api/v1/activations",
                        json={"customer": username, "package": package,
                              "idempotency_key": f"prof-{i}"},
                        headers=headers,
                    )  # fmt: skip
                    if r.status_code != 201:
                        raise SystemExit(f"activation {i}: {r.status_code} {r.text}")
            else:

                def one(i: int, username: str) -> None:
                    with reading(ctx.factory) as s:
                        principal, _ = authenticate(s, token)
                    run_and_view(
                        ctx.factory, principal,
                        ActivationRequest(username, package, f"prof-{i}"),
                        lambda s, act: activations.view(s, principal, act),
                    )  # fmt: skip

            warm = min(20, len(customers) // 4)
            for i, u in enumerate(customers[:warm]):
                one(i, u)
            counts.clear()
            measured = customers[warm:]
            prof = cProfile.Profile(time.process_time) if a.cprofile else None  # CPU, not waits
            pg0 = cpu_of(postgres_pids())
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if prof:
                prof.enable()
            tracing.append(True)
            for i, u in enumerate(measured, warm):
                shown.clear()
                one(i, u)
            tracing.clear()
            if prof:
                prof.disable()
                if os.environ.get("PROF_DUMP"):
                    prof.dump_stats(os.environ["PROF_DUMP"])
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            pg1 = cpu_of(postgres_pids())
            pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())
            n = len(measured)
            how = "HTTP app" if a.http else "service"
            print(f"{n} activations, one at a time ({how})")
            print(f"  wall {wall / n * 1000:.2f} ms, this process's CPU {cpu / n * 1000:.2f} ms"
                  " per activation")  # fmt: skip
            if db.kind == "postgresql":  # every backend's, this run's only
                print(f"  PostgreSQL's CPU {pg / n * 1000:.2f} ms per activation")
            saved = -counts.pop("round trips saved", 0)
            total = sum(v for k, v in counts.items() if not k.endswith("(no round trip)"))
            print(f"  statements per activation: {total / n:.1f}, in {(total - saved) / n:.1f}"
                  " round trips")  # fmt: skip
            for k, v in counts.most_common():
                print(f"    {k:<10} {v / n:.2f}")
            if wire is not None:
                wire.seek(0)
                sent = [line.split("\t") for line in wire if "\tF\t" in line]
                waits = sum(1 for m in sent if len(m) > 3 and m[3].strip() in ("Sync", "Query"))
                print(f"  round trips on the wire (libpq's trace: Sync and Query sent): "
                      f"{waits / n:.2f} per activation")  # fmt: skip
            if a.show:
                print("  the last activation's statements, in order:")
                for line in shown:
                    print(f"    {line}")
            if prof:
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(
                    os.environ.get("PROF_SORT", "cumulative")
                ).print_stats(45)
                print(out.getvalue())
            ctx.close()
        finally:
            db.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
