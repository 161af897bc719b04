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
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

MAX_SHAPES = 1000  # statements are meant to be built once; this bounds a mistake

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: Any
    binds: dict[str, Processor]
    row: Any = None  # a SELECT's row type (a named tuple of its columns' names)
    results: tuple[Processor | None, ...] = ()


_cache: dict[tuple[Executable, tuple[str, ...], str], _Compiled] = {}


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
    if len(_cache) >= MAX_SHAPES:
        _cache.clear()
    found = _cache[shape] = _Compiled(c.string, c, binds, row, results)
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
        cursors = []
        try:
            with raw.pipeline():
                for _, _, c, values in items:
                    cur = raw.cursor()
                    cur.execute(c.sql, values)
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
        for (_, _, c, _), cur in zip(items, cursors, strict=True):
            rows = []
            if c.row is not None:  # not an INSERT's implicit RETURNING of its key
                rows = [c.row(*_processed(r, c.results)) for r in cur.fetchall()]
            out.append((cur.rowcount, rows))
            cur.close()
        return out


def _processed(row: Sequence[Any], processors: tuple[Processor | None, ...]) -> list[Any]:
    return [v if p is None else p(v) for v, p in zip(row, processors, strict=True)]
