"""PostgreSQL's own ``pgbench`` as the physical reference for a benchmark on the same server.

    python -m bench.pgbench                       # 32 clients, 10 s, scale 4, 127.0.0.1:5432
    python -m bench.pgbench --clients 8 --seconds 5 --scale 4

A scratch database ``bench_pgb_<pid>`` is made on the server (through the database the
URL names), filled by ``pgbench -i -s SCALE`` and dropped afterwards. The timed run is
pgbench's default script (TPC-B-like: three UPDATEs, one SELECT and one INSERT in one
transaction) with ``-c CLIENTS -j THREADS -T SECONDS -n``; throughput is pgbench's own
``tps = … (without initial connection time)``, and p50/p99 come from its per-transaction
log (``-l``), read from a temporary directory. ``bench.activations`` runs it beside the
activation runs (see bench/README.md for the choice of scale).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def find_pgbench(given: str | None = None) -> str | None:
    """The pgbench executable: ``given``, else on PATH, else Debian's /usr/bin/pgbench."""
    if given:
        return given if (shutil.which(given) or Path(given).is_file()) else None
    found = shutil.which("pgbench")
    if found:
        return found
    return "/usr/bin/pgbench" if Path("/usr/bin/pgbench").is_file() else None


_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)
_LAT = re.compile(r"^latency average = ([0-9.]+) ms", re.M)
_DONE = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)


def parse_output(out: str) -> dict[str, float | int | None]:
    """tps, average latency and transaction counts from pgbench's summary."""

    def num(rx: re.Pattern[str], cast: type = float) -> Any:
        m = rx.search(out)
        return cast(m.group(1)) if m else None

    return {
        "tps": num(_TPS),
        "latency_avg_ms": num(_LAT),
        "transactions": num(_DONE, int),
        "failed": num(_FAILED, int),
    }


def read_logs(logdir: Path) -> list[float]:
    """Per-transaction latencies (ms, ascending) from every ``-l`` log file in ``logdir``.

    A line is ``client_id transaction_no time script_no time_epoch time_us``, ``time``
    being the transaction's latency in microseconds (or ``failed`` / ``skipped``).
    """
    ms: list[float] = []
    for f in logdir.iterdir():
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                ms.append(int(parts[2]) / 1000)
    ms.sort()
    return ms


class Pgbench:
    """A scratch pgbench database on the server of ``url``: made and initialised on
    ``with``, dropped on leaving it; ``run`` is one timed pgbench run against it."""

    def __init__(
        self, url: str | URL, scale: int, *, exe: str | None = None, name: str | None = None
    ) -> None:
        self.admin_url = make_url(url) if isinstance(url, str) else url
        if self.admin_url.get_backend_name() != "postgresql":
            raise ValueError("pgbench needs a PostgreSQL server")
        found = find_pgbench(exe)
        if found is None:
            raise FileNotFoundError(exe or "pgbench")
        self.exe = found
        self.scale = scale
        self.name = name or f"bench_pgb_{os.getpid()}"
        self.init_s: float | None = None
        self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    # -- libpq connection for the pgbench processes --

    def _conn_args(self) -> list[str]:
        u = self.admin_url
        return [
            "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
            "-U", u.username or "postgres",
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.admin_url.password:
            env["PGPASSWORD"] = str(self.admin_url.password)
        return env

    def _drop(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    def __enter__(self) -> Pgbench:
        self._drop()
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        t0 = time.perf_counter()
        cmd = [self.exe, "-i", "-q", "-s", str(self.scale), *self._conn_args(), self.name]
        done = subprocess.run(cmd, env=self._env(), capture_output=True, text=True)
        if done.returncode != 0:
            self.__exit__(None, None, None)
            raise RuntimeError(f"pgbench -i failed ({done.returncode}):\n{done.stderr[-2000:]}")
        self.init_s = round(time.perf_counter() - t0, 2)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._drop()
        finally:
            self._admin.dispose()

    def run(self, clients: int, seconds: int, threads: int | None = None) -> dict[str, Any]:
        """One timed run of the TPC-B-like default script; every figure in a dict."""
        threads = max(1, min(threads or (os.cpu_count() or 1), clients))
        logdir = Path(tempfile.mkdtemp(prefix="bench-pgb-"))
        try:
            cmd = [
                self.exe, "-c", str(clients), "-j", str(threads), "-T", str(seconds), "-n",
                "-l", f"--log-prefix={logdir / 'pgbench_log'}", *self._conn_args(), self.name,
            ]  # fmt: skip
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=self._env(), capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stderr[-2000:]}")
            fig = parse_output(done.stdout)
            ms = read_logs(logdir)
        finally:
            shutil.rmtree(logdir, ignore_errors=True)
        return {
            "script": "tpcb-like",
            "scale": self.scale,
            "clients": clients,
            "threads": threads,
            "seconds": seconds,
            "init_s": self.init_s,
            "wall_s": round(wall, 2),
            "per_s": round(fig["tps"], 1) if fig["tps"] is not None else None,
            "latency_avg_ms": fig["latency_avg_ms"],
            "p50_ms": round(percentile(ms, 50), 2),
            "p90_ms": round(percentile(ms, 90), 2),
            "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(ms[-1], 2) if ms else 0.0,
            "transactions": fig["transactions"],
            "logged": len(ms),
            "failed": fig["failed"],
        }


def describe(f: dict[str, Any]) -> str:
    return (
        f"pgbench (TPC-B-like, scale {f['scale']}, {f['clients']} clients, "
        f"{f['threads']} threads, {f['seconds']} s): {f['per_s']} tps; latency ms "
        f"p50 {f['p50_ms']}, p90 {f['p90_ms']}, p99 {f['p99_ms']}, max {f['max_ms']}; "
        f"{f['transactions']} transactions, {f['failed']} failed; init {f['init_s']} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pgbench", description=__doc__)
    p.add_argument(
        "--db", default=PG_DEFAULT, help=f"a database on the server (default {PG_DEFAULT})"
    )
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--threads", type=int, default=None, help="default: CPUs, at most clients")
    p.add_argument("--pgbench", default=None, help="the pgbench executable")
    a = p.parse_args(argv)
    with Pgbench(a.db, a.scale, exe=a.pgbench) as pgb:
        f = pgb.run(a.clients, a.seconds, a.threads)
    print(describe(f), flush=True)
    print(json.dumps({"bench": "pgbench", **f}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
