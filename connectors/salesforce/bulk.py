"""Bulk API 2.0 for large pulls and write-backs: a handful of calls where REST needs hundreds.

* Query job (``POST jobs/query``, CSV, comma-delimited, LF): polled with exponential back-off until
  ``JobComplete``, then its results are read ``bulk_max_records`` at a time, each set naming the next
  in ``Sforce-Locator`` (``null`` after the last). Bulk queries take no ``ORDER BY`` (Salesforce: it
  disables chunking), so the rows come in no useful order: the pull gives every page but the last a
  ``None`` cursor and the last the newest stamp seen (as a full HubSpot pull does).
* Ingest job (``POST jobs/ingest``, ``update`` by ``Id``): the owned fields as one CSV upload (``PUT
  .../batches``; an empty cell leaves a field alone, ``#N/A`` clears it), ``PATCH`` ``UploadComplete``,
  polled like a query. When every record was processed and none failed, every update landed and no
  result file is read; otherwise ``failedResults`` (``sf__Id``, ``sf__Error`` = ``CODE:message:fields``)
  and, for a job that ended ``Failed`` or ``Aborted``, ``successfulResults`` and ``unprocessedrecords``
  give each record its result, as REST's SaveResults would (an unprocessed record is retryable).
* A job that does not finish within ``bulk_timeout_seconds`` is aborted. A query job that fails,
  is aborted or times out, and an org whose daily Bulk API allocation (``DailyBulkV2QueryJobs``,
  ``DailyBulkApiBatches`` in ``limits``) is used up, make the caller fall back to REST
  (``BulkUnavailable``); an ingest job that fails reports what it did and did not do.

Calls of a query job count as ``read``, those of an ingest job as ``write``.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from connectors.base import WriteResult
from connectors.errors import ConnectorError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.options import SalesforceOptions

log = logging.getLogger("connectors.salesforce")

#: Records per ingest batch Salesforce counts against the daily batch allocation.
RECORDS_PER_BATCH = 10_000
#: Raw upload size kept under the 100 MB a job takes (base64 makes it 150 MB on the wire).
MAX_UPLOAD_BYTES = 90 * 1024 * 1024
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
_NUMERIC = frozenset({"double", "currency", "percent"})


class BulkUnavailable(Exception):
    """Bulk API cannot serve this request (allocation used, job failed): use REST instead."""


@dataclass(frozen=True, slots=True)
class Allocation:
    query_jobs: int | None
    batches: int | None


def parse_csv(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a Bulk API CSV body (comma, LF; quoted cells may hold line breaks)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    return header, [row for row in reader if row]


def read_csv(data: bytes) -> tuple[list[str], Iterator[list[str]]]:
    """Header and lazily read rows of a Bulk API CSV body, decoded as they are read (a result set of
    50,000 rows is never held as cells, nor as one wide string)."""
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
    header = next(reader, [])
    return header, (row for row in reader if row)


def typed_row(header: Sequence[str], row: Sequence[str], types: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row as the REST API's JSON would give it: null for an empty cell, booleans and numbers."""
    out: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=False):
        kind = types.get(name.lower(), "string")
        if cell == "":
            out[name] = None
        elif kind == "boolean":
            out[name] = cell.lower() == "true"
        elif kind == "int":
            out[name] = int(float(cell))
        elif kind in _NUMERIC:
            out[name] = float(cell)  # the REST API's JSON numbers of these types are doubles
        else:
            out[name] = cell
    return out


def csv_cell(value: Any) -> str:
    """An owned-field value (already as REST would send it) as a Bulk API cell: ``#N/A`` clears."""
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Encoded:
    """A file for ``csv.writer`` that keeps what is written as UTF-8 pieces (never a wide str)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self.parts.append(data)
        self.size += len(data)
        return len(text)


def csv_uploads(
    header: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], limit: int = MAX_UPLOAD_BYTES
) -> Iterator[tuple[list[str], bytes]]:
    """``(ids, CSV)`` uploads of ``rows`` (comma, LF, header first), each at most about ``limit`` bytes."""
    out: _Encoded | None = None
    ids: list[str] = []
    writer: Any = None
    for record_id, cells in rows:
        if out is None:
            out, ids = _Encoded(), []
            writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(header)
        writer.writerow([record_id, *cells])
        ids.append(record_id)
        if out.size >= limit:
            yield ids, b"".join(out.parts)
            out = None
    if out is not None:
        yield ids, b"".join(out.parts)


def _error_parts(text: str) -> tuple[str, str]:
    """``UNABLE_TO_LOCK_ROW:unable to obtain exclusive access:--`` -> (code, message)."""
    code, _, rest = text.partition(":")
    message, _, fields = rest.rpartition(":")
    if not message:
        message, fields = rest, ""
    if fields and fields != "--":
        message += f" (fields: {fields.replace(';', ', ')})"
    return code.strip() or "UNKNOWN", message.strip()


class BulkJobs:
    """Bulk API 2.0 jobs of one connection."""

    def __init__(
        self,
        client: SalesforceClient,
        options: SalesforceOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.options = options
        self.clock = clock
        self._allocation: Allocation | None = None
        #: Jobs of several threads (parallel pulls, write-ahead) share the allocation and the counts.
        self._lock = threading.Lock()
        #: Jobs created, by kind (for tests and the benchmark).
        self.jobs = {"query": 0, "ingest": 0}

    # -- plumbing -------------------------------------------------------------------------------------

    def _send(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> requests.Response:
        headers = {"Content-Type": "text/csv", "Accept": "application/json"} if data is not None else None
        return self.client.raw(
            kind, method, path, json=json, data=data, params=params, headers=headers, retry=retry
        )

    def allocation(self) -> Allocation:
        """What is left of the day's Bulk API allocation (one ``limits`` call per connector)."""
        with self._lock:
            if self._allocation is None:
                limits = self.client.rest("other", "limits") or {}

                def remaining(name: str) -> int | None:
                    value = (limits.get(name) or {}).get("Remaining")
                    return None if value is None else int(value)

                self._allocation = Allocation(
                    remaining("DailyBulkV2QueryJobs"), remaining("DailyBulkApiBatches")
                )
            return self._allocation

    def _create(self, kind: str, job: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self._send(kind, "POST", f"jobs/{job}", json=body, retry=False).json()
        except ConnectorError as exc:
            if exc.status in (400, 403) and exc.code in ("LIMIT_EXCEEDED", "REQUEST_LIMIT_EXCEEDED"):
                raise BulkUnavailable(exc.message) from None
            raise
        with self._lock:
            self.jobs[job] += 1
        return info

    def _wait(self, kind: str, job: str, job_id: str) -> dict[str, Any]:
        """Poll the job with exponential back-off until it ends; abort it on timeout."""
        deadline = self.clock() + self.options.bulk_timeout_seconds
        delay = self.options.bulk_poll_initial
        while True:
            info: dict[str, Any] = self._send(kind, "GET", f"jobs/{job}/{job_id}").json()
            if info.get("state") in FINAL_STATES:
                return info
            if self.clock() + delay > deadline:
                log.warning("Salesforce bulk %s job %s still %s: aborting it", job, job_id, info.get("state"))
                aborted: dict[str, Any] = self._send(
                    kind, "PATCH", f"jobs/{job}/{job_id}", json={"state": "Aborted"}
                ).json()
                aborted["timedOut"] = True
                return aborted
            self.client.sleep(delay)
            delay = min(delay * 2, self.options.bulk_poll_max)

    # -- query ----------------------------------------------------------------------------------------

    def query(
        self, soql: str, types: Mapping[str, str], *, all_rows: bool = False
    ) -> Iterator[Iterator[dict[str, Any]]]:
        """Result sets of a query job, each an iterator of REST-like rows (read it before asking for
        the next set). ``BulkUnavailable`` before the first set when the job cannot run or does not
        complete (nothing has been handed out then)."""
        if self.allocation().query_jobs == 0:
            raise BulkUnavailable("the daily allocation of Bulk API 2.0 query jobs is used up")
        body = {"operation": "queryAll" if all_rows else "query", "query": soql, "contentType": "CSV",
                "columnDelimiter": "COMMA", "lineEnding": "LF"}  # fmt: skip
        job_id = str(self._create("read", "query", body)["id"])
        info = self._wait("read", "query", job_id)
        if info.get("state") != "JobComplete":
            reason = (
                "timed out" if info.get("timedOut") else str(info.get("errorMessage") or info.get("state"))
            )
            raise BulkUnavailable(f"bulk query job {job_id} did not complete: {reason}")
        locator: str | None = None
        while True:
            params = {"maxRecords": str(self.options.bulk_max_records)}
            if locator:
                params["locator"] = locator
            response = self._send("read", "GET", f"jobs/query/{job_id}/results", params=params)
            locator = response.headers.get("Sforce-Locator")
            header, rows = read_csv(response.content)
            del response
            yield (typed_row(header, row, types) for row in rows)
            if not locator or locator == "null":
                return

    # -- ingest ---------------------------------------------------------------------------------------

    def update(
        self, sobject: str, columns: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], *, count: int
    ) -> dict[str, WriteResult]:
        """Update records through ingest jobs: ``rows`` are ``(Id, cells)`` with one cell per column of
        ``columns`` (``""`` leaves a field alone, ``#N/A`` clears it), ``count`` of them; results by id.
        ``BulkUnavailable`` when the allocation is used up (nothing was sent). The CSV is written as the
        rows come, one job per ``MAX_UPLOAD_BYTES``: only the encoded upload is held, no row copies."""
        allocation = self.allocation()
        needed = -(-count // RECORDS_PER_BATCH)
        if allocation.batches is not None and allocation.batches < needed:
            raise BulkUnavailable("the daily allocation of Bulk API batches is used up")
        results: dict[str, WriteResult] = {}
        for ids, data in csv_uploads(["Id", *columns], rows):
            results.update(self._ingest(sobject, ids, data))
        return results

    def _ingest(self, sobject: str, ids: list[str], data: bytes) -> dict[str, WriteResult]:
        body = {"object": sobject, "operation": "update", "contentType": "CSV", "columnDelimiter": "COMMA",
                "lineEnding": "LF"}  # fmt: skip
        job_id = str(self._create("write", "ingest", body)["id"])
        self._send("write", "PUT", f"jobs/ingest/{job_id}/batches", data=data)
        self._send("write", "PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
        info = self._wait("write", "ingest", job_id)
        processed = int(info.get("numberRecordsProcessed") or 0)
        failed = int(info.get("numberRecordsFailed") or 0)
        if info.get("state") == "JobComplete" and processed == len(ids) and failed == 0:
            return {record_id: WriteResult(record_id, True) for record_id in ids}
        results = self._failed(job_id) if failed or info.get("state") != "JobComplete" else {}
        if info.get("state") == "JobComplete" and processed == len(ids):
            for record_id in ids:
                results.setdefault(record_id, WriteResult(record_id, True))
            return results
        # Failed or aborted part-way: ask for each record's fate.
        for record_id in self._ids_of(job_id, "successfulResults", "sf__Id"):
            results[record_id] = WriteResult(record_id, True)
        reason = str(info.get("errorMessage") or info.get("state") or "unknown")
        for record_id in self._ids_of(job_id, "unprocessedrecords", "Id"):
            results.setdefault(
                record_id, WriteResult(record_id, False, "UNPROCESSED", f"bulk job {reason}", retryable=True)
            )
        for record_id in ids:
            results.setdefault(
                record_id, WriteResult(record_id, False, "NO_ANSWER", f"bulk job {reason}", retryable=True)
            )
        log.warning("Salesforce bulk ingest job %s ended %s: %s", job_id, info.get("state"), reason)
        return results

    def _failed(self, job_id: str) -> dict[str, WriteResult]:
        from connectors.salesforce.write import RETRYABLE_CODES

        response = self._send("write", "GET", f"jobs/ingest/{job_id}/failedResults/")
        header, rows = parse_csv(response.content.decode("utf-8"))
        at_id, at_error = header.index("sf__Id"), header.index("sf__Error")
        out: dict[str, WriteResult] = {}
        for row in rows:
            code, message = _error_parts(row[at_error])
            out[row[at_id]] = WriteResult(row[at_id], False, code, message, retryable=code in RETRYABLE_CODES)
        return out

    def _ids_of(self, job_id: str, which: str, column: str) -> list[str]:
        response = self._send("write", "GET", f"jobs/ingest/{job_id}/{which}/")
        header, rows = parse_csv(response.content.decode("utf-8"))
        if column not in header:
            return []
        at = header.index(column)
        return [row[at] for row in rows if len(row) > at]
