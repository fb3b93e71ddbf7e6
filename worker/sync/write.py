"""Write: pending (and previously failed) records go to the CRM in the connector's batch size; each
batch's per-record results commit right after the CRM answers (a crash re-sends at most the one batch
in flight, or the two calls in flight of a connector that keeps requests in flight, or the two batches
of a connector whose commits run behind its writes: the one committing and the one just written)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from connectors.base import Connector, FitUpdate, ObjectType, WriteResult
from worker.store import queries
from worker.store.bulk import Bulk, Codec, Update
from worker.store.db import Store
from worker.store.states import WriteStatus
from worker.sync.behind import CommitsBehind
from worker.sync.counts import RunCounts
from worker.sync.tables import ProgressFn

#: Pending fits read per query in the write phase (then sent in the connector's batch size).
WRITE_READ_CHUNK = 2000
#: Record errors a run keeps for its report (the store keeps every failed record's last error).
MAX_RECORD_ERRORS = 20


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record the CRM refused in this run: which one, which field (when the CRM says), its message."""

    object_type: str
    id: str
    field: str | None
    code: str | None
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def write_object(
    store: Store,
    conn_id: int,
    object_type: ObjectType,
    connector: Connector,
    counts: RunCounts,
    now: datetime,
    progress: ProgressFn | None,
    errors: list[RecordError] | None = None,
) -> None:
    """``write_objects`` for one object type."""
    write_objects(store, conn_id, (object_type,), connector, counts, now, progress, errors)


def write_objects(
    store: Store,
    conn_id: int,
    object_types: Sequence[ObjectType],
    connector: Connector,
    counts: RunCounts,
    now: datetime,
    progress: ProgressFn | None,
    errors: list[RecordError] | None = None,
) -> None:
    """Send every pending (or previously failed) record of each object type once, in the connector's
    batch size, one object type after the other.

    Last run's failures go first, then the pending records: a record failing now is marked ``error``
    and not tried again in this run. A connector that keeps requests in flight
    (``records_per_write_call``) gets its next call while this thread commits the answers of the one
    before, so the CRM's rate is not left idle during our own work (a crash re-sends at most those two
    calls' records: updates are idempotent); with ``overlap_write_calls`` (its ``write`` is thread-safe)
    the next call also starts while the one before is finishing, the next object type's first call
    while the last of the one before is, so no call's last requests leave the CRM's rate idle either.
    A connector with ``commit_behind_writes`` (its ``write`` is our own work, such as the files
    connector's CSV) writes its next batch while a second thread commits the batch before (a crash
    re-sends at most those two batches' records). The first ``MAX_RECORD_ERRORS`` refusals of the run
    are kept in ``errors``.
    """
    per_call = int(getattr(connector, "records_per_write_call", 0) or 0)
    batch = max(1, per_call or int(connector.write_batch_size))
    chunks = (
        (object_type, rows)
        for object_type in object_types
        for rows in _pending_chunks(store, conn_id, object_type, batch)
    )
    if not per_call and getattr(connector, "commit_behind_writes", False):
        _write_committing_behind(store, chunks, connector, counts, now, progress, errors)
        return
    if not per_call:
        for object_type, rows in chunks:
            write_batch(store, object_type, connector, rows, counts, now, errors)
            if progress:
                progress(f"write:{object_type}", len(rows))
        return
    overlap = 2 if getattr(connector, "overlap_write_calls", False) else 1
    with ThreadPoolExecutor(max_workers=overlap, thread_name_prefix="write-ahead") as ahead:
        in_flight: _Call | None = None
        for object_type, rows in chunks:
            sent = (object_type, rows, ahead.submit(connector.write, object_type, rows.updates))
            if in_flight is not None:
                _settle(store, in_flight, counts, now, progress, errors)
            in_flight = sent
        if in_flight is not None:
            _settle(store, in_flight, counts, now, progress, errors)


def _write_committing_behind(
    store: Store,
    chunks: Iterable[tuple[ObjectType, _Rows]],
    connector: Connector,
    counts: RunCounts,
    now: datetime,
    progress: ProgressFn | None,
    errors: list[RecordError] | None,
) -> None:
    """Batch after batch, each one's results committing in a second thread while this one reads and
    writes the next (the commits in batch order, one at a time).

    The second thread's work is the database's: one ``UPDATE`` per 5,000 records and the commit, each
    a single call that releases the GIL for its whole length (SQLite) or waits on the server
    (PostgreSQL), so it runs beside this thread's reading, formatting and writing instead of after it.
    (Not the reading: fetching rows releases the GIL once per row, which would convoy with this
    thread's CPU-bound work.)"""
    with CommitsBehind(store, "write-commit") as behind:
        for object_type, rows in chunks:
            results = connector.write(object_type, rows.updates)
            behind.submit(
                store_results, store, rows, results, counts, now, object_type, errors,
                then=partial(progress, f"write:{object_type}", len(rows)) if progress else None,
            )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Rows:
    """Records to write: their snapshot ids, and the update of each (same order)."""

    snapshot_ids: list[int]
    updates: list[FitUpdate]

    def __len__(self) -> int:
        return len(self.snapshot_ids)


#: A batch in flight: its object type, its rows, the connector's answer (or the commit) to come.
_Call = tuple[ObjectType, _Rows, "Future[Any]"]


def _settle(
    store: Store,
    in_flight: _Call,
    counts: RunCounts,
    now: datetime,
    progress: ProgressFn | None,
    errors: list[RecordError] | None,
) -> None:
    object_type, rows, answer = in_flight
    store_results(store, rows, answer.result(), counts, now, object_type, errors)
    if progress:
        progress(f"write:{object_type}", len(rows))


def _pending_chunks(store: Store, conn_id: int, object_type: ObjectType, batch: int) -> Iterator[_Rows]:
    """Records to write, ``batch`` at a time: last run's failures, then the pending records. One status
    per query keeps the index scan in key order (an ``IN`` over both statuses makes SQLite sort every
    remaining row, once per query). Each update is the fit's desired values and its ``scored_at``."""
    for status in (WriteStatus.ERROR, WriteStatus.PENDING):
        last_id = 0
        while True:
            with store.session() as s:
                bulk = Bulk(s)
                c = bulk.codec
                limit = max(batch, WRITE_READ_CHUNK)
                params = (status.value, last_id, last_id, conn_id, object_type, limit)
                raw = bulk.rows(SELECT_TO_WRITE, params)
            if not raw:
                break
            last_id = raw[-1][0]
            # A sync scores its records at one moment: each distinct stored scored_at is decoded and
            # formatted once, not once per record (a second of the write phase at 410,389 records).
            stamps = {at: _scored_at(c, at) for at in {row[3] for row in raw}}
            ids = [row[0] for row in raw]
            updates = [FitUpdate(ext, {**orjson.loads(d), "scored_at": stamps[at]}) for _, ext, d, at in raw]
            for start in range(0, len(raw), batch):
                yield _Rows(ids[start : start + batch], updates[start : start + batch])
            if len(raw) < limit:
                break  # that was the last of them: no query for an empty chunk (a scan to the end)


def _scored_at(codec: Codec, stored: Any) -> str:
    """A stored ``scored_at`` as a write sends it: ``2026-11-23T02:00:00+00:00``."""
    moment = codec.read_moment(stored)
    assert moment is not None  # record_fits.scored_at is NOT NULL
    return queries.aware(moment).isoformat(timespec="seconds")


#: The next fits of one write status after snapshot id ``?`` (a range scan of
#: ``ix_record_fits_status_snapshot``), with the record's id. The bound is repeated for the snapshots
#: (the same rows): PostgreSQL may merge-join the two primary keys, and without it read every snapshot
#: below the bound again for each chunk (60-220 ms a chunk at 100,000 accounts, seen with auto_explain).
#: ``desired`` comes as its JSON text, decoded by orjson on both databases (psycopg's own JSON loader is
#: the standard library's: a second of the write phase at 410,389 records on PostgreSQL).
SELECT_TO_WRITE = (
    "SELECT f.snapshot_id, s.external_id, CAST(f.desired AS TEXT), f.scored_at"
    " FROM record_fits f JOIN record_snapshots s ON s.id = f.snapshot_id"
    " WHERE f.write_status = ? AND f.snapshot_id > ? AND s.id > ?"
    " AND s.connection_id = ? AND s.object_type = ?"
    " ORDER BY f.snapshot_id LIMIT ?"
)
#: The records the CRM took (``snapshot_id`` among ``?``): they now hold their desired values. The
#: database copies ``desired`` into ``written`` itself: the stored JSON text as it is (what the write
#: sent: only the sync that holds the connection's lock scores, so ``desired`` cannot change meanwhile),
#: instead of decoding and encoding it again for every record, in one statement instead of one per row.
UPDATE_WRITTEN = (
    "UPDATE record_fits SET written = desired, written_at = ?, write_status = ?, write_error = NULL"
    " WHERE snapshot_id {among}"
)
#: Ids per ``UPDATE_WRITTEN`` (well under SQLite's 32,766 parameters).
IDS_PER_UPDATE = 5000
#: A record the CRM refused: its error, one more attempt (retried first next run).
UPDATE_FAILED = Update(
    "record_fits",
    "snapshot_id",
    (("write_status", "varchar"), ("write_error", "text")),
    also="write_attempts = write_attempts + 1",
)


def write_batch(
    store: Store,
    object_type: ObjectType,
    connector: Connector,
    rows: _Rows,
    counts: RunCounts,
    now: datetime,
    errors: list[RecordError] | None = None,
) -> None:
    """One write request and its per-record results, committed as soon as the CRM answers."""
    store_results(store, rows, connector.write(object_type, rows.updates), counts, now, object_type, errors)


def store_results(
    store: Store,
    rows: _Rows,
    results: Sequence[WriteResult],
    counts: RunCounts,
    now: datetime,
    object_type: str = "",
    errors: list[RecordError] | None = None,
) -> None:
    """Commit the CRM's answer for ``rows``: written values for the records that landed, the CRM's error
    (and one more attempt) for the rest; the first ``MAX_RECORD_ERRORS`` refusals go into ``errors``."""
    by_id = {r.external_id: r for r in results}
    ok_ids: list[int] = []
    failed_rows: list[tuple[int, str]] = []
    for snapshot_id, update in zip(rows.snapshot_ids, rows.updates, strict=True):
        ext = update.external_id
        res = by_id.get(ext)
        if res is not None and res.ok:
            ok_ids.append(snapshot_id)
        else:
            error = "no result from the CRM" if res is None else f"{res.error_code}: {res.error_message}"
            failed_rows.append((snapshot_id, error[:2000]))
            if errors is not None and len(errors) < MAX_RECORD_ERRORS:
                errors.append(
                    RecordError(
                        object_type,
                        ext,
                        res.field if res is not None else None,
                        res.error_code if res is not None else None,
                        (res.error_message or "") if res is not None else "no result from the CRM",
                    )
                )
    with store.session() as s:
        bulk = Bulk(s)
        c = bulk.codec
        at, ok = c.moment(now), WriteStatus.OK.value
        for start in range(0, len(ok_ids), IDS_PER_UPDATE):
            among, ids = c.in_list(ok_ids[start : start + IDS_PER_UPDATE])
            bulk.run(UPDATE_WRITTEN.format(among=among), [at, ok, *ids])
        bulk.update(UPDATE_FAILED, [(WriteStatus.ERROR.value, error, i) for i, error in failed_rows])
    counts.written += len(ok_ids)
    counts.write_errors += len(failed_rows)
