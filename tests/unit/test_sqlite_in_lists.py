"""SQLite ``IN`` lists are padded to few distinct lengths (``worker.store.bulk.sqlite_in_size``): the
driver keeps every distinct statement it ran prepared, and batches whose lists all differ in length
had filled its cache with large statements never run again (peak memory that grew with the number of
records)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from worker.store import queries
from worker.store.bulk import (
    SQLITE_IN_EXACT,
    SQLITE_MAX_PARAMETERS,
    among,
    sqlite_in_size,
    sqlite_in_values,
)
from worker.store.models import Connection, ReengageFlag

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_in_list_sizes_are_exact_when_short_then_powers_of_two():
    assert [sqlite_in_size(n) for n in range(SQLITE_IN_EXACT + 1)] == list(range(SQLITE_IN_EXACT + 1))
    assert [sqlite_in_size(n) for n in (9, 16, 17, 1000, 2000, 2048, 2049)] == [
        16, 16, 32, 1024, 2048, 2048, 4096,
    ]  # fmt: skip
    assert sqlite_in_size(SQLITE_MAX_PARAMETERS - 100) == SQLITE_MAX_PARAMETERS - 100  # no room to pad
    assert sqlite_in_values([]) == []
    assert sqlite_in_values(["a", "b"]) == ["a", "b"]
    assert sqlite_in_values(list("abcdefghij")) == [*"abcdefghij", *"j" * 6]


def _flags(store, count: int) -> int:
    with store.session() as s:
        s.add(Connection(id=1, name="c", crm="files", created_at=NOW))
        for i in range(count):
            s.add(ReengageFlag(connection_id=1, object_type="lead", external_id=f"L{i:03d}", owner_id="u",
                               kind="stale", from_tier="poor", to_tier="best", to_version=1, reason="why",
                               state="active" if i % 2 else "cleared", raised_at=NOW))  # fmt: skip
    return 1


def test_lists_of_every_length_read_exactly_their_rows_through_few_statements(sqlite_store):
    conn_id = _flags(sqlite_store, 150)
    statements: list[str] = []
    with sqlite_store.session() as s:
        s.connection().connection.set_trace_callback(statements.append)
        for n in range(1, 121):
            ids = [f"L{i:03d}" for i in range(0, 2 * n, 2)] + ["nobody"]  # every other one, and a stranger
            active, last = queries.flags(s, conn_id, "lead", ids)  # Codec.in_list
            assert set(last) == {i for i in ids if i != "nobody" and int(i[1:]) < 150}
            assert set(active) == {i for i in last if int(i[1:]) % 2}
            chosen = s.scalars(
                select(ReengageFlag.external_id).where(among(s, ReengageFlag.external_id, ids))
            ).all()
            assert sorted(chosen) == sorted(last)
        s.connection().connection.set_trace_callback(None)
    flag_reads = {sql for sql in statements if sql.startswith("SELECT id, external_id, state")}
    orm_reads = {sql for sql in statements if "FROM reengage_flags" in sql and sql not in flag_reads}
    # Lists of 2 to 121 values: their own length up to 8, then 16, 32, 64 and 128 (the trace shows the
    # bound values, so the list's length is counted from its commas).
    shapes = {sql.split(" IN (")[1].count(",") + 1 for sql in flag_reads}
    assert shapes == {2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128}
    orm_shapes = {sql.split(" IN (")[1].count(",") + 1 for sql in orm_reads}
    assert orm_shapes == shapes
