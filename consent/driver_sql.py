"""The ledger's hot statements, run on the database driver's own cursor.

Why: an append or a decision runs a handful of one-row statements, and SQLAlchemy's
per-statement work (cache key, execution context, result wrapping) cost ~20x the statement
itself (~70 us against ~3 us for ``SELECT max(idx)`` on SQLite). These statements are fixed
text, so they are written once per placeholder style and sent through the DBAPI cursor of
the session's own connection: same connection, same transaction, same locks. Values are
bound through the column types' own processors, so the rows are byte-for-byte what the
ORM would have written (``UTCDateTime`` on SQLite, for instance).

Only for the registry's own fixed statements: never build SQL from input here.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.orm import Session

from consent.store import UTCDateTime

#: DBAPI placeholder styles this module writes (sqlite3: qmark; psycopg: format).
_STYLES = {"qmark": "?", "format": "%s", "pyformat": "%s"}

#: Called with (dialect name, SQL as sent, parameters) before every statement: for
#: instruments such as bench/consent.py's EXPLAIN of a decision's reads (SQLAlchemy's own
#: cursor events do not see these statements).
statement_hooks: list[Callable[[str, str, Sequence[Any]], None]] = []


class DriverCursor:
    """A DBAPI cursor of the session's connection plus the dialect's placeholder style."""

    __slots__ = ("_cursor", "_mark", "bind_time", "dialect_name")

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        style = dialect.paramstyle
        if style not in _STYLES:
            raise NotImplementedError(f"placeholder style {style!r} ({dialect.name})")
        self._mark = _STYLES[style]
        self.dialect_name = dialect.name
        self.bind_time = time_binder(dialect)

    def sql(self, text: str) -> str:
        """``text`` written with ``?`` placeholders, in this driver's style."""
        return _restyle(text, self._mark)

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        sql = _restyle(text, self._mark)
        for hook in statement_hooks:
            hook(self.dialect_name, sql, params)
        self._cursor.execute(sql, params)
        return self._cursor

    def executemany(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        sql = _restyle(text, self._mark)
        batch = list(rows)
        for hook in statement_hooks:
            for params in batch:
                hook(self.dialect_name, sql, params)
        self._cursor.executemany(sql, batch)

    def one(self, text: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.execute(text, params).fetchone()
        return None if row is None else row[0]

    def rows(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self.execute(text, params).fetchall())


@contextlib.contextmanager
def pipeline(session: Session) -> Iterator[None]:
    """Statements sent in this block do not each wait for the server (PostgreSQL: the
    driver's pipeline mode; reading a result waits for everything sent before it). SQLite
    runs in-process: nothing to save there. Nested blocks join the outer one.

    Why: a decision's append writes four rows (entry, nodes, refs, decision), each a round
    trip to the server otherwise; the server still runs them in order, in the same
    transaction, and the first error aborts the rest (raised at the block's end or at the
    next read)."""
    if session.get_bind().dialect.name != "postgresql":  # without taking the connection
        yield
        return
    driver = session.connection().connection.driver_connection
    if driver is None or _in_pipeline(driver):
        yield
        return
    with driver.pipeline():
        yield


def _in_pipeline(driver: Any) -> bool:
    return bool(getattr(driver.pgconn, "pipeline_status", 0))


def cursor(session: Session) -> DriverCursor:
    """A driver cursor on the connection (and transaction) the session is using."""
    conn = session.connection()
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the session's connection has no driver connection")
    return DriverCursor(driver.cursor(), conn.dialect)


@functools.lru_cache(maxsize=256)
def _restyle(text: str, mark: str) -> str:
    return text if mark == "?" else text.replace("?", mark)


#: Per dialect name: a registry uses the dialect's stock type implementations.
_TIME_BINDERS: dict[str, Callable[[datetime], Any]] = {}


def time_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    """How a ``UTCDateTime`` column's value is sent to this driver (the ORM's own way)."""
    binder = _TIME_BINDERS.get(dialect.name)
    if binder is None:
        # The dialect's own implementation of the type (SQLite stores text in its format).
        process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        binder = _TIME_BINDERS[dialect.name] = (
            process if process is not None else _unchanged)
    return binder


def _unchanged(value: datetime) -> Any:
    return value


def as_bytes(value: Any) -> bytes:
    """A BLOB/bytea value as bytes (drivers may hand back memoryview)."""
    return value if isinstance(value, bytes) else bytes(value)
