"""Prometheus metrics: what an operator alerts on (routers failing, work piling up)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from provisioner.db import transaction
from provisioner.models import Customer, Outbox

REGISTRY = CollectorRegistry()
SYNC_RUNS = Counter(
    "provisioner_sync_runs", "Router syncs by outcome", ["status"], registry=REGISTRY
)
ROUTER_WRITES = Counter(
    "provisioner_router_writes", "Changes applied to routers", registry=REGISTRY
)
ACTIVATIONS = Counter(
    "provisioner_activations", "Activation requests by outcome", ["result"], registry=REGISTRY
)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time (true across daemon instances)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with transaction(self.factory) as s:
            outbox = GaugeMetricFamily(
                "provisioner_outbox_rows", "NAS work by kind and status", labels=["kind", "status"]
            )
            q = select(Outbox.kind, Outbox.status, func.count()).group_by(
                Outbox.kind, Outbox.status
            )
            for kind, status, n in s.execute(q):
                outbox.add_metric([kind, status], n)
            yield outbox
            customers = GaugeMetricFamily(
                "provisioner_customers", "Customers by status", labels=["status"]
            )
            for status, n in s.execute(
                select(Customer.status, func.count()).group_by(Customer.status)
            ):
                customers.add_metric([str(status)], n)
            yield customers


_collector: DatabaseCollector | None = None


def render(factory: sessionmaker[Session]) -> bytes:
    global _collector
    if _collector is None:
        _collector = DatabaseCollector(factory)
        REGISTRY.register(_collector)
    _collector.factory = factory
    return generate_latest(REGISTRY)
