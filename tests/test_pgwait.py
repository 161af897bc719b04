"""``pgwait``: a pipeline's statements go out without asking the kernel (and releasing
Python's lock) before each, and a pipeline larger than the socket's buffers still
completes with every answer right."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from psycopg import waiting
from sqlalchemy import bindparam, insert, select

from provisioner import pgwait
from provisioner.batch import Batch
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import Account

_acc = Account.__table__
ADD = insert(_acc)
READ = select(_acc.c.account).where(_acc.c.account == bindparam("account"))


@pytest.fixture
def pg(ctx_factory: Any) -> Context:
    return ctx_factory("postgresql")


def kernel_waits(
    ctx: Context, statements: int, monkeypatch: pytest.MonkeyPatch, *, ours: bool = True
) -> int:
    """How many times one batch of ``statements`` reads went to psycopg's own wait (which
    asks the kernel, with Python's lock released): through ``pgwait``, or without it."""
    calls = 0
    real = pgwait._psycopg_wait

    def counted(*args: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kw)

    with transaction(ctx.factory) as s:
        conn = s.connection()
        conn.exec_driver_sql("SELECT 1")  # the transaction's BEGIN, outside the count
        with monkeypatch.context() as m:
            m.setattr(pgwait, "_psycopg_wait", counted)
            if not ours:
                m.setattr(waiting, "wait", counted)
            w = Batch(conn)
            for i in range(statements):
                w.add(READ, {"account": f"none:{i}"})
            assert [rows for _, rows in w.run()] == [[]] * statements
    return calls


def test_a_pipeline_waits_for_its_answers_not_before_each_statement(
    pg: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert waiting.wait is pgwait.wait  # installed with the PostgreSQL engine
    # The answers may come in one read or two, however many statements there are.
    assert [kernel_waits(pg, n, monkeypatch) <= 2 for n in (1, 8, 64)] == [True] * 3
    # Without it, psycopg's own wait runs for each statement (asking the kernel before
    # the statement is sent, and again to send it).
    assert kernel_waits(pg, 64, monkeypatch, ours=False) >= 64


def test_a_pipeline_larger_than_the_socket_buffers_completes(pg: Context) -> None:
    # 400 statements of 64 KiB each: 25 MiB, far past what the socket takes at once, so
    # sends are partial and psycopg asks again, through the kernel.
    big = "x" * 65536
    with transaction(pg.factory) as s:
        w = Batch(s.connection())
        for i in range(400):
            w.add(ADD, {"account": f"big:{i:03d}", "balance": Decimal(i), "floor": 0})
            w.add(select(bindparam("v").label("v")), {"v": big})
        answers = w.run()
    assert all(n == 1 for n, _ in answers[0::2])
    assert all(rows == [(big,)] for _, rows in answers[1::2])
    with transaction(pg.factory) as s:
        got = s.scalars(select(Account.balance).where(Account.account.like("big:%"))).all()
    assert sorted(got) == [Decimal(i) for i in range(400)]
