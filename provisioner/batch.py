"""Statements sent to PostgreSQL together: one round trip for several statements.

The express lane's reads (the joined resolve, the user's RADIUS rows) do not depend on
each other, nor do its writes (customer, activation, invoice, RADIUS rows, outbox,
debits) on one another's answers; so on PostgreSQL each group goes out in psycopg's
pipeline mode and the answers come back together: one round trip instead of one per
statement, and none of SQLAlchemy's per-execution work. Statements stay SQLAlchemy Core
constructs: each is compiled once per shape (statement and parameter names) for the
connection's dialect, its parameters go through the columns' own bind processors (money
in minor units, UTC timestamps, JSON) and a SELECT's rows through their result
processors (money, enums, decryption), RETURNING's too, as ``Connection.execute`` would.

Columns whose value SQLAlchemy computes at execution (a Python ``default`` or
``onupdate``) are refused: the caller passes them, so nothing is silently NULL.

On PostgreSQL, consecutive writes whose answer is their row count (an INSERT, UPDATE or
DELETE with no RETURNING asked for) go as one statement, each a data-modifying ``WITH``
of it: psycopg's work per statement (about 25 us of a worker's CPU) was most of a batch's,
and PostgreSQL's too. One statement sees one snapshot, so a write joins only when it
cannot tell: INSERTs of values (no SELECT, no ON CONFLICT) may share a table, since they
read nothing; any other write shares no table with the rest of its statement (it would
not see their rows, and one row cannot be changed twice in a statement). Each keeps its
own row count, and PostgreSQL still checks every constraint, foreign keys to rows a
sibling wrote included, at the end of the statement as it would at the end of each.

A write may be ``guarded`` (PostgreSQL): it must change exactly one row, else the
transaction fails in the database (``provisioner_guard``, migration 0012) with
"provisioner guard: <what>", so a COMMIT sent in the same round trip cannot commit it.

A batch inside a transaction reaches PostgreSQL in one send (``_one_send``). psycopg
flushes each pipelined statement as it is queued, and between two statements the
sending thread may wait for Python's lock for milliseconds; PostgreSQL meanwhile runs the
first and waits for the next. The last batch of a sale is its debits and the COMMIT: the
payers' account rows, which every sale of an operator shares, were held across that wait
(``bench/README.md``, "eleventh pass").
"""

from __future__ import annotations

import re
import socket
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from psycopg import RawCursor
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import Pool
from sqlalchemy.sql import Delete, Executable, Insert, Update, visitors
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TableClause

MAX_SHAPES = 1000  # statements are meant to be built once; this bounds a mistake

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: Any
    binds: dict[str, Processor]
    row: Any = None  # a SELECT's row type (a named tuple of its columns' names)
    results: tuple[Processor | None, ...] = ()
    fusable: _Write | None = None  # a write that may join others in one statement


@dataclass(frozen=True)
class _Write:
    """A write as a member of a fused statement: its SQL without RETURNING, the table it
    writes and every table it names, and whether it is an INSERT of values only."""

    sql: str
    table: str
    names: frozenset[str]
    values_only: bool

    def beside(self, other: _Write) -> bool:
        """Whether the two may run in one statement (one snapshot) as they would in turn."""
        if self.values_only and other.values_only:
            return True
        return self.table not in other.names and other.table not in self.names


_cache: dict[tuple[Executable, tuple[str, ...], str], _Compiled] = {}
_BIND = re.compile(r"%%|%\(([^)]+)\)s")  # psycopg's named placeholders (and a literal %)


def _fusable(stmt: Executable, c: Any, dialect: Any, keys: tuple[str, ...]) -> _Write | None:
    """A write's SQL without its implicit RETURNING, when its answer is its row count."""
    if dialect.name != "postgresql" or not isinstance(stmt, Insert | Update | Delete):
        return None
    names: set[str] = set()
    for e in visitors.iterate(stmt):
        if isinstance(e, TextClause):  # SQL we cannot see into: it runs on its own
            return None
        if isinstance(e, TableClause):
            names.add(e.name)
    inline: Any = (stmt.inline() if isinstance(stmt, Insert) else stmt).compile(
        dialect=dialect, column_keys=list(keys)
    )
    sql = str(inline.string)
    said = sql.upper()
    if "RETURNING" in said or set(inline.bind_names.values()) != set(c.bind_names.values()):
        return None
    values_only = isinstance(stmt, Insert) and "SELECT" not in said and "ON CONFLICT" not in said
    written: Any = stmt.table
    return _Write(sql, written.name, frozenset(names), values_only)


def _native(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with PostgreSQL's own placeholders ($1, $2, …) and the names they stand for,
    in order: what psycopg's ``RawCursor`` sends as it is. psycopg's own cursor parses a
    statement's named placeholders at each run when it is long or has many parameters
    (past 4,096 bytes or 50 parameters it caches nothing), as a fused statement is."""
    order: dict[str, int] = {}

    def numbered(m: re.Match[str]) -> str:
        if m[0] == "%%":
            return "%"
        return f"${order.setdefault(m[1], len(order) + 1)}"

    return _BIND.sub(numbered, sql), tuple(order)


def _renamed(sql: str, prefix: str) -> str:
    return _BIND.sub(lambda m: m[0] if m[0] == "%%" else f"%({prefix}{m[1]})s", sql)


def _fused_sql(members: Sequence[tuple[str, bool]]) -> str:
    """One statement for several writes (each its SQL, and whether it is guarded): each a
    WITH of its own, its row count selected, a guarded one's through the guard."""
    parts = [f"f{n} AS ({_renamed(sql, f'f{n}_')} RETURNING 1)" for n, (sql, _) in enumerate(members)]  # noqa: E501  # fmt: skip
    counts = ", ".join(
        f"(SELECT count(*) FROM f{n})"
        if not guarded
        else f"CASE WHEN provisioner_guard((SELECT count(*) FROM f{n}) = 1, %(f{n}_{GUARD})s) THEN 1 END"  # noqa: E501
        for n, (_, guarded) in enumerate(members)
    )
    return f"WITH {', '.join(parts)} SELECT {counts}"


GUARD = "guard_"  # a guarded member's parameter: what its refusal names


def _compile(conn: Connection, stmt: Executable, keys: tuple[str, ...]) -> _Compiled:
    dialect = conn.dialect
    shape = (stmt, keys, dialect.name)
    found = _cache.get(shape)
    if found is not None:
        return found
    c: Any = stmt.compile(dialect=dialect, column_keys=list(keys))
    computed = [col.key for col in (*c.insert_prefetch, *c.update_prefetch)]
    if computed or c.literal_execute_params or c.post_compile_params:
        raise ValueError(f"batch: pass {computed} yourself; no expanding parameters")
    binds = {}
    for bind, name in c.bind_names.items():  # as rendered: an anonymous bind's too
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds[name] = process
    row, results = None, ()
    columns = list(getattr(stmt, "exported_columns", ()))  # a SELECT's, or RETURNING's
    if columns:
        # An unnamed column (an unlabelled function) is reached by position.
        row = namedtuple("Row", [str(col.key) for col in columns], rename=True)  # type: ignore[misc]
        results = tuple(
            col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns
        )
    fusable = _fusable(stmt, c, dialect, keys) if row is None else None
    if len(_cache) >= MAX_SHAPES:
        _cache.clear()
    found = _cache[shape] = _Compiled(c.string, c, binds, row, results, fusable)
    return found


# A queued statement: itself, its parameters, compiled, and its values as sent.
Item = tuple[Executable, Mapping[str, Any], _Compiled, dict[str, Any]]
Answer = tuple[int, list[Any]]  # rows affected, rows returned (RETURNING or SELECT)


class Batch:
    """Statements to run in order in the caller's transaction, sent together by ``run``."""

    def __init__(self, conn: Connection, *, opens: bool = False) -> None:
        """``opens``: when the connection has no transaction yet, its BEGIN goes with
        these statements (PostgreSQL; see ``_opened``). For a transaction that the caller
        ends itself, as a sale does with its COMMIT (``sale.pay(commit=True)``)."""
        self.conn = conn
        self.pipelined = conn.dialect.name == "postgresql"
        self.opens = opens
        self._items: list[Item] = []

    def add(
        self, stmt: Executable, params: Mapping[str, Any], *, guarded: str | None = None
    ) -> int:
        """Queue ``stmt``; returns its place in ``run``'s answer. ``guarded``: it must
        change exactly one row, else the transaction fails in the database, naming this
        (PostgreSQL, a write whose answer is its row count: see the module's docstring)."""
        c = _compile(self.conn, stmt, tuple(sorted(params)))
        values: dict[str, Any] = {}
        if self.pipelined:
            values = c.compiled.construct_params(params)
            for name, process in c.binds.items():
                values[name] = process(values[name])
        if guarded is not None:
            if c.fusable is None:  # SQLite's too: the caller checks each count itself
                raise ValueError("batch: only a write answered by its row count is guarded")
            values[GUARD] = guarded
        self._items.append((stmt, params, c, values))
        return len(self._items) - 1

    def run(self) -> list[Answer]:
        """Run everything; (rows affected, rows returned) of each statement, in order.
        PostgreSQL: in one round trip. SQLite (a local file, no round trips): one
        statement at a time."""
        items, self._items = self._items, []
        if not self.pipelined:
            out: list[Answer] = []
            for stmt, params, _, _ in items:
                r = self.conn.execute(stmt, params)
                rows = list(r.all()) if r.returns_rows else []  # sqlite3 counts as it fetches
                out.append((r.rowcount, rows))
            return out
        fairy: Any = self.conn.connection
        raw: Any = fairy.driver_connection
        dialect = self.conn.dialect
        sent = _plan(items)
        cursors = []
        begins = _opened(raw, fairy.info) if self.opens else None
        try:
            held = begins is not None or raw.pgconn.transaction_status == TransactionStatus.INTRANS
            with raw.pipeline(), _one_send(raw.pgconn, held):
                if begins is not None:
                    cursors.append(RawCursor(raw).execute(begins))
                for s in sent:
                    cur = RawCursor(raw)
                    cur.execute(s.native, [items[i][3][name] for i, name in s.order])
                    cursors.append(cur)
        except dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy raises it (IntegrityError, OperationalError, …): callers tell a
            # duplicate key or a deadlock apart as they do for any statement, and a
            # connection found dead is invalidated (the pool makes a new one).
            gone = dialect.is_disconnect(exc, raw, None)
            if gone:
                self.conn.invalidate(exc)
            raise DBAPIError.instance(
                f"(a batch of {len(items)} statements)", None, exc, dialect.loaded_dbapi.Error,
                dialect=dialect, connection_invalidated=gone,
            ) from exc  # fmt: skip
        if begins is not None:
            cursors.pop(0).close()
        out = []
        for s, cur in zip(sent, cursors, strict=True):
            if s.fused:  # their row counts
                out += [(int(n), []) for n in cur.fetchone() or ()]
            else:
                c = items[s.members[0]][2]
                rows = []
                if c.row is not None:  # not an INSERT's implicit RETURNING of its key
                    rows = [c.row(*_processed(r, c.results)) for r in cur.fetchall()]
                out.append((cur.rowcount, rows))
            cur.close()
        if _OPENED in fairy.info and raw.pgconn.transaction_status == TransactionStatus.IDLE:
            _closed(raw, fairy.info)  # its COMMIT was in this batch
        return out


_OPENED = "provisioner_opened"  # the pooled connection's info: its BEGIN was ours


def _opened(raw: Any, info: dict[str, Any]) -> bytes | None:
    """The BEGIN to send with this batch, when the transaction starts with it. psycopg
    would send a BEGIN of its own before the first statement and wait for its answer (a
    round trip for a word); here the connection is put in psycopg's autocommit mode, in
    which it sends no BEGIN, and the batch's BEGIN opens the transaction as psycopg's
    would. psycopg still commits or rolls it back when told (it asks the server whether a
    transaction is open, not its own mode); the mode is restored when the transaction
    ends: after a batch that commits, or when the connection goes back to the pool.
    The BEGIN is psycopg's own (its isolation level and read-only mode); None: the
    transaction is open already, or psycopg's BEGIN is not to be had."""
    begin = getattr(raw, "_get_tx_start_command", None)  # psycopg 3.0 to 3.3 at least
    if begin is None or raw.pgconn.transaction_status != TransactionStatus.IDLE:
        return None
    if raw.autocommit:
        return None
    said: bytes = begin()
    raw.autocommit = True
    info[_OPENED] = True
    return said


def _closed(raw: Any, info: dict[str, Any]) -> None:
    info.pop(_OPENED, None)
    raw.autocommit = False


@event.listens_for(Pool, "checkin")
def _checked_in(dbapi_conn: Any, record: Any) -> None:
    """A connection whose transaction a batch opened goes back to the pool in psycopg's
    usual mode (the pool rolled back whatever was left open: nothing is)."""
    if dbapi_conn is not None and _OPENED in record.info:
        try:
            _closed(dbapi_conn, record.info)
        except Exception as exc:  # noqa: BLE001 - still in a transaction: not to be reused
            record.invalidate(exc)


_CORK = getattr(socket, "TCP_CORK", None)  # Linux


@contextmanager
def _one_send(pgconn: Any, held: bool) -> Iterator[None]:
    """The statements queued inside leave together: the connection's socket holds what
    psycopg flushes (``TCP_CORK``) until the block ends. Only when ``held``: inside a
    transaction, or opening one with the batch's own BEGIN (``_opened``); psycopg's BEGIN
    waits for its answer. Not for a Unix socket (nothing to hold) or off Linux: sent as
    psycopg sends them."""
    if _CORK is None or not held:
        yield
        return
    sock = socket.socket(fileno=pgconn.socket)  # the connection's own descriptor, not a dup
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            yield
            return
        sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
        try:
            yield
        finally:  # released, the kernel sends at once what it held
            with suppress(OSError):  # a connection found dead: psycopg closed it
                sock.setsockopt(socket.IPPROTO_TCP, _CORK, 0)
    finally:
        sock.detach()  # the descriptor stays psycopg's


@dataclass(frozen=True)
class _Sent:
    """One statement a batch sends: its SQL as SQLAlchemy renders it (named placeholders)
    and as sent ($1, $2, …), each placeholder's item and parameter, and the items it runs
    (more than one, or a guarded one: fused, answering their row counts)."""

    sql: str
    native: str
    order: tuple[tuple[int, str], ...]
    members: range
    fused: bool


_plans: dict[tuple[tuple[str, bool], ...], list[_Sent]] = {}


def _plan(items: Sequence[Item]) -> list[_Sent]:
    """What goes to PostgreSQL for ``items``, worked out once per shape of batch: runs of
    writes that may share a statement (``_Write.beside``) as one, a guarded write always
    in that form, anything else on its own."""
    shape = tuple((it[2].sql, GUARD in it[3]) for it in items)
    found = _plans.get(shape)
    if found is not None:
        return found
    sent = []
    i = 0
    while i < len(items):
        j = i
        while j < len(items) and _joins(items[j][2].fusable, items, i, j):
            j += 1
        if j - i < 2 and not shape[i][1]:
            native, names = _native(shape[i][0])
            order = tuple((i, name) for name in names)
            sent.append(_Sent(shape[i][0], native, order, range(i, i + 1), False))
            i += 1
            continue
        writes: list[Any] = [it[2].fusable for it in items[i:j]]  # each a _Write (``_joins``)
        sql = _fused_sql([(w.sql, g) for w, (_, g) in zip(writes, shape[i:j], strict=True)])
        native, names = _native(sql)
        split = (name[1:].split("_", 1) for name in names)  # "f3_amount": item i + 3
        order = tuple((i + int(n), name) for n, name in split)
        sent.append(_Sent(sql, native, order, range(i, j), True))
        i = j
    if len(_plans) >= MAX_SHAPES:
        _plans.clear()
    _plans[shape] = sent
    return sent


def _statements(items: Sequence[Item]) -> list[tuple[str, list[Any], range]]:
    """``_plan``'s statements for these items: (SQL, values in order, the items it runs)."""
    return [(s.sql, [items[i][3][name] for i, name in s.order], s.members) for s in _plan(items)]


def _joins(w: _Write | None, items: Sequence[Any], start: int, end: int) -> bool:
    """Whether write ``w`` may join ``items[start:end]`` in one statement."""
    return w is not None and all(w.beside(items[k][2].fusable) for k in range(start, end))


def _processed(row: Sequence[Any], processors: tuple[Processor | None, ...]) -> list[Any]:
    return [v if p is None else p(v) for v, p in zip(row, processors, strict=True)]
