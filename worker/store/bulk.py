"""Bulk statements for the sync's hot paths, straight through the DBAPI cursor of a session's connection.

The pull, score and write phases move every record through a handful of statements (insert or update a
snapshot, insert or update a fit, add a history entry, record a write's result, read a batch back). Run
through SQLAlchemy, each row's parameters are built into a dict, then processed value by value by the
column types, and each result row by the result processors: most of a sync's time. Here the statement is
plain SQL run on the session's own DBAPI connection (so in the session's transaction, committed with it),
and each value is encoded once by the :class:`Codec` of the store's dialect, exactly as SQLAlchemy's
column types encode it (``tests/unit/test_store_bulk.py`` compares the stored rows byte for byte):

- SQLite: JSON as the store's JSON text (``db._json_dumps``, the engine's serializer), datetimes and dates
  in SQLAlchemy's SQLite storage format (``2026-11-23 02:00:00.000000``, ``2026-11-23``), booleans as 0/1;
  read back with ``orjson.loads``, ``datetime.fromisoformat`` and ``date.fromisoformat``.
- PostgreSQL (psycopg 3): datetimes and dates as they are, JSON as the same text (the server parses it),
  read back by psycopg itself; ``executemany`` runs in psycopg's pipeline mode (no round trip per row).

SQL is written with ``?`` placeholders and turned into the driver's style here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session

from worker.store.db import _json_dumps


def _sqlite_moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def _sqlite_day(value: date | None) -> str | None:
    if value is None:
        return None
    if type(value) is date:  # the same text (years zero-padded to 4 digits), cheaper
        return value.isoformat()
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"  # a datetime: its date only


def _sqlite_read_moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _sqlite_read_day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _sqlite_read_json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def _same(value: Any) -> Any:
    return value


def _flag(value: bool) -> int:
    return 1 if value else 0


@dataclass(frozen=True, slots=True)
class Codec:
    """How one dialect's driver takes and gives the store's column types."""

    dialect: str
    #: The driver's placeholder for ``?``.
    placeholder: str
    moment: Callable[[datetime | None], Any]
    day: Callable[[date | None], Any]
    #: JSON value → parameter; ``None`` is JSON ``null``, as SQLAlchemy's ``JSON`` type stores it.
    json: Callable[[Any], Any]
    flag: Callable[[bool], Any]
    read_moment: Callable[[Any], datetime | None]
    read_day: Callable[[Any], date | None]
    read_json: Callable[[Any], Any]

    def sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``IN (...)`` of ``values`` as SQL (``?`` placeholders) and its parameters (on SQLite as many
        placeholders as ``sqlite_in_size`` says: few distinct statements)."""
        if self.dialect == "postgresql":
            return "= ANY(?)", [list(values)]
        padded = sqlite_in_values(values)
        return f"IN ({','.join('?' * len(padded))})", padded


SQLITE = Codec(
    "sqlite", "?", _sqlite_moment, _sqlite_day, _json_dumps, _flag,
    _sqlite_read_moment, _sqlite_read_day, _sqlite_read_json,
)  # fmt: skip
POSTGRESQL = Codec("postgresql", "%s", _same, _same, _json_dumps, bool, _same, _same, _same)


#: IN lists up to this many values keep their own length on SQLite; longer ones are padded to a power
#: of two (``sqlite_in_values``).
SQLITE_IN_EXACT = 8
#: Room left for a statement's other parameters beside its padded ``IN`` list.
SQLITE_IN_OTHERS = 64


def sqlite_in_size(count: int) -> int:
    """How many placeholders an SQLite ``IN`` list of ``count`` values gets: ``count`` up to
    ``SQLITE_IN_EXACT``, then the next power of two (unless that would pass ``SQLITE_MAX_PARAMETERS``).

    The driver keeps each distinct statement it ran prepared (its statement cache, 128 per connection),
    and a statement with an ``IN`` list of one more value is another statement: batches whose lists all
    differ in length (the accounts a batch needs the opportunities of, the parents of a batch of
    opportunities) filled the cache with statements of up to 2,000 placeholders each, prepared once and
    never run again. A full sync at 100,000 accounts peaked at 170 MB against 150 MB at 25,000; with the
    cache held to 16 statements, 141 and 140 MB."""
    if count <= SQLITE_IN_EXACT:
        return count
    power = 1 << (count - 1).bit_length()
    return power if power <= SQLITE_MAX_PARAMETERS - SQLITE_IN_OTHERS else count


def sqlite_in_values(values: Iterable[Any]) -> list[Any]:
    """``values`` padded to ``sqlite_in_size`` by repeating the last one (which ``IN`` does not mind)."""
    out = list(values)
    size = sqlite_in_size(len(out))
    if size > len(out):
        out.extend([out[-1]] * (size - len(out)))
    return out


#: Most rows one SQLite ``INSERT`` statement takes. The driver keeps each distinct statement it ran
#: prepared (its statement cache), and a prepared statement's size grows with its rows: statements of
#: ``_chunk_sizes`` (this many rows, then powers of two) keep that to a few small ones per table, whatever
#: the batches' sizes (one statement per batch size held 170 MB more in a re-evaluation at 100,000 accounts).
SQLITE_ROWS_PER_INSERT = 256


def _chunk_sizes(count: int, most: int) -> list[int]:
    """``count`` rows as statements of ``most`` rows, then of the powers of two below it that add up to
    the rest (700 by 256: 256, 256, 128, 32, 16, 8, 4): few distinct statements, few statements."""
    sizes = [most] * (count // most)
    rest, power = count % most, 1 << max(0, most.bit_length() - 1)
    while rest:
        if power <= rest:
            sizes.append(power)
            rest -= power
        power >>= 1
    return sizes


#: SQLite's smallest parameter limit (before 3.32); newer libraries allow 32,766 or more, of which the
#: inserts use at most ``SQLITE_MAX_PARAMETERS`` a statement.
SQLITE_MIN_PARAMETERS = 999
SQLITE_MAX_PARAMETERS = 32_766


@dataclass(frozen=True, slots=True)
class Insert:
    """Rows into ``table``, one value per column (in ``columns`` order)."""

    table: str
    columns: tuple[str, ...]

    def sql(self) -> str:
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)})"
            f" VALUES ({', '.join('?' * len(self.columns))})"
        )

    def sql_rows(self, count: int) -> str:
        """One statement inserting ``count`` rows (their values one row after the other)."""
        one = f"({', '.join('?' * len(self.columns))})"
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {', '.join([one] * count)}"


@dataclass(frozen=True, slots=True)
class Update:
    """Rows of ``table`` by ``key``: each row of parameters is the ``columns``' values, then the key.
    ``columns`` pairs each column with its PostgreSQL type; ``also`` is a fixed assignment added to
    every row's (``write_error = NULL``)."""

    table: str
    key: str
    columns: tuple[tuple[str, str], ...]
    also: str = ""

    def sql(self) -> str:
        sets = [f"{c} = ?" for c, _ in self.columns] + ([self.also] if self.also else [])
        return f"UPDATE {self.table} SET {', '.join(sets)} WHERE {self.key} = ?"


class Bulk:
    """Plain statements on the session's DBAPI connection, in the session's transaction."""

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        name = connection.dialect.name
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"no bulk codec for the {name} dialect")
        self.codec = SQLITE if name == "sqlite" else POSTGRESQL
        self._dbapi = connection.connection

    def many(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        """``statement`` once per row of parameters (executemany)."""
        rows = list(rows)
        if not rows:
            return
        cursor = self._dbapi.cursor()
        try:
            cursor.executemany(self.codec.sql(statement), rows)
        finally:
            cursor.close()

    def insert(self, spec: Insert, rows: Sequence[Sequence[Any]]) -> None:
        """``rows`` into the table: multi-row ``INSERT ... VALUES`` statements on SQLite, ``COPY`` on
        PostgreSQL.

        On SQLite each statement takes up to ``SQLITE_ROWS_PER_INSERT`` rows (within its parameter
        limit) instead of one ``executemany`` step per row: slightly less work, and the driver releases
        the GIL once per statement rather than once per row, so the score phase's committing thread
        (``worker.sync.score``) runs beside the scoring one instead of waiting for the GIL after every
        row."""
        if not rows:
            return
        if self.codec.dialect == "sqlite":
            per = max(1, min(SQLITE_ROWS_PER_INSERT, self._sqlite_parameters() // len(spec.columns)))
            cursor = self._dbapi.cursor()
            try:
                start = 0
                for size in _chunk_sizes(len(rows), per):
                    chunk = rows[start : start + size]
                    cursor.execute(spec.sql_rows(size), [value for row in chunk for value in row])
                    start += size
            finally:
                cursor.close()
            return
        cursor = self._dbapi.cursor()
        try:
            with cursor.copy(f"COPY {spec.table} ({', '.join(spec.columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def _sqlite_parameters(self) -> int:
        """The most parameters one SQLite statement takes (the library's compiled limit)."""
        getlimit = getattr(self._dbapi, "getlimit", None)
        if getlimit is None:  # pragma: no cover - Python < 3.11
            return SQLITE_MIN_PARAMETERS
        limit = int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        return max(SQLITE_MIN_PARAMETERS, min(limit, SQLITE_MAX_PARAMETERS))

    def update(self, spec: Update, rows: Sequence[Sequence[Any]]) -> None:
        """``executemany`` (pipelined on PostgreSQL: measured as fast as one ``UPDATE ... FROM unnest``
        of arrays or a ``COPY`` into a temporary table and one ``UPDATE ... FROM`` it)."""
        self.many(spec.sql(), rows)

    def run(self, statement: str, params: Sequence[Any] = ()) -> None:
        cursor = self._dbapi.cursor()
        try:
            cursor.execute(self.codec.sql(statement), params)
        finally:
            cursor.close()

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query, as the driver gives it (decode with the codec's ``read_*``)."""
        cursor = self._dbapi.cursor()
        try:
            cursor.execute(self.codec.sql(statement), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def among(
    session: Session, column: ColumnElement[Any] | QueryableAttribute[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(array)``: one parameter, not one placeholder
    per value (psycopg parses a statement of 2,000 placeholders again on every call); on SQLite padded
    to few distinct lengths (``sqlite_in_size``)."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(sqlite_in_values(values))  # few distinct statements (``sqlite_in_size``)


#: The tables the sync's per-batch queries read: their planner statistics are kept up (``Statistics``).
SYNC_TABLES = ("record_snapshots", "record_fits")
#: Rows changed before a run first refreshes the statistics, and the growth that refreshes them again
#: (PostgreSQL scales its row estimates by the table's current size, so the first ones matter most).
STATS_FIRST = 2000
STATS_GROWTH = 8


class Statistics:
    """Keeps PostgreSQL's planner statistics of the sync's tables up to date while a run fills them.

    A store's first sync grows ``record_snapshots`` from nothing to every record in minutes, faster
    than autovacuum analyses it (and autovacuum may be off). Planned on the statistics of an empty
    table, the per-page queries (the snapshot look-up by external id, the score and write keysets)
    choose the wrong index and read the whole object type per page: quadratic in the number of
    records. ``changed(session, n)`` counts rows a run changed and runs ``ANALYZE`` once they pass
    ``STATS_FIRST`` rows, then again each time they grow ``STATS_GROWTH`` times (each ``ANALYZE``
    samples at most a few ten thousand rows). SQLite plans without statistics: nothing to do there."""

    def __init__(self, tables: Sequence[str] = SYNC_TABLES) -> None:
        self.tables = tuple(tables)
        self.total = 0
        self.since = 0
        self.threshold = STATS_FIRST

    def changed(self, session: Session, rows: int) -> None:
        self.total += rows
        self.since += rows
        if self.total >= self.threshold:
            self.threshold = max(STATS_FIRST, self.total * STATS_GROWTH)
            self.refresh(session)

    def refresh(self, session: Session) -> None:
        """``ANALYZE`` now if any row changed since the last one (at the end of an object type: the
        next one's rows were not in the statistics yet, and its queries would be planned as if it had
        none)."""
        if self.since:
            analyze(session, self.tables)
            self.since = 0


#: ``default_statistics_target`` of the sync's own ``ANALYZE`` (PostgreSQL's default is 100): it samples
#: 300 rows per unit, so 9,000 rows instead of 30,000. What the sync's queries need from the statistics
#: (how many rows an object type or a write status has, which index to use) is read as well from the
#: smaller sample; measured on 410,389 fits: ``ANALYZE record_fits`` 1.70 s at 100, 0.33 s at 30. A
#: column's own statistics target (``ALTER TABLE ... SET STATISTICS``) still wins, and autovacuum's or
#: an administrator's ``ANALYZE`` later samples as configured.
ANALYZE_TARGET = 30


def analyze(session: Session, tables: Sequence[str]) -> None:
    """Refresh the planner statistics of ``tables`` (PostgreSQL; nothing on SQLite), sampled at
    ``ANALYZE_TARGET`` for this transaction only."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    connection.exec_driver_sql(f"SET LOCAL default_statistics_target = {ANALYZE_TARGET}")
    for table in tables:
        connection.exec_driver_sql(f"ANALYZE {table}")


__all__ = [
    "POSTGRESQL", "SQLITE", "SYNC_TABLES", "Bulk", "Codec", "Insert", "Statistics", "Update", "among",
    "analyze",
]  # fmt: skip
