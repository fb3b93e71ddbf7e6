"""``icp-worker history export``: every change of score or tier, one row per change, streamed to CSV or
Parquet so that millions of rows keep memory flat.

Rows are read with ``yield_per`` (a server-side cursor on PostgreSQL, chunked fetches on SQLite), in
record order and then time order, so the cause of an entry written before causes were recorded can be
inferred from the entry before it; they are written in batches (Parquet: one row group per batch).
The file is written under a temporary name and renamed when complete: a failed export leaves no
half-written file behind. Parquet needs the optional ``pyarrow`` (``pip install 'icp-fit-worker[parquet]'``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.icp.changes import ChangeCause
from worker.store.models import Connection, FitHistory
from worker.store.queries import aware

__all__ = ["COLUMNS", "FORMATS", "ExportError", "export_history", "history_rows"]

COLUMNS = (
    "connection",
    "object_type",
    "external_id",
    "scored_at",
    "icp_version",
    "run_id",
    "previous_version",
    "previous_score",
    "previous_tier",
    "score",
    "tier",
    "cause",
    "reasons_text",
)
FORMATS = (".csv", ".parquet")
#: Rows fetched per round trip and written per batch (a Parquet row group).
BATCH = 5000


class ExportError(ValueError):
    """The export cannot be done as asked (unknown format, pyarrow missing, unknown connection)."""


def history_rows(
    session: Session, *, connection: str | None = None, since: datetime | None = None, batch: int = BATCH
) -> Iterator[tuple[Any, ...]]:
    """Every history entry (as :data:`COLUMNS`), streamed."""
    query = (
        select(
            Connection.name,
            FitHistory.object_type,
            FitHistory.external_id,
            FitHistory.scored_at,
            FitHistory.icp_version,
            FitHistory.run_id,
            FitHistory.previous_version,
            FitHistory.previous_score,
            FitHistory.previous_tier,
            FitHistory.score,
            FitHistory.tier,
            FitHistory.cause,
            FitHistory.reasons_text,
        )
        .join(Connection, Connection.id == FitHistory.connection_id)
        .order_by(
            FitHistory.connection_id,
            FitHistory.object_type,
            FitHistory.external_id,
            FitHistory.scored_at,
            FitHistory.id,
        )
        .execution_options(yield_per=batch)
    )
    if connection is not None:
        query = query.where(Connection.name == connection)
    if since is not None:
        query = query.where(FitHistory.scored_at >= since)
    previous: tuple[Any, ...] | None = None
    for row in session.execute(query):
        values = list(row)
        values[3] = aware(values[3]).isoformat()
        same_record = previous is not None and previous[:3] == tuple(values[:3])
        if values[6] is None and same_record:  # previous_version, unknown on older entries
            values[6] = previous[4] if previous else None
        if values[7] is None and same_record:
            values[7] = previous[9] if previous else None
        if not values[11]:
            values[11] = _inferred(values, previous if same_record else None)
        out = tuple(values)
        yield out
        previous = out


def _inferred(values: list[Any], previous: tuple[Any, ...] | None) -> str:
    if previous is None:
        return ChangeCause.FIRST.value if values[8] is None else ""
    return ChangeCause.REVISION.value if previous[4] != values[4] else ChangeCause.DATA.value


def export_history(
    session: Session,
    path: Path,
    *,
    connection: str | None = None,
    since: datetime | None = None,
    batch: int = BATCH,
) -> int:
    """Write the history to ``path`` (``.csv`` or ``.parquet``); returns the number of rows."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"{path}: the file must end in .csv or .parquet")
    if (
        connection is not None
        and session.scalar(select(Connection.id).where(Connection.name == connection)) is None
    ):
        raise ExportError(f"no connection {connection!r} in the store")
    writer = _write_parquet if suffix == ".parquet" else _write_csv
    if suffix == ".parquet":
        _pyarrow()  # fail before reading anything
    partial = path.with_name(path.name + ".partial")
    try:
        count = writer(history_rows(session, connection=connection, since=since, batch=batch), partial, batch)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return count


def _write_csv(rows: Iterator[tuple[Any, ...]], path: Path, batch: int) -> int:
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ExportError(
            "Parquet export needs pyarrow: pip install 'icp-fit-worker[parquet]' (or export to .csv)"
        ) from None
    return pyarrow


def _write_parquet(rows: Iterator[tuple[Any, ...]], path: Path, batch: int) -> int:
    pa = _pyarrow()
    schema = pa.schema(
        [
            ("connection", pa.string()),
            ("object_type", pa.string()),
            ("external_id", pa.string()),
            ("scored_at", pa.timestamp("us", tz="UTC")),
            ("icp_version", pa.int32()),
            ("run_id", pa.int64()),
            ("previous_version", pa.int32()),
            ("previous_score", pa.int16()),
            ("previous_tier", pa.string()),
            ("score", pa.int16()),
            ("tier", pa.string()),
            ("cause", pa.string()),
            ("reasons_text", pa.string()),
        ]
    )
    count = 0
    with pa.parquet.ParquetWriter(str(path), schema) as writer:
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                writer.write_batch(_batch(pa, schema, chunk))
                count += len(chunk)
                chunk = []
        if chunk or count == 0:
            writer.write_batch(_batch(pa, schema, chunk))
            count += len(chunk)
    return count


def _batch(pa: Any, schema: Any, chunk: list[tuple[Any, ...]]) -> Any:
    columns: list[list[Any]] = [list(c) for c in zip(*chunk, strict=True)] if chunk else [[] for _ in COLUMNS]
    arrays = []
    for name, values in zip(COLUMNS, columns, strict=True):
        if name == "scored_at":
            values = [datetime.fromisoformat(v) for v in values]
        arrays.append(pa.array(values, type=schema.field(name).type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
