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

A batch reaches PostgreSQL in one send, its BEGIN with it when it opens the transaction
(``_exchange``: libpq's pipeline mode driven directly, each statement prepared on the
connection at its first use). Sent one by one, as psycopg's own pipeline does, the
sending thread may wait for Python's lock for milliseconds between two statements while
PostgreSQL runs the first; the last batch of a sale is its debits and the COMMIT, and the
payers' account rows, which every sale of an operator shares, were held across that wait
(``bench/README.md``, "eleventh pass"). Each send also wakes PostgreSQL's backend, which
over loopback takes the core while the sender holds Python's lock ("twelfth pass").
"""

from __future__ import annotations

import itertools
import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import OperationalError, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from psycopg.generators import fetch_many, send
from psycopg.pq import ExecStatus, TransactionStatus
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, StatementError
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
    in order: what libpq sends as it is (``_queue``). psycopg's own cursor parses a
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

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pipelined = conn.dialect.name == "postgresql"
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
        PostgreSQL: in one round trip, one send. SQLite (a local file, no round trips):
        one statement at a time."""
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
        statements = [(s.native, [items[i][3][name] for i, name in s.order]) for s in sent]
        try:
            tx, results = _exchange(raw, fairy.info.setdefault(_KNOWN, set()), statements)
        except _Broken as broken:  # what was sent is not known to be answered: not reused
            self.conn.invalidate(broken.error)
            if isinstance(broken.error, dialect.loaded_dbapi.Error):
                raise _raised(items, broken.error, dialect, gone=True) from broken.error
            raise broken.error from None
        except dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy raises it (IntegrityError, OperationalError, …): callers tell a
            # duplicate key or a deadlock apart as they do for any statement, and a
            # connection the server ended is invalidated (the pool makes a new one).
            gone = dialect.is_disconnect(exc, raw, None)
            if gone:
                self.conn.invalidate(exc)
            raise _raised(items, exc, dialect, gone=gone) from exc
        out = []
        for s, res in zip(sent, results, strict=True):
            tx.set_pgresult(res)
            if s.fused:  # their row counts
                row = tx.load_row(0, tuple) if res.ntuples else ()
                out += [(int(n), []) for n in row]
            else:
                c = items[s.members[0]][2]
                rows = []
                if c.row is not None:  # not an INSERT's implicit RETURNING of its key
                    loaded = tx.load_rows(0, res.ntuples, tuple)
                    rows = [c.row(*_processed(r, c.results)) for r in loaded]
                count = res.command_tuples
                out.append((-1 if count is None else count, rows))
        return out


def _raised(items: Sequence[Item], exc: Exception, dialect: Any, gone: bool) -> StatementError:
    return DBAPIError.instance(
        f"(a batch of {len(items)} statements)", None, exc, dialect.loaded_dbapi.Error,
        dialect=dialect, connection_invalidated=gone,
    )  # fmt: skip


class _Broken(Exception):
    """The exchange stopped before every answer was read: the connection is unusable."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


MAX_PREPARED = 500  # statements given a name to prepare them by; past it, sent unprepared


def _begin(raw: Any) -> bytes | None:
    """The BEGIN that opens the transaction with the batch, as psycopg's own would read
    (its isolation level, read-only and deferrable modes); None: already open, or the
    connection is in autocommit mode (the batch up to its Sync is then one implicit
    transaction of PostgreSQL's). psycopg sends a BEGIN of its own only when it finds no
    transaction open (``pgconn.transaction_status``), so after this one it sends none,
    and commits or rolls back as usual."""
    if raw.autocommit or raw.pgconn.transaction_status != TransactionStatus.IDLE:
        return None
    parts = [b"BEGIN"]
    if raw.isolation_level is not None:
        parts += [b"ISOLATION LEVEL", raw.isolation_level.name.replace("_", " ").encode()]
    if raw.read_only is not None:
        parts.append(b"READ ONLY" if raw.read_only else b"READ WRITE")
    if raw.deferrable is not None:
        parts.append(b"DEFERRABLE" if raw.deferrable else b"NOT DEFERRABLE")
    return b" ".join(parts)


def _queue(pgconn: Any, tx: Any, known: set[bytes], sql: bytes, values: list[Any]) -> int:
    """Queue one statement in libpq's buffer (nothing is sent yet), prepared on the
    connection at its first use there (``known``: the names prepared on it). Returns how
    many answers it asked for before the statement's own."""
    dumped = tx.dump_sequence(values, [PyFormat.AUTO] * len(values))
    types, formats = tuple(tx.types or ()), tx.formats
    name = _names.get((sql, types)) if _CLOSE else None
    if name is None and _CLOSE and len(_names) < MAX_PREPARED:
        # A number never given before, even to a thread racing for another statement.
        name = _names.setdefault((sql, types), b"provisioner_%d" % next(_numbers))
    if name is None:
        pgconn.send_query_params(sql, dumped, param_types=types, param_formats=formats)
        return 0
    before = 0
    if name not in known:
        # A name a ROLLBACK left behind (``forget``) is closed first: closing one that
        # is not there is no error.
        pgconn.send_close_prepared(name)
        pgconn.send_prepare(name, sql, param_types=types)
        known.add(name)
        before = 2
    pgconn.send_query_prepared(name, dumped, param_formats=formats)
    return before


def _exchange(
    raw: Any, known: set[bytes], statements: Sequence[tuple[bytes, list[Any]]]
) -> tuple[Any, list[Any]]:
    """Send ``statements`` in libpq's pipeline mode, opened by a BEGIN when no transaction
    is, and read their answers: one write to the socket (libpq holds what is queued until
    the Sync), one round trip. psycopg's own pipeline flushes each statement as it is
    queued, then the Sync, then a flush request: three sends, each waking PostgreSQL's
    backend, which over loopback takes the core while the sender holds Python's lock
    (``bench/README.md``, twelfth and thirteenth passes). Raises the first statement's
    error, the transaction left failed as after any statement's; ``_Broken`` when the
    answers could not all be read."""
    pgconn = raw.pgconn
    tx = Transformer.from_context(raw)
    with raw.lock:
        begin = _begin(raw)
        try:
            pgconn.enter_pipeline_mode()
            if begin is not None:
                pgconn.send_query_params(begin, None)
            # Each answer asked for: a statement's (True) or not (a BEGIN's, a Close's, a Parse's).
            asked = [False] if begin is not None else []
            for sql, values in statements:
                asked += [False] * _queue(pgconn, tx, known, sql, values) + [True]
            pgconn.pipeline_sync()  # libpq writes what it holds
            raw.wait(send(pgconn))  # what a full socket buffer left behind, if anything
            *every, sync = raw.wait(_answers(pgconn, len(asked) + 1))
            if not sync or sync[0].status != ExecStatus.PIPELINE_SYNC:
                raise OperationalError(f"batch: the pipeline's end was not answered: {sync}")
            pgconn.exit_pipeline_mode()
        except BaseException as exc:  # an interrupt too: answers are left unread
            raise _Broken(exc) from exc
    failed = [rs[-1] for rs in every if rs and rs[-1].status == ExecStatus.FATAL_ERROR]
    if failed:
        known.clear()  # what failed or was skipped after it is not prepared: start over
        raise error_from_result(failed[0], encoding=raw.info.encoding)
    return tx, [rs[-1] for rs, mine in zip(every, asked, strict=True) if mine]


def _answers(pgconn: Any, n: int) -> Any:
    """psycopg's generator of ``n`` answers in turn (each a list of results), waited for
    in one wait."""
    out = []
    for _ in range(n):
        out.append((yield from fetch_many(pgconn)))
    return out


# Each statement's name when prepared (by its text and its parameters' types), the same
# on every connection. Closing a prepared statement takes libpq 17 (psycopg's binary
# package brings 18); without it, statements are sent unprepared.
_names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
_numbers = itertools.count()
_CLOSE = pq.version() >= 170000


def forget(info: dict[str, Any]) -> None:
    """The connection's prepared statements may be gone: psycopg deallocates every one on
    the connection (``DEALLOCATE ALL``) after a ROLLBACK, a savepoint's too, and after a
    DROP, an ALTER or a DISCARD, when it had prepared any of its own. Each is prepared
    again at its next use."""
    known = info.get(_KNOWN)
    if known:
        known.clear()


_KNOWN = "provisioner_prepared"  # a pooled connection's info: the names prepared on it
_DISCARDS = re.compile(r"(?:DROP|ALTER|ROLLBACK|DISCARD ALL|DEALLOCATE ALL)\b").match  # psycopg's


@event.listens_for(Engine, "rollback")
@event.listens_for(Engine, "rollback_savepoint")
def _rolled_back(conn: Connection, *_: Any) -> None:
    if conn.dialect.name == "postgresql" and not (conn.closed or conn.invalidated):
        fairy: Any = conn.connection
        _rolling_back(fairy.driver_connection, fairy.info)


@event.listens_for(Pool, "reset")
def _reset(dbapi_conn: Any, record: Any, reset_state: Any) -> None:  # the pool's rollback
    _rolling_back(dbapi_conn, record.info)


def _rolling_back(raw: Any, info: dict[str, Any]) -> None:
    """psycopg sends a ROLLBACK (and may deallocate) only in a transaction: a connection
    given back after its COMMIT keeps its statements."""
    pgconn = getattr(raw, "pgconn", None)  # psycopg's; SQLite's has none
    if pgconn is not None and pgconn.transaction_status != TransactionStatus.IDLE:
        forget(info)


@event.listens_for(Engine, "after_cursor_execute")
def _executed(conn: Connection, cursor: Any, *_: Any) -> None:
    said = getattr(cursor, "statusmessage", None)  # every statement's: no encoding, a match
    if said and _DISCARDS(said):
        forget(conn.connection.info)


@dataclass(frozen=True)
class _Sent:
    """One statement a batch sends: its SQL as SQLAlchemy renders it (named placeholders)
    and as sent ($1, $2, …), each placeholder's item and parameter, and the items it runs
    (more than one, or a guarded one: fused, answering their row counts)."""

    sql: str
    native: bytes
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
            sent.append(_Sent(shape[i][0], native.encode(), order, range(i, i + 1), False))
            i += 1
            continue
        writes: list[Any] = [it[2].fusable for it in items[i:j]]  # each a _Write (``_joins``)
        sql = _fused_sql([(w.sql, g) for w, (_, g) in zip(writes, shape[i:j], strict=True)])
        native, names = _native(sql)
        split = (name[1:].split("_", 1) for name in names)  # "f3_amount": item i + 3
        order = tuple((i + int(n), name) for n, name in split)
        sent.append(_Sent(sql, native.encode(), order, range(i, j), True))
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
