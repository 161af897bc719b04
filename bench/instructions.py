"""Instructions per activation, counted by valgrind: a yardstick that does not move with
the machine's speed (bench/README.md, "sixth pass").

    python -m bench.instructions                 # POST /activations through the app
    python -m bench.instructions --stub          # the same with the service answered at once
    python -m bench.instructions --requests 200  # more requests a run (default 100)

On a shared machine the same run's CPU per activation varied 2x from one minute to the
next, more than any change worth measuring; the instructions a process executes do not.
A PostgreSQL database is seeded as ``bench.activations`` seeds it, in this process; then
the app (``create_app``) answers, in process, on one event loop, one request at a time,
``POST /activations`` for WARM and then WARM + N new customers, in two processes run
under ``valgrind --tool=callgrind``. The difference of their totals over N is the
instructions of one request: the API worker's part (the event loop, the route's thread,
psycopg and libpq), not PostgreSQL's. ``--stub``: the service returns the first answer
again, which leaves what the framework (FastAPI, the handler, the thread hop) costs.
``--cpu`` adds each run's CPU time, for scale.

valgrind is Debian's package (``apt-get install valgrind``); PostgreSQL as for
``bench.activations`` (``--db``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

WARM = 20


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions")
    p.add_argument("--requests", type=int, default=100, help="measured requests (default 100)")
    p.add_argument("--stub", action="store_true", help="the service answers at once")
    p.add_argument("--db", default=None, help="as bench.activations --db (PostgreSQL)")
    p.add_argument("--cpu", action="store_true", help="also each run's CPU seconds")
    a = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    from bench.activations import Options, open_database, seed
    from provisioner import ledger
    from provisioner.config import Settings
    from provisioner.context import open_context
    from provisioner.db import transaction

    n = a.requests
    opts = Options(
        a.db, 2 * WARM + n, 1, 1, 1, False, 1, True, 0, False, 0, 1, None, "customer",
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-instr-") as tmp:
        db = open_database(opts, Path(tmp))
        try:
            if db.kind != "postgresql":
                raise SystemExit("--db: PostgreSQL only (round trips are what is counted)")
            ctx = open_context(Settings(database_url=db.url, key_file=Path(tmp) / "key"))
            world = seed(ctx, opts)
            run = world.runs["empty"]
            rid = run[0][1]
            with transaction(ctx.factory) as s:
                ledger.topup(s, "bench", f"reseller:{rid}", Decimal(10_000_000))
            customers = [u for u, r in run if r == rid]
            ctx.close()
            state = Path(tmp) / "state.json"
            state.write_text(json.dumps({
                "url": db.url, "key": str(Path(tmp) / "key"), "token": world.tokens[rid],
                "short": customers[:WARM], "long": customers[WARM : 2 * WARM + n],
            }))  # fmt: skip
            # The same first requests in both (connections, prepared statements, caches):
            # the difference is n requests of the steady state.
            short = _counted(state, "short", a.stub)
            long = _counted(state, "long", a.stub)
        finally:
            db.cleanup()
    per = (long[0] - short[0]) / n
    what = "stubbed service" if a.stub else "the service"
    print(f"POST /activations through the app ({what}): {per:,.0f} instructions per request")
    print(f"  runs of {WARM} and {WARM + n} requests: {short[0]:,} and {long[0]:,} in all")
    if a.cpu:
        print(f"  CPU under valgrind: {short[1]:.1f} s and {long[1]:.1f} s")
    return 0


def _counted(state: Path, which: str, stub: bool) -> tuple[int, float]:
    """(instructions, CPU seconds) of one child answering the ``which`` customers."""
    cmd = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "bench.instructions", "--child", str(state), which,
        *(["stub"] if stub else []),
    ]  # fmt: skip
    started = _children_cpu()
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}
    )
    cpu = _children_cpu() - started
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the counted run failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return int(found.group(1)), cpu


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def child(state_file: str, which: str, stub: bool) -> None:
    """Under valgrind: the app answers one activation after another, in process."""
    from bench.activations import PACKAGE
    from provisioner import activation, http_threads
    from provisioner.api import create_app
    from provisioner.config import Settings
    from provisioner.context import open_context

    st = json.loads(Path(state_file).read_text())
    ctx = open_context(Settings(database_url=st["url"], key_file=Path(st["key"])), upgrade=False)
    app = create_app(ctx)
    if stub:
        real = activation.run_and_view
        first: list[Any] = []

        def answered(*args: Any) -> Any:
            if not first:
                first.append(real(*args))
            return first[0]

        activation.run_and_view = answered  # type: ignore[assignment]
    auth = f"Bearer {st['token']}".encode()

    async def one(username: str) -> None:
        body = json.dumps(
            {"customer": username, "package": PACKAGE, "idempotency_key": f"i-{username}"}
        ).encode()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/api/v1/activations",
            "raw_path": b"/api/v1/activations", "root_path": "", "query_string": b"",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000), "state": {},
            "headers": [(b"host", b"127.0.0.1"), (b"authorization", auth),
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        }  # fmt: skip
        sent: list[Any] = []
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if received:
                await asyncio.Event().wait()  # no disconnect before the answer
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] not in (200, 201):
            raise SystemExit(f"{username}: {sent}")

    async def answer_all() -> None:
        http_threads.configure(ctx.settings.api_threads, ctx.settings.api_slow_threads)
        for username in st[which]:
            await one(username)

    import uvloop

    uvloop.run(answer_all())
    ctx.close()
    os._exit(0)  # the pools' threads: nothing left to wait for


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], "stub" in sys.argv[4:])
    else:
        sys.exit(main())
