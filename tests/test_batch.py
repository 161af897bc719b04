"""``batch.Batch``: statements sent together (PostgreSQL's pipeline) answer as
``Connection.execute`` would: values through the columns' types both ways, errors as
SQLAlchemy's, and nothing left for SQLAlchemy to fill in silently."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from provisioner.batch import Batch
from provisioner.context import Context
from provisioner.db import transaction
from provisioner.models import Account, LedgerEntry

_acc, _led = Account.__table__, LedgerEntry.__table__
ADD = insert(_acc).returning(_acc.c.balance)
READ = select(_acc.c.account, _acc.c.balance).where(_acc.c.account.like(bindparam("like")))
ADD_ENTRY = insert(_led)
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_batch_answers_with_every_statements_rows_typed(any_ctx: Context) -> None:
    with transaction(any_ctx.factory) as s:
        w = Batch(s.connection())
        first = w.add(ADD, {"account": "t:a", "balance": Decimal("12.34"), "floor": 0})
        w.add(ADD, {"account": "t:b", "balance": Decimal("-0.05"), "floor": Decimal("-1")})
        read = w.add(READ, {"like": "t:%"})
        done = w.run()
    assert done[first] == (1, [(Decimal("12.34"),)])
    assert sorted(tuple(r) for r in done[read][1]) == [
        ("t:a", Decimal("12.34")), ("t:b", Decimal("-0.05")),
    ]  # fmt: skip
    assert done[read][1][0].balance in (Decimal("12.34"), Decimal("-0.05"))  # by name too
    with transaction(any_ctx.factory) as s:  # what is stored is what execute would store
        assert s.scalar(select(Account.balance).where(Account.account == "t:b")) == Decimal("-0.05")


def test_a_failing_statement_raises_sqlalchemys_error_and_keeps_nothing(
    any_ctx: Context,
) -> None:
    with transaction(any_ctx.factory) as s:
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:a", "balance": Decimal(1), "floor": 0})
        w.run()
    with pytest.raises(IntegrityError), transaction(any_ctx.factory) as s:
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:c", "balance": Decimal(1), "floor": 0})
        w.add(ADD, {"account": "t:a", "balance": Decimal(2), "floor": 0})  # a duplicate
        w.run()
    with transaction(any_ctx.factory) as s:
        assert s.scalars(select(Account.account).where(Account.account.like("t:%"))).all() == [
            "t:a"
        ]


def test_a_column_sqlalchemy_would_fill_in_must_be_passed(any_ctx: Context) -> None:
    """``created_at`` has a Python default: left out, it would be NULL in a batch."""
    entry = {"account": "t:a", "amount": Decimal(1), "kind": "topup", "reference": "",
             "created_by": "t"}  # fmt: skip
    with transaction(any_ctx.factory) as s:
        w = Batch(s.connection())
        with pytest.raises(ValueError, match="created_at"):
            w.add(ADD_ENTRY, entry)
        w.add(ADD_ENTRY, {**entry, "created_at": AT})
        assert w.run() == [(1, [])]


def test_a_connection_found_dead_is_invalidated(ctx_factory: Any) -> None:
    """PostgreSQL dropped the connection (a restart, an idle timeout): the batch's error
    says the connection was invalidated, and the pool makes a new one, as SQLAlchemy does
    for a statement it runs itself."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    ctx = ctx_factory("postgresql")
    with ctx.engine.connect() as conn:
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
        with transaction(ctx.factory) as s:
            assert s.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        time.sleep(0.2)
        w = Batch(conn)
        w.add(READ, {"like": "t:%"})
        with pytest.raises(OperationalError) as caught:
            w.run()
        assert caught.value.connection_invalidated and conn.invalidated
    with ctx.engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_backend_pid()")) != pid
