"""Balances: kept current with each ledger row, never below the floor, proved by ``check``,
and filled from the ledger for databases made before the column existed."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text, update

from provisioner import ledger
from provisioner.context import Context
from provisioner.db import alembic_config, transaction
from provisioner.models import Account, LedgerEntry
from tests.support.factories import Factory


def test_credit_and_debit_move_the_balance_with_the_ledger(any_ctx: Context) -> None:
    make = Factory(any_ctx)
    res = make.reseller()
    with transaction(any_ctx.factory) as s:
        acct = ledger.resolve(s, f"reseller:{res}")
        assert ledger.credit(s, acct, Decimal("100.00"), "topup") == Decimal("100.00")
        assert ledger.debit(s, acct, Decimal("30.50"), "activation") == Decimal("69.50")
        assert ledger.debit(s, acct, Decimal("69.51"), "activation") is None  # below 0: refused
        assert ledger.balance(s, acct) == ledger.ledger_sum(s, acct) == Decimal("69.50")
        assert [e.amount for e in ledger.entries(s, acct)] == [Decimal("100.00"), Decimal("-30.50")]
        assert ledger.check(s) == []


def test_check_finds_a_balance_that_disagrees(any_ctx: Context) -> None:
    res = Factory(any_ctx).reseller()
    with transaction(any_ctx.factory) as s:
        acct = ledger.resolve(s, f"reseller:{res}")
        ledger.credit(s, acct, Decimal("10.00"), "topup")
        assert ledger.check(s) == []
        s.execute(update(Account).values(balance=Decimal("11.00")))
        [bad] = ledger.check(s)
        assert (bad.account, bad.balance, bad.ledger) == (acct, Decimal("11.00"), Decimal("10.00"))
        # Ledger rows of an account with no balance row at all: a balance of 0.
        s.add(LedgerEntry(account="reseller:999", amount=Decimal("2.50"), kind="topup"))
        s.flush()
        assert [(m.account, m.balance, m.ledger) for m in ledger.check(s)] == [
            (acct, Decimal("11.00"), Decimal("10.00")),
            ("reseller:999", Decimal("0.00"), Decimal("2.50")),
        ]


def test_concurrent_debits_never_go_below_the_floor(ctx_factory: Any) -> None:
    ctx = ctx_factory("postgresql")
    res = Factory(ctx).reseller()
    with transaction(ctx.factory) as s:
        acct = ledger.resolve(s, f"reseller:{res}")
        ledger.credit(s, acct, Decimal("150.00"), "topup")
    paid: list[Decimal | None] = []

    def buy() -> None:
        with transaction(ctx.factory) as s:
            paid.append(ledger.debit(s, acct, Decimal("1.00"), "activation"))

    threads = [threading.Thread(target=buy) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for p in paid if p is not None) == 150
    with transaction(ctx.factory) as s:
        assert ledger.balance(s, acct) == Decimal("0.00") and ledger.check(s) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_fills_balances_from_the_ledger(backend: str, tmp_path: Path) -> None:
    from alembic import command

    from tests.conftest import PG_URL, _pg_admin, drop_pg_database

    name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/old.sqlite3"
    else:
        import uuid

        name = f"prov_up_{uuid.uuid4().hex[:10]}"
        admin = _pg_admin()
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        url = PG_URL.format(db=name)
    try:
        command.upgrade(alembic_config(url), "0004")
        engine = create_engine(url)
        with engine.begin() as c:
            c.execute(text("INSERT INTO accounts (account) VALUES ('reseller:1')"))
            for amount in (100000, -40000, 2550):  # minor units: 1000.00 - 400.00 + 25.50
                c.execute(
                    text(
                        "INSERT INTO ledger (account, amount, kind, reference, created_by, created_at) "
                        "VALUES (:a, :m, 'topup', '', '', CURRENT_TIMESTAMP)"
                    ),
                    {"a": "reseller:1", "m": amount},
                )
            c.execute(
                text(
                    "INSERT INTO ledger (account, amount, kind, reference, created_by, created_at) "
                    "VALUES ('customer:7', 500, 'card', '', '', CURRENT_TIMESTAMP)"
                )
            )
        command.upgrade(alembic_config(url), "heads")
        with engine.begin() as c:
            rows = dict(c.execute(text("SELECT account, balance FROM accounts")).all())
        engine.dispose()
        assert rows == {"reseller:1": 62550, "customer:7": 500}
    finally:
        if name:
            drop_pg_database(name)


def test_the_scheduled_check_and_the_cli_keep_their_outcome_for_metrics(
    any_ctx: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon's ledger job and ``provisioner ledger check`` each record what they
    found (``ledger_checks``); /metrics reports the last one, and the job logs every
    account that disagrees as an error."""
    import importlib
    import logging

    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families
    from sqlalchemy import select
    from typer.testing import CliRunner

    from provisioner import scheduler
    from provisioner.api import create_app
    from provisioner.models import LedgerCheck

    client = TestClient(create_app(any_ctx))

    def scraped() -> dict[str, float]:
        text = client.get("/metrics").text
        return {
            s.name: s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name.startswith("provisioner_ledger_check")
        }

    assert scraped() == {"provisioner_ledger_check_interval_seconds": 3600}
    # (no check has run yet: absent, not a false 0)
    make = Factory(any_ctx)
    names = [make.reseller() for _ in range(2)]
    with transaction(any_ctx.factory) as s:
        accounts = [ledger.resolve(s, f"reseller:{name}") for name in names]
        for acct in accounts:
            ledger.credit(s, acct, Decimal("10.00"), "topup")
    scheduler.check_ledger(any_ctx)
    got = scraped()
    assert got["provisioner_ledger_check_mismatches"] == 0
    with transaction(any_ctx.factory) as s:
        first = s.scalars(select(LedgerCheck)).one()
        assert (first.accounts, first.mismatches, first.by) == (2, 0, "scheduler")
    assert abs(got["provisioner_ledger_check_timestamp_seconds"] - first.checked_at.timestamp()) < 1

    with transaction(any_ctx.factory) as s:
        s.execute(update(Account).where(Account.account == accounts[1]).values(balance=11))
    with caplog.at_level(logging.ERROR, logger="provisioner.scheduler"):
        scheduler.check_ledger(any_ctx)
    assert f"{accounts[1]} has balance 11.00 but its ledger sums to 10.00" in caplog.text
    assert scraped()["provisioner_ledger_check_mismatches"] == 1

    with transaction(any_ctx.factory) as s:  # put right by hand; the CLI proves it and says so
        s.execute(update(Account).where(Account.account == accounts[1]).values(balance=10))
    monkeypatch.setattr(importlib.import_module("provisioner.cli.common"), "_ctx", any_ctx)
    cli_root = importlib.import_module("provisioner.cli").app
    result = CliRunner().invoke(cli_root, ["ledger", "check"])
    assert result.exit_code == 0, result.output
    assert scraped()["provisioner_ledger_check_mismatches"] == 0
    with transaction(any_ctx.factory) as s:
        rows = s.scalars(select(LedgerCheck).order_by(LedgerCheck.id)).all()
        assert [(r.mismatches, r.by) for r in rows] == [(0, "scheduler"), (1, "scheduler"),
                                                        (0, "cli")]  # fmt: skip
        assert rows[1].detail == f"{accounts[1]}: balance 11.00, ledger 10.00"


def test_the_check_reads_one_snapshot_while_money_moves(ctx_factory: Any) -> None:
    """The scheduled check runs beside live sales: a debit committed while it reads must
    not show as a balance that disagrees (a false critical alert at 3 a.m.). PostgreSQL's
    READ COMMITTED gives each statement its own snapshot, so the check reads the balances
    and the ledger sums in one statement."""
    ctx = ctx_factory("postgresql")
    res = Factory(ctx).reseller()
    with transaction(ctx.factory) as s:
        acct = ledger.resolve(s, f"reseller:{res}")
        ledger.credit(s, acct, Decimal("100000.00"), "topup")
    stop = threading.Event()

    def sell() -> None:
        while not stop.is_set():
            with transaction(ctx.factory) as s:
                ledger.debit(s, acct, Decimal("0.01"), "activation")

    sellers = [threading.Thread(target=sell) for _ in range(2)]
    for t in sellers:
        t.start()
    try:
        found = []
        for _ in range(150):
            with transaction(ctx.factory) as s:
                found += ledger.check(s)
    finally:
        stop.set()
        for t in sellers:
            t.join(30)
    assert found == []
    with transaction(ctx.factory) as s:
        assert ledger.check(s) == []
        assert ledger.balance(s, acct) < Decimal("100000.00")  # money did move
