"""Prometheus metrics: what an operator alerts on (routers failing, work piling up).

Labels are bounded: routers by name, menus, triggers, outcomes, never a customer. Counts
of what this process did are counters and histograms; what is true of the whole system
(outbox backlog, customers online, each router's last sync) is read from the database at
scrape time, so it is the same whichever daemon instance is scraped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session, sessionmaker

from provisioner.config import Settings
from provisioner.db import transaction
from provisioner.models import Customer, LedgerCheck, Outbox, Router, SyncRun, utcnow
from provisioner.radius_tables import radacct

SYNC_RUNS: Counter
ROUTER_WRITES: Counter
SYNC_SECONDS: Histogram
SYNC_CHANGES: Counter
RADIUS_REQUESTS: Counter
ACTIVATIONS: Counter
ACTIVATION_SECONDS: Histogram
SESSIONS_REPAIRED: Counter
REGISTRY: CollectorRegistry


def _define() -> None:
    """Make the metrics (again, after ``share_across_processes``: values in files)."""
    global REGISTRY, SYNC_RUNS, ROUTER_WRITES, SYNC_SECONDS, SYNC_CHANGES
    global RADIUS_REQUESTS, ACTIVATIONS, ACTIVATION_SECONDS, SESSIONS_REPAIRED
    REGISTRY = CollectorRegistry()
    SYNC_RUNS = Counter(
        "provisioner_sync_runs", "Router syncs by router and outcome", ["router", "status"],
        registry=REGISTRY,
    )  # fmt: skip
    ROUTER_WRITES = Counter(
        "provisioner_router_writes", "Changes applied to routers", registry=REGISTRY
    )
    SYNC_SECONDS = Histogram(
        "provisioner_sync_duration_seconds",
        "Wall time of one applied sync (read, plan, apply, record), by router",
        ["router"],
        buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        registry=REGISTRY,
    )
    SYNC_CHANGES = Counter(
        "provisioner_sync_changes_applied",
        "Changes applied to routers by menu and sync trigger; under trigger=reconcile they are "
        "drift repaired (the router no longer matched the registry)",
        ["router", "menu", "trigger"],
        registry=REGISTRY,
    )
    RADIUS_REQUESTS = Counter(
        "provisioner_radius_requests",
        "CoA and Disconnect requests to routers by reply: ack, nak, timeout (no valid reply)",
        ["router", "request", "outcome"],
        registry=REGISTRY,
    )
    ACTIVATIONS = Counter(
        "provisioner_activations", "Activation requests by outcome", ["result"], registry=REGISTRY
    )
    ACTIVATION_SECONDS = Histogram(
        "provisioner_activation_duration_seconds",
        "Time to run one activation (its whole transaction), by outcome",
        ["result"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        registry=REGISTRY,
    )
    SESSIONS_REPAIRED = Counter(
        "provisioner_sessions_repaired",
        "Open radacct sessions repaired: closed (no word from the router for three interim "
        "intervals: a lost Stop) or disconnected (the customer has no right to it now)",
        ["action"],
        registry=REGISTRY,
    )


_define()
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_across_processes(directory: str) -> None:
    """Count into files in ``directory`` (prometheus_client's multiprocess mode), in this
    process and in every process it starts from now on (they inherit the environment), so
    /metrics of any ``serve`` worker adds up all of them, the scheduler's parent included.
    Called before the first count; ``directory`` must be empty and outlive the workers."""
    os.environ[MULTIPROC_ENV] = directory
    values.ValueClass = values.get_value_class()  # read once at import; this process again
    _define()


def shared() -> bool:
    return MULTIPROC_ENV in os.environ


def record_sync(
    router: str, status: str, trigger: str, menus: Iterable[str], seconds: float | None
) -> None:
    """Count one sync: its outcome, its applied changes by menu, and (when it ran) its time."""
    SYNC_RUNS.labels(router, status).inc()
    n = 0
    for menu in menus:
        SYNC_CHANGES.labels(router, menu, trigger).inc()
        n += 1
    ROUTER_WRITES.inc(n)
    if seconds is not None:
        SYNC_SECONDS.labels(router).observe(seconds)


def record_activation(result: str, seconds: float) -> None:
    ACTIVATIONS.labels(result).inc()
    ACTIVATION_SECONDS.labels(result).observe(seconds)


def record_radius(router: str, request: str, outcome: str) -> None:
    """``request``: coa | disconnect; ``outcome``: ack | nak | timeout."""
    RADIUS_REQUESTS.labels(router, request, outcome).inc()


def _epoch(t: datetime) -> float:
    return t.timestamp()


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time (true across daemon instances)."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with transaction(self.factory) as s:
            yield from self._outbox(s)
            customers = GaugeMetricFamily(
                "provisioner_customers", "Customers by status", labels=["status"]
            )
            for status, n in s.execute(
                select(Customer.status, func.count()).group_by(Customer.status)
            ):
                customers.add_metric([str(status)], n)
            yield customers
            yield self._online(s)
            yield from self._routers(s)
            yield from self._ledger(s)
        yield GaugeMetricFamily(
            "provisioner_reconcile_interval_seconds",
            "Configured time between drift-repair syncs of every router",
            value=self.settings.reconcile_interval_seconds,
        )
        yield GaugeMetricFamily(
            "provisioner_ledger_check_interval_seconds",
            "Configured time between the daemon's ledger checks",
            value=self.settings.ledger_check_interval_seconds,
        )

    def _outbox(self, s: Session) -> Iterator[GaugeMetricFamily]:
        outbox = GaugeMetricFamily(
            "provisioner_outbox_rows", "NAS work by kind and status", labels=["kind", "status"]
        )
        q = select(Outbox.kind, Outbox.status, func.count()).group_by(Outbox.kind, Outbox.status)
        for kind, status, n in s.execute(q):
            outbox.add_metric([kind, status], n)
        yield outbox
        oldest = s.scalar(
            select(func.min(Outbox.created_at)).where(Outbox.status.in_(("pending", "running")))
        )
        age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "provisioner_outbox_oldest_pending_age_seconds",
            "Age of the oldest NAS work not yet done (pending or running); 0 when none",
            value=age,
        )

    def _online(self, s: Session) -> GaugeMetricFamily:
        online = GaugeMetricFamily(
            "provisioner_customers_online",
            "Customers with an open RADIUS accounting session (radacct, no stop time), "
            "by the customer's router",
            labels=["router"],
        )
        q = (
            select(Router.name, func.count(distinct(Customer.id)))
            .select_from(radacct)
            .join(Customer, Customer.username == radacct.c.username)
            .outerjoin(Router, Router.id == Customer.router_id)
            .where(radacct.c.acctstoptime.is_(None))
            .group_by(Router.name)
        )
        for router, n in s.execute(q):
            online.add_metric([router or ""], n)
        return online

    def _routers(self, s: Session) -> Iterator[GaugeMetricFamily]:
        last_ok = GaugeMetricFamily(
            "provisioner_router_last_sync_success_timestamp_seconds",
            "When the router's last successful sync finished (Unix time); absent if never",
            labels=["router"],
        )
        q = (
            select(Router.name, func.max(SyncRun.finished_at))
            .join(SyncRun, SyncRun.router_id == Router.id)
            # A run that left conflicts applied all else: the router syncs (the conflicts
            # are ``provisioner_router_sync_failing``'s to report).
            .where(Router.enabled.is_(True), SyncRun.status.in_(("ok", "conflicts")))
            .group_by(Router.name)
        )
        for name, at in s.execute(q):
            if at is not None:
                last_ok.add_metric([name], _epoch(at))
        yield last_ok
        failing = GaugeMetricFamily(
            "provisioner_router_sync_failing",
            "1 when the router's latest finished sync did not succeed (or left conflicts: "
            "customers held back from a profile not ours), else 0",
            labels=["router"],
        )
        latest = (
            select(func.max(SyncRun.id))
            .where(SyncRun.status.notin_(("running", "busy")))
            .group_by(SyncRun.router_id)
        )
        q2 = (
            select(Router.name, SyncRun.status)
            .join(SyncRun, SyncRun.router_id == Router.id)
            .where(Router.enabled.is_(True), SyncRun.id.in_(latest))
        )
        for name, status in s.execute(q2):
            failing.add_metric([name], 0.0 if status == "ok" else 1.0)
        yield failing

    def _ledger(self, s: Session) -> Iterator[GaugeMetricFamily]:
        last = s.scalars(select(LedgerCheck).order_by(LedgerCheck.id.desc()).limit(1)).first()
        mismatches = GaugeMetricFamily(
            "provisioner_ledger_check_mismatches",
            "Accounts whose balance was not the sum of their ledger rows at the last check "
            "(scheduled, or provisioner ledger check); absent before the first",
        )
        when = GaugeMetricFamily(
            "provisioner_ledger_check_timestamp_seconds",
            "When the last ledger check ran (Unix time); absent before the first",
        )
        if last is not None:
            mismatches.add_metric([], last.mismatches)
            when.add_metric([], _epoch(last.checked_at))
        yield mismatches
        yield when


_collector: DatabaseCollector | None = None
_scraped: CollectorRegistry | None = None


def render(factory: sessionmaker[Session], settings: Settings) -> bytes:
    """The exposition text of every metric, the database gauges read now; with
    ``share_across_processes``, the counts of every process of the daemon added up."""
    global _collector, _scraped
    if _collector is None or _scraped is None:
        _collector = DatabaseCollector(factory, settings)
        if shared():
            _scraped = CollectorRegistry()
            MultiProcessCollector(_scraped)
        else:
            _scraped = REGISTRY
        _scraped.register(_collector)
    _collector.factory = factory
    _collector.settings = settings
    return generate_latest(_scraped)
