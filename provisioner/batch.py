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

On PostgreSQL, consecutive INSERTs of values (no SELECT in them, no ON CONFLICT, no
RETURNING asked for) go as one statement, each a data-modifying ``WITH`` of it: psycopg's
work per statement (about 25 us of a worker's CPU) was most of a batch's. Such INSERTs
read nothing another one wrote; PostgreSQL still checks every constraint, foreign keys to
rows a sibling inserted included, and each keeps its own row count.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable, Insert

MAX_SHAPES = 1000  # statements are meant to be built once; this bounds a mistake

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: Any
    binds: dict[str, Processor]
    row: Any = None  # a SELECT's row type (a named tuple of its columns' names)
    results: tuple[Processor | None, ...] = ()
    fusable: str | None = None  # an INSERT of values: its SQL without RETURNING


_cache: dict[tuple[Executable, tuple[str, ...], str], _Compiled] = {}
_fused: dict[tuple[str, ...], str] = {}
_BIND = re.compile(r"%%|%\(([^)]+)\)s")  # psycopg's named placeholders (and a literal %)


def _fusable(stmt: Executable, c: Any, dialect: Any, keys: tuple[str, ...]) -> str | None:
    """An INSERT's SQL without its implicit RETURNING, when it writes values only."""
    if dialect.name != "postgresql" or not isinstance(stmt, Insert):
        return None
    inline: Any = stmt.inline().compile(dialect=dialect, column_keys=list(keys))
    sql = inline.string
    reads = "SELECT" in sql.upper() or "ON CONFLICT" in sql.upper() or "RETURNING" in sql.upper()
    if reads or set(inline.bind_names.values()) != set(c.bind_names.values()):
        return None
    return str(sql)


def _renamed(sql: str, prefix: str) -> str:
    return _BIND.sub(lambda m: m[0] if m[0] == "%%" else f"%({prefix}{m[1]})s", sql)


def _fused_sql(members: tuple[str, ...]) -> str:
    """One statement for several INSERTs: each a WITH of its own, its row count selected."""
    found = _fused.get(members)
    if found is None:
        parts = [f"f{n} AS ({_renamed(sql, f'f{n}_')} RETURNING 1)" for n, sql in enumerate(members)]  # noqa: E501  # fmt: skip
        counts = ", ".join(f"(SELECT count(*) FROM f{n})" for n in range(len(members)))
        if len(_fused) >= MAX_SHAPES:
            _fused.clear()
        found = _fused[members] = f"WITH {', '.join(parts)} SELECT {counts}"
    return found


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


Answer = tuple[int, list[Any]]  # rows affected, rows returned (RETURNING or SELECT)


class Batch:
    """Statements to run in order in the caller's transaction, sent together by ``run``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pipelined = conn.dialect.name == "postgresql"
        self._items: list[tuple[Executable, Mapping[str, Any], _Compiled, dict[str, Any]]] = []

    def add(self, stmt: Executable, params: Mapping[str, Any]) -> int:
        """Queue ``stmt``; returns its place in ``run``'s answer."""
        c = _compile(self.conn, stmt, tuple(sorted(params)))
        values: dict[str, Any] = {}
        if self.pipelined:
            values = c.compiled.construct_params(params)
            for name, process in c.binds.items():
                values[name] = process(values[name])
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
        raw: Any = self.conn.connection.driver_connection
        dialect = self.conn.dialect
        sent = _statements(items)
        cursors = []
        try:
            with raw.pipeline():
                for sql, values, _ in sent:
                    cur = raw.cursor()
                    cur.execute(sql, values)
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
        out = []
        for (_, _, members), cur in zip(sent, cursors, strict=True):
            if len(members) > 1:  # fused INSERTs: their row counts
                out += [(int(n), []) for n in cur.fetchone()]
            else:
                c = items[members[0]][2]
                rows = []
                if c.row is not None:  # not an INSERT's implicit RETURNING of its key
                    rows = [c.row(*_processed(r, c.results)) for r in cur.fetchall()]
                out.append((cur.rowcount, rows))
            cur.close()
        return out


def _statements(
    items: Sequence[tuple[Executable, Mapping[str, Any], _Compiled, dict[str, Any]]],
) -> list[tuple[str, dict[str, Any], range]]:
    """What goes to PostgreSQL for ``items``: each (SQL, values, the items it runs), runs
    of two or more fusable INSERTs as one statement."""
    sent = []
    i = 0
    while i < len(items):
        j = i
        while j < len(items) and items[j][2].fusable is not None:
            j += 1
        if j - i < 2:
            sent.append((items[i][2].sql, items[i][3], range(i, i + 1)))
            i += 1
            continue
        sql = _fused_sql(tuple(str(items[k][2].fusable) for k in range(i, j)))
        values = {f"f{n}_{k}": v for n, it in enumerate(items[i:j]) for k, v in it[3].items()}
        sent.append((sql, values, range(i, j)))
        i = j
    return sent


def _processed(row: Sequence[Any], processors: tuple[Processor | None, ...]) -> list[Any]:
    return [v if p is None else p(v) for v, p in zip(row, processors, strict=True)]
