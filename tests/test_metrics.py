"""Metrics worth alerting on, end to end: a sync that repairs drift on the RouterOS
simulator, CoA answered ACK, NAK and not at all by a pyrad CoA server, activations, then
one scrape of ``/metrics`` through the app finds each figure with its labels. The
Grafana dashboard and the Prometheus alert rules in ``deploy/`` use only metrics that
``/metrics`` exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select, update

from nas_adapters.routeros_sim import SimulatedRouter
from provisioner import outbox, sync
from provisioner.api import create_app
from provisioner.auth import create_token
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import Outbox, Router, utcnow
from provisioner.radius_tables import radacct
from tests.support.coa_server import CoaServer
from tests.support.factories import Factory
from tests.support.require import require

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> tuple[str, Samples]:
    text = client.get("/metrics").text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def coa() -> Iterator[CoaServer]:
    with CoaServer("s3cret") as server:
        yield server


@pytest.fixture
def mctx(ctx_factory: Any) -> Context:
    # Small CoA timeouts: an unanswered CoA costs 3 × 0.5 s (pyrad retries twice); at 0.2 s
    # an answer on a loaded machine (load average 8) came too late and failed the test.
    return ctx_factory("sqlite", coa_timeout_seconds=0.5)


def online(ctx: Context, username: str, sid: str) -> None:
    """An open accounting session, as FreeRADIUS records one (no stop time)."""
    with transaction(ctx.factory) as s:
        s.execute(
            insert(radacct).values(
                acctsessionid=sid,
                acctuniqueid=f"u-{sid}",
                username=username,
                nasipaddress="127.0.0.1",
                acctstarttime=utcnow(),
                framedipaddress="10.1.0.9",
            )
        )


def drain(ctx: Context) -> dict[str, int]:
    return outbox.drain(ctx.factory, ctx.settings)


def test_a_scrape_after_drift_coa_ack_nak_timeout_and_activations_finds_each_figure(
    mctx: Context, sim: SimulatedRouter, coa: CoaServer
) -> None:
    ctx, make = mctx, Factory(mctx)
    router = make.router(sim, mode="radius", coa_port=coa.port)
    home = make.master(name="home", rate_down="10M", rate_up="5M")
    pkg = make.package(home, name="Home")
    make.customer(pkg, router, username="alice")
    make.customer(None, router, username="bob", status="new")
    online(ctx, "alice", "81a00001")
    with transaction(ctx.factory) as s:
        admin = create_token(s, role="admin")
    client = TestClient(create_app(ctx))
    _, before = scrape(client)

    # A first sync builds the router; a hand edit on it is drift the reconcile repairs.
    [first] = sync.sync_many(ctx.factory, ctx.settings, sync.router_ids(ctx.factory))
    assert first.status == "ok" and first.applied > 0, first.error
    [profile] = [p for p in sim.items("/ppp/profile") if p["name"] == home]
    sim.remove_item("/ppp/profile", profile[".id"])
    ids = sync.router_ids(ctx.factory)
    [repair] = sync.sync_many(ctx.factory, ctx.settings, ids, trigger="reconcile")
    assert repair.status == "ok" and repair.applied == 1, repair.error

    # An activation, and one refused (no such package).
    headers = {"Authorization": f"Bearer {admin}"}
    body = {"customer": "bob", "package": pkg, "idempotency_key": "m-1"}
    r = client.post("/api/v1/activations", headers=headers, json=body)
    assert r.status_code == 201, r.text
    body = {"customer": "bob", "package": "no-such", "idempotency_key": "m-2"}
    assert client.post("/api/v1/activations", headers=headers, json=body).status_code == 404
    drain(ctx)

    # CoA answered ACK, then NAK (ended by a Disconnect instead), then not at all.
    def speed(down: str) -> None:  # what a speed change of alice's package queues
        with transaction(ctx.factory) as s:
            rid = s.scalar(select(Router.id).where(Router.name == router))
            payload = {
                "User-Name": "alice",
                "Acct-Session-Id": "81a00001",
                "Mikrotik-Rate-Limit": f"5M/{down}",
            }
            s.add(Outbox(kind="coa", router_id=rid, payload=payload))

    coa.clear()
    speed("20M")
    assert drain(ctx)["done"] == 1
    coa.nak = True
    speed("30M")
    assert drain(ctx)["done"] == 1
    coa.nak, coa.silent = False, True
    speed("40M")
    assert drain(ctx)["retry"] == 1
    got = [c for c, _ in coa.received]
    assert got[:3] == ["CoA-Request", "CoA-Request", "Disconnect-Request"]
    assert set(got[3:]) == {"CoA-Request"}  # the unanswered one, retransmitted
    with transaction(ctx.factory) as s:  # the backlog: that CoA, two minutes old
        s.execute(
            update(Outbox)
            .where(Outbox.status == "pending")
            .values(created_at=utcnow() - timedelta(seconds=120))
        )

    text, after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Syncs: per router, by outcome; their time; drift repaired, by menu.
    # (2 here, and those the outbox ran on registry changes: trigger=change)
    runs = delta("provisioner_sync_runs_total", router=router, status="ok")
    assert runs >= 2
    assert delta("provisioner_sync_duration_seconds_count", router=router) == runs
    assert delta("provisioner_sync_duration_seconds_bucket", router=router, le="+Inf") == runs
    assert delta("provisioner_sync_duration_seconds_sum", router=router) > 0

    def profiles(trigger: str) -> float:
        labels = {"router": router, "menu": "/ppp/profile", "trigger": trigger}
        return delta("provisioner_sync_changes_applied_total", **labels)

    assert profiles("reconcile") == 1  # the drift: one profile removed by hand
    assert profiles("manual") >= 1  # every applied sync counts, by its trigger
    # CoA and Disconnect outcomes by router.
    coa_ = {"router": router, "request": "coa"}
    assert delta("provisioner_radius_requests_total", **coa_, outcome="ack") == 1
    assert delta("provisioner_radius_requests_total", **coa_, outcome="nak") == 1
    assert delta("provisioner_radius_requests_total", **coa_, outcome="timeout") == 1
    # A CoA-NAK is followed by a Disconnect, here NAKed with Error-Cause 503: the session
    # was already gone, which is success for a Disconnect.
    disconnect = {"router": router, "request": "disconnect"}
    assert delta("provisioner_radius_requests_total", **disconnect, outcome="nak") == 1
    # Activations by outcome, and their time.
    assert delta("provisioner_activations_total", result="created") == 1
    assert delta("provisioner_activation_duration_seconds_count", result="created") == 1
    assert delta("provisioner_activation_duration_seconds_count", result="NotFound") == 1
    # Read from the database at scrape time.
    age = value(after, "provisioner_outbox_oldest_pending_age_seconds")
    assert 119 <= age < 180
    assert value(after, "provisioner_outbox_rows", kind="coa", status="pending") == 1
    assert value(after, "provisioner_customers_online", router=router) == 1
    last = value(after, "provisioner_router_last_sync_success_timestamp_seconds", router=router)
    assert time.time() - 60 < last <= time.time() + 1
    assert value(after, "provisioner_router_sync_failing", router=router) == 0
    assert value(after, "provisioner_reconcile_interval_seconds") == 300
    # Routers by name; never a customer, a password or a secret.
    for secret in ("alice", "bob", "s3cret", admin):
        assert secret not in text


def test_a_failing_router_shows_as_failing_and_keeps_its_last_success(
    mctx: Context, sim: SimulatedRouter
) -> None:
    make = Factory(mctx)
    router = make.router(sim)
    make.customer(make.package(make.master()), router)
    client = TestClient(create_app(mctx))
    assert (
        sync.sync_many(mctx.factory, mctx.settings, sync.router_ids(mctx.factory))[0].status == "ok"
    )
    sim.refuse = True
    [down] = sync.sync_many(mctx.factory, mctx.settings, sync.router_ids(mctx.factory))
    assert down.status == "unreachable"
    _, got = scrape(client)
    assert value(got, "provisioner_router_sync_failing", router=router) == 1
    assert value(got, "provisioner_router_last_sync_success_timestamp_seconds", router=router) > 0
    assert value(got, "provisioner_sync_runs_total", router=router, status="unreachable") >= 1


# ---- deploy/: the dashboard and the alert rules use only what /metrics exposes ----------


def exposed_names(mctx: Context) -> set[str]:
    """Every series name /metrics can carry (a counter's _total, a histogram's _bucket…)."""
    text = TestClient(create_app(mctx)).get("/metrics").text
    names: set[str] = set()
    for f in text_string_to_metric_families(text):
        if f.type == "counter":
            names |= {f.name + "_total"}
        elif f.type == "histogram":
            names |= {f.name + s for s in ("_bucket", "_count", "_sum")}
        else:
            names.add(f.name)
    return names


METRIC = re.compile(r"\bprovisioner_[a-z_]+\b")


def test_alert_rules_are_well_formed_and_use_exposed_metrics(mctx: Context) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    names = exposed_names(mctx)
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert {r["alert"] for r in alerts} >= {
        "RouterSyncFailing",
        "RouterNotSynced",
        "OutboxBacklogOld",
        "CoaTimeoutsRising",
        "ActivationLatencyHigh",
    }
    for r in alerts:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"]
        used = set(METRIC.findall(r["expr"]))
        assert used <= names, (r["alert"], used - names)
        assert used or r["alert"] == "ProvisionerDown"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_promtool_accepts_the_rules() -> None:
    require(shutil.which("promtool") is not None, "promtool is not installed")
    out = subprocess.run(
        ["promtool", "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_dashboard_queries_only_exposed_metrics(mctx: Context) -> None:
    names = exposed_names(mctx)
    dashboards = list((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        board = json.loads(path.read_text())
        exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        assert len(exprs) >= 8
        used = {m for e in exprs for m in METRIC.findall(e)}
        assert used <= names, used - names
        for p in board["panels"]:
            for t in p.get("targets", []):
                assert t["datasource"]["uid"] == "prometheus"
    provisioning = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [ds] = provisioning["datasources"]
    assert ds["uid"] == "prometheus" and ds["type"] == "prometheus"


def test_compose_starts_prometheus_and_grafana_only_with_the_monitoring_profile() -> None:
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY.parent / source).exists(), source
    assert all("profiles" not in services[s] for s in ("postgres", "provisioner", "freeradius"))
