"""Webhook benchmark: events fanned out to endpoints, one of them dead; and what webhooks
cost an activation.

    python -m bench.webhooks                   # 10,000 events to 5 endpoints (one dead)
    python -m bench.webhooks --quick           # 1,000 events, 200 activations per pass
    python -m bench.webhooks --dead refused    # the dead one refuses connections instead
    python -m bench.webhooks --db sqlite       # on a temporary SQLite file
    python -m bench.webhooks --nice 0          # the sender not niced (webhook_nice 0)

Scenario (bench/README.md): a fresh database (PostgreSQL ``bench_wh_<pid>`` on
127.0.0.1:5432, dropped at the end); five endpoints subscribed to every event: four live
receivers (HTTP/1.1 keep-alive servers in a process of their own, so their work is not
this process's CPU) and one dead: by default it accepts the connection and never answers
(each try waits out the endpoint's ``--timeout``, 2 s), with ``--dead refused`` nothing
listens. The sender is ``webhooks.Dispatcher`` as ``serve`` runs it (16 sending threads,
4 per endpoint, ``webhook_poll_seconds`` 0.5), in a process of its own as in ``serve``
(whose API workers are other processes on PostgreSQL).

1. **fan-out**: ``--events`` events are committed in transactions of 500 as fast as the
   database takes them; the run ends when every live receiver has every event. Printed:
   events/s (events / seconds from the first commit to the last receipt at a live
   receiver), deliveries/s to the live ones, and the delivery latency from each event's
   commit to its receipt (p50, p99, max) per live receiver. The dead endpoint's tries
   and its state (failing since …) are printed; its deliveries wait for a day of retries.
2. **activations**: ``--activations`` admin activations (8 threads, ``run_activation``,
   RADIUS-mode router: no NAS work, so each emits ``activation.applied`` in its own
   commit) with webhooks **off** (endpoints disabled, no dispatcher: the events are still
   written, as they always are) and **on** (the five endpoints, the dispatcher running,
   the dead one included): a warm-up pass (webhooks on, not counted), then off, on, on,
   off, off, on (so a drift of the shared machine cancels); printed: activations/s of
   each pass and the ratio on/off of the means (the goal: at least 0.90).

Invariants, checked after the timing: every live receiver got each event exactly once
(by webhook-id), every signature verified; every activation's event delivered to the
live receivers. A failure prints ``INVARIANT FAILED`` and exits 1. The last line is one
JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bench.activations import cpu_of
from provisioner import events, registry, webhooks
from provisioner.activation import ActivationRequest, run_activation
from provisioner.auth import Principal
from provisioner.config import Settings
from provisioner.context import Context, open_context
from provisioner.db import reading, transaction
from provisioner.models import Event, WebhookDelivery, WebhookEndpoint

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ADMIN = Principal("admin", name="bench")
LIVE = 4


def say(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- receivers (a process of their own) ------------------------------------------------


def _serve(ports: list[int], secrets: list[str], stop: Any, out: Any) -> None:
    """Live receivers on these ports: verify each signature, note (webhook-id, event
    time, receipt time); the notes go to ``out`` when ``stop`` is set."""
    from standardwebhooks.webhooks import Webhook

    notes: list[list[tuple[str, str, float, bool]]] = [[] for _ in ports]
    servers = []
    for i, port in enumerate(ports):
        hook = Webhook(secrets[i])

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            idx = i
            verifier = hook

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                at = time.time()
                try:
                    self.verifier.verify(raw, dict(self.headers.items()))
                    ok = True
                except Exception:  # noqa: BLE001 - counted as an invariant
                    ok = False
                body = json.loads(raw)
                notes[self.idx].append((self.headers["webhook-id"], body["timestamp"], at, ok))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    counts = out  # a shared array: how many each has, for the parent to poll
    while not stop.is_set():
        for i, n in enumerate(notes):
            counts[i] = len(n)
        time.sleep(0.05)
    for i, n in enumerate(notes):
        counts[i] = len(n)
    path = Path(os.environ["BENCH_WH_NOTES"])
    path.write_text(json.dumps(notes))
    for srv in servers:
        srv.shutdown()


class DeadEndpoint:
    """Accepts connections and never answers (``hang``), or nothing listens (``refused``)."""

    def __init__(self, how: str) -> None:
        self.port = free_port()
        self.sock: socket.socket | None = None
        if how == "hang":
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", self.port))
            self.sock.listen(1024)  # never accepted: the client waits out its timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


# ---- the sender (a process of its own, as serve's scheduler process is) -----------------


def _sender(url: str, key_file: str, poll: float, stop: Any, nice: int = 10) -> None:
    """``webhooks.Dispatcher`` as ``serve`` runs it, until ``stop`` is set."""
    settings = Settings(database_url=url, key_file=Path(key_file), webhook_poll_seconds=poll,
                        webhook_nice=nice)  # fmt: skip
    ctx = open_context(settings, upgrade=False)
    sender = webhooks.Dispatcher(ctx.factory, ctx.settings).start()
    stop.wait()
    sender.stop(wait=True)
    ctx.close()


class Sender:
    def __init__(self, url: str, key_file: Path, poll: float, nice: int = 10) -> None:
        spawn = mp.get_context("spawn")
        self.stop_event = spawn.Event()
        self.proc = spawn.Process(target=_sender, args=(url, str(key_file), poll,
                                                        self.stop_event, nice))  # fmt: skip
        self.proc.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.proc.join(60)


def _cpu(sender: int | None, receivers: int | None) -> tuple[float, float, float]:
    """CPU seconds of the sender's process, the receivers' and this one."""
    got = cpu_of([p for p in (sender, receivers) if p is not None])
    me = resource.getrusage(resource.RUSAGE_SELF)
    return (got.get(sender or -1, 0.0), got.get(receivers or -1, 0.0),
            me.ru_utime + me.ru_stime)  # fmt: skip


# ---- the database ----------------------------------------------------------------------


@dataclass
class Database:
    url: str
    drop: Any


def open_database(db: str | None, workdir: Path) -> Database:
    if db is not None and db.startswith("sqlite"):
        return Database(f"sqlite:///{workdir / 'bench.sqlite3'}", lambda: None)
    given = make_url(db or PG_DEFAULT)
    name = f"bench_wh_{os.getpid()}"
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return Database(given.set(database=name).render_as_string(hide_password=False), drop)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# ---- the runs --------------------------------------------------------------------------


def make_endpoints(ctx: Context, urls: list[str], timeout: float) -> list[str]:
    secrets = []
    with transaction(ctx.factory) as s:
        for url in urls:
            secrets.append(webhooks.create(s, ADMIN, url, ["*"], timeout_seconds=timeout)[1])
    return secrets


def remove_endpoints(ctx: Context) -> None:
    with transaction(ctx.factory) as s:
        for ep in webhooks.endpoints(s, ADMIN):
            webhooks.remove(s, ADMIN, ep.id)


def fan_out_run(ctx: Context, n: int, counts: Any) -> dict[str, Any]:
    with reading(ctx.factory) as s:
        before = s.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0
    base = [counts[i] for i in range(LIVE)]
    started = time.time()
    chunk = 500
    for start in range(0, n, chunk):
        with transaction(ctx.factory) as s:
            events.emit_many(s, [events.row("webhook.test", {"n": i})
                                 for i in range(start, min(n, start + chunk))])  # fmt: skip
    committed = time.time() - started
    deadline = time.time() + max(600.0, n / 5)
    while any(counts[i] - base[i] < n for i in range(LIVE)):
        if time.time() > deadline:
            raise SystemExit(f"INVARIANT FAILED: not all delivered: {list(counts)}")
        time.sleep(0.05)
    return {"first_id": before, "started": started, "commit_seconds": committed}


def activation_pass(ctx: Context, keys: list[str], threads: int) -> float:
    started = time.perf_counter()

    def one(k: str) -> None:
        user = k.split("/")[0]
        run_activation(ctx.factory, ADMIN, ActivationRequest(user, "Bench", k))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, keys))
    return len(keys) / (time.perf_counter() - started)


def seed_customers(ctx: Context, n: int) -> list[str]:
    with transaction(ctx.factory) as s:
        registry.create_router(s, "bench", {
            "name": "r1", "host": "127.0.0.250", "api_port": 1, "username": "a",
            "password": "p", "radius_secret": "s", "mode": "radius"})
        registry.create_master_package(s, "bench", {
            "name": "m", "customer_type": "pppoe", "rate_down": "10M", "rate_up": "5M",
            "billing": "daily", "duration_days": 1})
        registry.create_package(s, "bench", {
            "name": "Bench", "master_package": "m", "customer_price": "10",
            "operator_price": "8", "visibility": "public"})
    names = [f"c{i}" for i in range(n)]
    for start in range(0, n, 500):
        with transaction(ctx.factory) as s:
            for u in names[start:start + 500]:
                registry.create_customer(s, "bench", {
                    "username": u, "password": "p", "customer_type": "pppoe", "router": "r1"})
    return names


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--activations", type=int, default=1000, help="per pass")
    p.add_argument("--threads", type=int, default=8, help="activation threads")
    p.add_argument("--dead", choices=["hang", "refused"], default="hang")
    p.add_argument("--timeout", type=float, default=2.0, help="endpoints' timeout, seconds")
    p.add_argument("--poll", type=float, default=0.5, help="webhook_poll_seconds (default 0.5)")
    p.add_argument("--nice", type=int, default=10, help="webhook_nice (default 10; 0: none)")
    p.add_argument("--db", default=None, help="a PostgreSQL URL, or sqlite (default: PostgreSQL)")
    p.add_argument("--quick", action="store_true", help="1,000 events, 200 activations a pass")
    o = p.parse_args(argv)
    if o.quick:
        o.events, o.activations = 1000, 200
    workdir = Path(tempfile.mkdtemp(prefix="bench-wh-"))
    db = open_database(o.db, workdir)
    dead = DeadEndpoint(o.dead)
    figures: dict[str, Any] = {"events": o.events, "endpoints": LIVE + 1, "dead": o.dead}
    try:
        settings = Settings(database_url=db.url, key_file=workdir / "key")
        ctx = open_context(settings)
        ports = [free_port() for _ in range(LIVE)]
        urls = [f"http://127.0.0.1:{port}/hook" for port in ports]
        secrets = make_endpoints(ctx, [*urls, dead.url], o.timeout)
        stop = mp.Event()
        counts = mp.Array("i", LIVE)
        notes_path = workdir / "notes.json"
        os.environ["BENCH_WH_NOTES"] = str(notes_path)
        receivers = mp.get_context("fork").Process(
            target=_serve, args=(ports, secrets[:LIVE], stop, counts), daemon=True
        )
        receivers.start()
        time.sleep(0.5)
        start_sender = lambda: Sender(db.url, workdir / "key", o.poll, o.nice)  # noqa: E731
        sender = start_sender()
        say(f"fan-out: {o.events} events to {LIVE} live endpoints and one dead ({o.dead})")
        run = fan_out_run(ctx, o.events, counts)
        done = time.time()
        seconds = done - run["started"]
        figures.update(
            fanout_seconds=round(seconds, 2), events_per_s=round(o.events / seconds, 1),
            deliveries_per_s=round(LIVE * o.events / seconds, 1),
            commit_seconds=round(run["commit_seconds"], 2),
        )  # fmt: skip
        say(f"  {figures['events_per_s']} events/s ({figures['deliveries_per_s']} deliveries/s "
            f"to the live ones; the {o.events} events committed in "
            f"{figures['commit_seconds']} s)")  # fmt: skip
        with reading(ctx.factory) as s:
            dead_ep = s.scalars(select(WebhookEndpoint).where(WebhookEndpoint.url == dead.url)).one()
            tries = s.scalar(
                select(text("sum(attempts)")).select_from(WebhookDelivery.__table__)
                .where(WebhookDelivery.endpoint_id == dead_ep.id)
            )  # fmt: skip
            figures["dead_tries"] = int(tries or 0)
        say(f"  the dead endpoint: {figures['dead_tries']} tries so far, failing since "
            f"{dead_ep.failing_since}, enabled={dead_ep.enabled}")  # fmt: skip

        # ---- activations: webhooks off / on, alternated --------------------------------
        order = ["warm-up", "off", "on", "on", "off", "off", "on"]  # ABBA: drift cancels
        names = seed_customers(ctx, o.activations * len(order))
        sender.stop()
        off: list[float] = []
        on: list[float] = []
        cpu_ms: list[list[float]] = []
        for i, mode in enumerate(order):
            keys = [f"{u}/k{i}" for u in names[i * o.activations:(i + 1) * o.activations]]
            with transaction(ctx.factory) as s:  # off: no endpoint to deliver to, no sender
                s.execute(WebhookEndpoint.__table__.update().values(enabled=mode != "off"))
            if mode != "off":
                sender = start_sender()
                time.sleep(2)  # started and polling before the pass
            cpu0 = _cpu(sender.proc.pid, receivers.pid)
            rate = activation_pass(ctx, keys, o.threads)
            cpu1 = _cpu(sender.proc.pid, receivers.pid)
            if mode != "off":
                sender.stop()
                ms = [(b - a) * 1000 / len(keys) for a, b in zip(cpu0, cpu1, strict=True)]
                cpu_ms.append(ms)
                say(f"    CPU per activation: the sender {ms[0]:.2f} ms, the receivers "
                    f"{ms[1]:.2f} ms, this process {ms[2]:.2f} ms")  # fmt: skip
            if mode != "warm-up":
                (on if mode == "on" else off).append(rate)
            say(f"  activations, webhooks {mode}: {rate:.1f}/s")
        ratio = statistics.mean(on) / statistics.mean(off)
        figures["cpu_ms_per_activation_on"] = {
            k: round(statistics.mean(m[i] for m in cpu_ms[1:]), 2)
            for i, k in enumerate(("sender", "receivers", "bench"))
        }
        figures.update(activations_off=[round(x, 1) for x in off],
                       activations_on=[round(x, 1) for x in on], on_off_ratio=round(ratio, 3))
        say(f"  activations/s with webhooks on / off: {ratio:.3f} (goal: at least 0.90)")
        # Deliver what the "on" passes and the "off" ones left, then read the notes.
        with transaction(ctx.factory) as s:
            s.execute(WebhookEndpoint.__table__.update().values(enabled=True))
        sender = start_sender()
        total = o.events + len(order) * o.activations
        deadline = time.time() + 600
        while any(counts[i] < total for i in range(LIVE)) and time.time() < deadline:
            time.sleep(0.1)
        sender.stop()
        stop.set()
        receivers.join(30)
        notes = json.loads(notes_path.read_text())
        bad = []
        lat_all: list[float] = []
        for i, got in enumerate(notes):
            ids = [g[0] for g in got]
            if len(ids) != len(set(ids)):
                bad.append(f"receiver {i}: {len(ids) - len(set(ids))} duplicates")
            if len(set(ids)) != total:
                bad.append(f"receiver {i}: {len(set(ids))} of {total} events")
            if not all(g[3] for g in got):
                bad.append(f"receiver {i}: a signature did not verify")
            lat = [(g[2] - datetime.fromisoformat(g[1]).timestamp()) * 1000
                   for g in got[: o.events]]  # fmt: skip
            lat_all += lat
            say(f"  receiver {i}: latency p50 {percentile(lat, 0.5):.0f} ms, p99 "
                f"{percentile(lat, 0.99):.0f} ms, max {max(lat):.0f} ms")  # fmt: skip
        figures.update(latency_p50_ms=round(percentile(lat_all, 0.5)),
                       latency_p99_ms=round(percentile(lat_all, 0.99)),
                       latency_max_ms=round(max(lat_all)))  # fmt: skip
        say(f"fan-out latency to the live ones (commit to receipt): p50 "
            f"{figures['latency_p50_ms']} ms, p99 {figures['latency_p99_ms']} ms")  # fmt: skip
        for b in bad:
            say(f"INVARIANT FAILED: {b}")
        print(json.dumps(figures))
        ctx.close()
        return 1 if bad else 0
    finally:
        dead.close()
        db.drop()


if __name__ == "__main__":
    sys.exit(main())
