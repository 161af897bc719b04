"""``batch.Batch``: statements sent together (PostgreSQL's pipeline) answer as
``Connection.execute`` would: values through the columns' types both ways, errors as
SQLAlchemy's, and nothing left for SQLAlchemy to fill in silently."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import bindparam, func, insert, select
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


def test_writes_in_a_row_answer_each_its_count_and_keep_every_constraint(
    any_ctx: Context,
) -> None:
    """On PostgreSQL writes in a row go as one statement (``batch``): each still answers
    its own row count, and a broken foreign key or a duplicate in any of them fails the
    batch and keeps nothing. An UPDATE of a table none of the others names joins them."""
    from sqlalchemy import update

    from provisioner import batch
    from provisioner.models import Reseller

    entry = {"account": "t:a", "amount": Decimal(1), "kind": "topup", "reference": "",
             "created_by": "t", "created_at": AT, "activation_id": None}  # fmt: skip
    firm = {"id": 987_654, "name": "t-parent", "contact": "", "created_at": AT,
            "parent_id": None, "may_have_subresellers": True, "billing": "prepaid",
            "credit_limit": Decimal(0)}  # fmt: skip
    sub = {**firm, "id": 987_655, "name": "t-sub", "parent_id": 987_654}  # its sibling's row
    add_firm = insert(Reseller.__table__)
    bump = update(_acc).where(_acc.c.account == bindparam("acc")).values(balance=_acc.c.balance + 1)
    with transaction(any_ctx.factory) as s:
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:a", "balance": Decimal(1), "floor": 0})
        w.add(add_firm, firm)
        w.add(add_firm, sub)
        w.add(ADD_ENTRY, {**entry, "amount": Decimal(2)})
        w.add(bump, {"acc": "t:a"})
        w.add(ADD_ENTRY, {**entry, "amount": Decimal(3)})
        w.add(ADD_ENTRY, {**entry, "amount": Decimal(4)})
        if w.pipelined:  # the INSERT … RETURNING on its own, then the rest as one
            assert [len(m) for _, _, m in batch._statements(w._items)] == [1, 6]
        assert w.run() == [(1, [(Decimal(1),)]), *[(1, [])] * 6]
    with transaction(any_ctx.factory) as s:
        amounts = s.scalars(select(_led.c.amount).where(_led.c.account == "t:a")).all()
        assert sorted(amounts) == [2, 3, 4]
        assert s.scalar(select(_acc.c.balance).where(_acc.c.account == "t:a")) == 2
        parent = select(Reseller.parent_id).where(Reseller.name == "t-sub")
        assert s.scalar(parent) == 987_654
    orphan = {**sub, "id": 987_656, "name": "t-orphan", "parent_id": 123_456_789}
    sqlite = any_ctx.engine.dialect.name == "sqlite"  # which enforces no foreign keys here
    for broken in ([] if sqlite else [orphan]) + [{**sub, "name": "t-again"}]:  # the id taken
        with pytest.raises(IntegrityError), transaction(any_ctx.factory) as s:
            w = Batch(s.connection())
            w.add(ADD_ENTRY, {**entry, "amount": Decimal(5)})
            w.add(add_firm, broken)
            w.run()
    with transaction(any_ctx.factory) as s:
        assert s.scalar(select(func.count()).where(_led.c.amount == 5)) == 0


def test_writes_that_would_see_each_other_run_in_turn(any_ctx: Context) -> None:
    """One statement sees one snapshot: an UPDATE of a row an INSERT before it wrote, or
    two UPDATEs of one row, would not see each other there. They run in turn, as
    ``Connection.execute`` would run them, and answer as it would."""
    from sqlalchemy import update

    from provisioner import batch

    add = insert(_acc)
    bump = update(_acc).where(_acc.c.account == bindparam("acc")).values(balance=_acc.c.balance + 1)
    entry = {"account": "t:a", "amount": Decimal(1), "kind": "topup", "reference": "",
             "created_by": "t", "created_at": AT, "activation_id": None}  # fmt: skip
    with transaction(any_ctx.factory) as s:
        w = Batch(s.connection())
        w.add(add, {"account": "t:a", "balance": Decimal(1), "floor": 0})
        w.add(bump, {"acc": "t:a"})
        w.add(ADD_ENTRY, entry)  # names no table the UPDATE names: beside it
        w.add(bump, {"acc": "t:a"})
        if w.pipelined:
            assert [len(m) for _, _, m in batch._statements(w._items)] == [1, 2, 1]
        assert w.run() == [(1, [])] * 4
    with transaction(any_ctx.factory) as s:
        assert s.scalar(select(_acc.c.balance).where(_acc.c.account == "t:a")) == 3


def test_a_guarded_write_that_changes_no_row_fails_the_transaction(
    ctx_factory: Any,
) -> None:
    """PostgreSQL: a guarded write must change exactly one row, or the transaction fails
    in the database with "provisioner guard: <what>", so a COMMIT sent with it cannot
    commit the rest. SQLite has no such guard: it is refused there."""
    from sqlalchemy import text, update
    from sqlalchemy.exc import DBAPIError

    debit = (
        update(_acc)
        .where(_acc.c.account == bindparam("acc"), _acc.c.balance >= bindparam("price"))
        .values(balance=_acc.c.balance - bindparam("price"))
    )
    ctx = ctx_factory("postgresql")
    with transaction(ctx.factory) as s:
        s.execute(insert(_acc), [{"account": "t:a", "balance": 5, "floor": 0}])
    with transaction(ctx.factory) as s:
        w = Batch(s.connection())
        w.add(ADD_ENTRY, {"account": "t:a", "amount": Decimal(-3), "kind": "topup",
                          "reference": "", "created_by": "t", "created_at": AT,
                          "activation_id": None})  # fmt: skip
        w.add(debit, {"acc": "t:a", "price": 3}, guarded="leg 0")
        assert w.run() == [(1, []), (1, [])]
    refused = pytest.raises(DBAPIError, match="provisioner guard: leg 1")
    with refused as caught, transaction(ctx.factory) as s:
        w = Batch(s.connection())
        w.add(ADD_ENTRY, {"account": "t:a", "amount": Decimal(-3), "kind": "topup",
                          "reference": "", "created_by": "t", "created_at": AT,
                          "activation_id": None})  # fmt: skip
        w.add(debit, {"acc": "t:a", "price": 3}, guarded="leg 1")  # 2 left: no row
        w.add(text("COMMIT"), {})
        w.run()
    assert getattr(caught.value.orig, "sqlstate", None) == "P0001"
    with transaction(ctx.factory) as s:
        assert s.scalar(select(_acc.c.balance).where(_acc.c.account == "t:a")) == 2
        assert s.scalar(select(func.count()).where(_led.c.account == "t:a")) == 1
    lite = ctx_factory("sqlite")
    with transaction(lite.factory) as s, pytest.raises(ValueError, match="guarded"):
        Batch(s.connection()).add(debit, {"acc": "t:a", "price": 3}, guarded="leg 0")


def _locked_within(ctx: Context, account: str, seconds: float) -> bool:
    """Whether another transaction holds ``account``'s row at some point within
    ``seconds`` (asked with NOWAIT from a connection of its own)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    ask = text("SELECT 1 FROM accounts WHERE account = :a FOR UPDATE NOWAIT")
    deadline = time.monotonic() + seconds
    with ctx.engine.connect() as other:
        while time.monotonic() < deadline:
            try:
                other.execute(ask, {"a": account})
            except OperationalError:  # lock_not_available: the batch's update has run
                other.rollback()
                return True
            other.rollback()
            time.sleep(0.005)
    return False


def test_a_batch_inside_a_transaction_reaches_postgresql_in_one_send(
    ctx_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a batch's first statement does not run until its last is queued. A
    sale's last batch is its debits and the COMMIT; sent one by one, an operator's account
    row was held while the sending thread waited for Python's lock between the two. Here
    the thread pauses after queuing the first statement (a row's update) and another
    connection watches the row for 0.1 s: nobody holds it until the batch is sent."""
    from sqlalchemy import text, update

    from provisioner import batch

    take = (
        update(_acc)
        .where(_acc.c.account == bindparam("acc"))
        .values(balance=_acc.c.balance - bindparam("price"))
    )
    ctx = ctx_factory("postgresql")
    with transaction(ctx.factory) as s:
        s.execute(insert(_acc), [{"account": "t:hot", "balance": 5, "floor": 0}])
    held: list[bool] = []
    queue = batch._queue

    def pausing(*args: Any) -> int:
        before = queue(*args)
        if not held:  # the update is queued: is it running already?
            held.append(_locked_within(ctx, "t:hot", 0.1))
        return before

    monkeypatch.setattr(batch, "_queue", pausing)
    with transaction(ctx.factory) as s:
        s.execute(text("SELECT 1"))  # the transaction is open: psycopg's BEGIN is answered
        w = Batch(s.connection())
        w.add(take, {"acc": "t:hot", "price": 3})
        read = w.add(READ, {"like": "t:hot"})
        done = w.run()
        assert done[read][1] == [("t:hot", Decimal(2))]
        assert _locked_within(ctx, "t:hot", 0.05)  # held now, to the commit
    assert held == [False]
    with transaction(ctx.factory) as s:
        assert s.scalar(select(_acc.c.balance).where(_acc.c.account == "t:hot")) == 2


def _frontend_messages(trace: str, kind: str) -> list[str]:
    """libpq's trace of what the client sent (``F``) of one kind: Sync, Parse, ..."""
    return [line for line in trace.splitlines() if "\tF\t" in line and f"\t{kind}" in line]


def _traced(raw: Any, path: Any, run: Callable[[], Any]) -> str:
    """What the client sent to PostgreSQL while ``run`` ran (libpq's trace)."""
    with path.open("w") as f:
        raw.pgconn.trace(f.fileno())
        try:
            run()
        finally:
            raw.pgconn.untrace()
    return str(path.read_text())


def test_a_batch_that_opens_the_transaction_sends_its_begin_with_it(
    ctx_factory: Any, tmp_path: Any
) -> None:
    """PostgreSQL: a batch that is its transaction's first statement carries the BEGIN
    (psycopg's own would be a round trip of its own: BEGIN, Sync, wait). The batch's writes
    are in that transaction, and a COMMIT in a later batch ends it."""
    from sqlalchemy import text

    ctx = ctx_factory("postgresql")
    with transaction(ctx.factory) as s:
        raw = s.connection().connection.driver_connection
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:open", "balance": Decimal(1), "floor": 0})
        said = _traced(raw, tmp_path / "trace", w.run)
        assert raw.pgconn.transaction_status == TransactionStatus.INTRANS
        assert len(_frontend_messages(said, "Sync")) == 1, said  # one round trip
        begins = [m for m in _frontend_messages(said, "Parse") if "BEGIN" in m]
        assert len(begins) == 1, said  # psycopg's own words ("BEGIN READ WRITE"), sent once
        assert raw._get_tx_start_command().decode() in begins[0]
        w = Batch(s.connection())
        w.add(text("COMMIT"), {})
        w.run()
        assert raw.pgconn.transaction_status == TransactionStatus.IDLE
        assert raw.autocommit is False
    with transaction(ctx.factory) as s:
        assert s.scalar(select(_acc.c.balance).where(_acc.c.account == "t:open")) == 1


def test_a_transaction_a_batch_opened_rolls_back_whole_and_leaves_the_pool_as_usual(
    ctx_factory: Any,
) -> None:
    """An error after the opening batch rolls back its writes too, and the connection the
    pool hands out next opens its transactions as psycopg does (a rollback undoes them)."""
    ctx = ctx_factory("postgresql")
    with pytest.raises(RuntimeError), transaction(ctx.factory) as s:
        raw = s.connection().connection.driver_connection
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:gone", "balance": Decimal(1), "floor": 0})
        w.run()
        raise RuntimeError("the sale fails after its first batch")
    with ctx.factory() as s:
        again = s.connection().connection.driver_connection
        assert again is raw  # the pool's last connection (LIFO): the one checked here
        s.execute(insert(_acc), [{"account": "t:kept?", "balance": 1, "floor": 0}])
        s.rollback()
    with transaction(ctx.factory) as s:
        said = s.scalars(select(_acc.c.account).where(_acc.c.account.like("t:%"))).all()
    assert said == []


def test_the_begin_reads_as_psycopgs_own_in_every_mode(ctx_factory: Any) -> None:
    """The batch's BEGIN names the isolation level, read-only and deferrable modes the
    connection was given, word for word as psycopg's would; none in autocommit mode."""
    import psycopg
    from psycopg import IsolationLevel

    from provisioner.batch import _begin

    ctx = ctx_factory("postgresql")
    with ctx.engine.connect() as c:
        dsn = c.connection.driver_connection.info.dsn
    with psycopg.connect(dsn) as raw:
        for level in (None, *IsolationLevel):
            for read_only in (None, True, False):
                for deferrable in (None, True, False):
                    raw.isolation_level, raw.read_only = level, read_only
                    raw.deferrable = deferrable
                    raw._begin_statement = b""  # psycopg caches its own per connection
                    assert _begin(raw) == raw._get_tx_start_command()
        raw.autocommit = True
        assert _begin(raw) is None


def test_each_statement_is_prepared_once_per_connection(ctx_factory: Any, tmp_path: Any) -> None:
    """PostgreSQL parses and plans a batch's statement once per connection: its second
    run sends no Parse, only the values; answers are alike both times."""
    ctx = ctx_factory("postgresql")
    answers, traces = [], []
    with transaction(ctx.factory) as s:
        raw = s.connection().connection.driver_connection
        for n in range(2):
            w = Batch(s.connection())
            w.add(ADD, {"account": f"t:p{n}", "balance": Decimal(n), "floor": 0})
            w.add(READ, {"like": "t:p%"})
            traces.append(_traced(raw, tmp_path / f"trace{n}", lambda w=w: answers.append(w.run())))
    first, second = ([m for m in _frontend_messages(t, "Parse") if "accounts" in m] for t in traces)
    assert len(first) == 2 and second == [], traces
    assert [len(a[1][1]) for a in answers] == [1, 2]
    assert answers[1][0] == (1, [(Decimal(1),)])


def test_an_exchange_cut_short_invalidates_the_connection(
    ctx_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose answers could not all be read (here: an error while queuing) leaves
    libpq's pipeline with answers pending: the connection is invalidated, not reused, and
    the next transaction works on a new one."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    from provisioner import batch

    ctx = ctx_factory("postgresql")
    queue = batch._queue

    def failing(pgconn: Any, *args: Any) -> int:
        queue(pgconn, *args)
        raise psycopg.OperationalError("the network went away")

    monkeypatch.setattr(batch, "_queue", failing)
    with pytest.raises(DBAPIError) as caught, transaction(ctx.factory) as s:
        raw = s.connection().connection.driver_connection
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:cut", "balance": Decimal(1), "floor": 0})
        w.run()
    assert caught.value.connection_invalidated
    monkeypatch.setattr(batch, "_queue", queue)
    with transaction(ctx.factory) as s:
        assert s.connection().connection.driver_connection is not raw
        w = Batch(s.connection())
        w.add(READ, {"like": "t:%"})
        assert w.run() == [(0, [])]


def test_statements_are_prepared_again_after_psycopg_deallocates_them(
    ctx_factory: Any, tmp_path: Any
) -> None:
    """psycopg deallocates every statement on a connection (``DEALLOCATE ALL``) when it
    rolls back a transaction after preparing statements of its own: the batch's are
    prepared again on that connection, not run by names PostgreSQL has forgotten. After a
    COMMIT they are kept (no Parse in the next transaction)."""
    ctx = ctx_factory("postgresql")

    def batch_on(s: Any, n: int) -> Any:
        w = Batch(s.connection())
        w.add(ADD, {"account": f"t:d{n}", "balance": Decimal(n), "floor": 0})
        return w

    with ctx.factory() as s:
        raw = s.connection().connection.driver_connection
        for _ in range(raw.prepare_threshold + 1):  # psycopg prepares this one of its own
            s.scalar(select(func.count()).select_from(_acc))
        batch_on(s, 1).run()
        s.rollback()  # psycopg: ROLLBACK, then DEALLOCATE ALL
        assert s.connection().connection.driver_connection is raw
        batch_on(s, 2).run()
        s.commit()
        w = batch_on(s, 3)
        said = _traced(raw, tmp_path / "trace", w.run)
        s.commit()
    assert [m for m in _frontend_messages(said, "Parse") if "accounts" in m] == [], said
    with transaction(ctx.factory) as s:
        kept = s.scalars(select(_acc.c.account).where(_acc.c.account.like("t:d%"))).all()
    assert sorted(kept) == ["t:d2", "t:d3"]


def test_statements_are_prepared_again_after_a_drop(ctx_factory: Any) -> None:
    """A DROP run through SQLAlchemy makes psycopg deallocate every statement on the
    connection too (when it had prepared its own): the batch prepares its own again."""
    from sqlalchemy import text

    ctx = ctx_factory("postgresql")
    with transaction(ctx.factory) as s:
        raw = s.connection().connection.driver_connection
        for _ in range(raw.prepare_threshold + 1):  # psycopg prepares this one of its own
            s.scalar(select(func.count()).select_from(_acc))
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:x1", "balance": Decimal(1), "floor": 0})
        w.run()
        s.execute(text("CREATE TEMPORARY TABLE t_scratch (n int)"))
        s.execute(text("DROP TABLE t_scratch"))  # psycopg: DEALLOCATE ALL
        w = Batch(s.connection())
        w.add(ADD, {"account": "t:x2", "balance": Decimal(2), "floor": 0})
        assert w.run() == [(1, [(Decimal(2),)])]
