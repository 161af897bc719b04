"""``provisioner serve``: the HTTP API and the scheduler in one process.

The API's port is bound first: only then is the instance registered under its name
("<hostname>:<port>" unless ``instance_name`` is set), so two live daemons never share a
name, and a restart after a crash takes its predecessor's unfinished work back at once.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import uvicorn
from rich.console import Console

from provisioner import fleet, instances, metrics, scheduler, sync, webhooks
from provisioner.api import workers as api_workers
from provisioner.config import Settings
from provisioner.context import Context, worker_pool
from provisioner.planning.diff import redact
from provisioner.planning.render import render

log = logging.getLogger(__name__)


def worker_count(ctx: Context, given: int | None) -> int:
    """API worker processes: ``given`` (``serve --workers``), else ``api_workers``; 0 is
    one per core, and unset is one per core on PostgreSQL and one on SQLite."""
    n = given if given is not None else ctx.settings.api_workers
    if n is None:
        n = 1 if ctx.engine.dialect.name == "sqlite" else 0
    return n or os.cpu_count() or 1


def connection_budget(settings: Settings, workers: int, cores: int | None = None) -> int:
    """The most database connections one instance on PostgreSQL opens: the process running
    the scheduler (``db_pool_size`` + ``db_max_overflow``, and two per concurrent sync),
    the processes its fleet syncs spread over (``fleet.connections``; ``cores``: this
    machine's), and with several API worker processes each one's part of
    ``db_api_connections``; one process does both when there is one worker."""
    scheduler = settings.db_pool_size + settings.db_max_overflow + 2 * settings.sync_concurrency
    scheduler += fleet.connections(settings, fleet.processes(settings, "postgresql", cores))
    if workers <= 1:
        return scheduler
    return scheduler + workers * sum(worker_pool(settings, workers))


def run(
    ctx: Context, *, demo: bool, host: str | None, port: int | None, workers: int | None = None
) -> None:
    """Serve the API from ``workers`` processes (default: ``api_workers``; see
    ``worker_count``) and run the scheduler in this one. With several, every process
    counts its metrics into one temporary directory, which /metrics adds up."""
    from provisioner.api import SERVE_PID, SERVE_WORKERS, create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    scheduler.quiet_logs()
    console = Console()
    workers = worker_count(ctx, workers)
    where = {"host": host or ctx.settings.api_host, "port": port or ctx.settings.api_port}
    if workers > 1:
        # Each worker is a fresh process (spawned) that opens its own context, and ends
        # when this process is gone (``api._end_with_parent``).
        os.environ[SERVE_PID] = str(os.getpid())
        os.environ[SERVE_WORKERS] = str(workers)  # each opens its part of the connections
        config = uvicorn.Config(
            "provisioner.api:app_from_settings", factory=True, workers=workers,
            log_level="info", **where,
        )  # fmt: skip
    else:
        config = uvicorn.Config(create_app(ctx), log_level="info", **where)
    sock = config.bind_socket()  # exits if the port is taken: the name stays unique
    name = instances.default_name(ctx.settings, sock.getsockname()[1])
    claims, runs = instances.start(ctx.factory, name)
    log.info("instance %s (took back %d outbox claims, %d sync runs)", name, claims, runs)
    s = ctx.settings
    size, overflow = worker_pool(s, workers)
    log.info(
        "database connections: at most %d for this instance (the scheduler's process "
        "db_pool_size %d + db_max_overflow %d + 2 x sync_concurrency %d, fleet sync "
        "processes %d%s); run more instances and PostgreSQL's max_connections must hold "
        "them all",
        connection_budget(s, workers), s.db_pool_size, s.db_max_overflow, s.sync_concurrency,
        fleet.connections(s, fleet.processes(s, ctx.engine.dialect.name)),
        f", {workers} API worker processes x ({size} + {overflow})" if workers > 1 else "",
    )  # fmt: skip
    shared = None
    if workers > 1 and not metrics.shared():
        shared = tempfile.mkdtemp(prefix="provisioner-metrics-")
        metrics.share_across_processes(shared)
    sim = None
    if demo:
        from provisioner import demo as demo_data

        sim = demo_data.start_router()
        token = demo_data.seed(ctx, sim)
        console.print(f"[bold]demo:[/] simulated RouterOS at {sim.host}:{sim.port} (admin/demo)")
        if token:
            console.print(f"[bold]demo:[/] admin API token: {token}")
        password = demo_data.web_admin(ctx)
        if password:
            console.print(
                f"[bold]demo:[/] web panel /ui/ login: {demo_data.WEB_ADMIN} / {password}"
                " (customers: /portal/ with their PPPoE login, e.g. rahim / rahim-pw)",
                highlight=False,
            )
        ids = sync.router_ids(ctx.factory)
        plans = [r.plan for r in sync.sync_many(ctx.factory, ctx.settings, ids, dry_run=True)]
        console.print("[bold]demo: what a sync would change (provisioner diff):[/]")
        console.print(render([redact(p) for p in plans]), highlight=False, markup=False)
        for r in sync.sync_many(ctx.factory, ctx.settings, ids, trigger="demo"):
            console.print(f"[bold]demo:[/] synced {r.router}: {r.status}, {r.applied} changes")
    sched = scheduler.start(ctx)
    sender = webhooks.Dispatcher(ctx.factory, ctx.settings).start()  # events out
    try:
        if workers > 1:
            log.info("serving from %d worker processes", workers)
        else:
            api_workers.freeze_heap()  # this process serves: its objects so far live for good
        api_workers.serve(config, sock, workers)
    finally:
        sched.shutdown(wait=False)
        sender.stop()
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)
        if sim is not None:
            sim.stop()
