"""Writes sent to PostgreSQL together: one round trip for a transaction's statements.

The express lane's writes (customer, activation, invoice, RADIUS rows, outbox, debits)
do not depend on one another's answers, so on PostgreSQL they go out in psycopg's
pipeline mode and their answers come back together: one round trip instead of one per
statement, and none of SQLAlchemy's per-execution work. Statements stay SQLAlchemy Core
constructs: each is compiled once per shape (its statement and parameter names) for the
connection's dialect, and its parameters go through the columns' own bind processors
(money in minor units, UTC timestamps, JSON).

Columns whose value SQLAlchemy computes at execution (a Python ``default`` or
``onupdate``) are refused: the caller passes them, so nothing is silently NULL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

_Compiled = tuple[str, dict[str, Callable[[Any], Any]], Any]
_compiled: dict[tuple[Executable, tuple[str, ...], str], _Compiled] = {}
MAX_SHAPES = 1000  # statements are meant to be built once; this bounds a mistake


def _compile(conn: Connection, stmt: Executable, keys: tuple[str, ...]) -> _Compiled:
    dialect = conn.dialect
    shape = (stmt, keys, dialect.name)
    found = _compiled.get(shape)
    if found is None:
        c: Any = stmt.compile(dialect=dialect, column_keys=list(keys))
        computed = [col.key for col in (*c.insert_prefetch, *c.update_prefetch)]
        if computed or c.literal_execute_params or c.post_compile_params:
            raise ValueError(f"batch: pass {computed} yourself; no expanding parameters")
        processors = {}
        for name, bind in c.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        if len(_compiled) >= MAX_SHAPES:
            _compiled.clear()
        found = _compiled[shape] = (c.string, processors, c)
    return found


class Batch:
    """Statements to run in order in the caller's transaction, sent together by ``run``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pipelined = conn.dialect.name == "postgresql"
        self._items: list[tuple[Executable, Mapping[str, Any], str, dict[str, Any]]] = []

    def add(self, stmt: Executable, params: Mapping[str, Any]) -> int:
        """Queue ``stmt``; returns its place in ``run``'s answer."""
        sql, processors, compiled = _compile(self.conn, stmt, tuple(sorted(params)))
        values: dict[str, Any] = {}
        if self.pipelined:
            values = compiled.construct_params(params)
            for name, process in processors.items():
                values[name] = process(values[name])
        self._items.append((stmt, params, sql, values))
        return len(self._items) - 1

    def run(self) -> list[tuple[int, Row[Any] | tuple[Any, ...] | None]]:
        """Run everything; (rows affected, first row returned or None) of each statement,
        in order. PostgreSQL: in one round trip. SQLite (a local file, no round trips):
        one statement at a time."""
        items, self._items = self._items, []
        if not self.pipelined:
            out: list[tuple[int, Row[Any] | tuple[Any, ...] | None]] = []
            for stmt, params, _, _ in items:
                r = self.conn.execute(stmt, params)
                out.append((r.rowcount, r.first() if r.returns_rows else None))
            return out
        raw: Any = self.conn.connection.driver_connection
        dialect = self.conn.dialect
        cursors = []
        try:
            with raw.pipeline():
                for _, _, sql, values in items:
                    cur = raw.cursor()
                    cur.execute(sql, values)
                    cursors.append(cur)
        except dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy raises it (IntegrityError, OperationalError, …): callers tell a
            # duplicate key or a deadlock apart as they do for any statement.
            raise DBAPIError.instance(
                f"(a batch of {len(items)} statements)", None, exc, dialect.loaded_dbapi.Error,
                dialect=dialect,
            ) from exc  # fmt: skip
        out = []
        for cur in cursors:
            row = cur.fetchone() if cur.description is not None else None
            out.append((cur.rowcount, row))
            cur.close()
        return out
