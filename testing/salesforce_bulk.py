"""Bulk API 2.0 for the fake Salesforce (``testing.salesforce``), written from Salesforce's Bulk API 2.0
developer guide:

* query jobs: ``POST /services/data/vXX.X/jobs/query`` (``operation`` ``query``/``queryAll``, ``query``,
  ``contentType`` CSV, ``columnDelimiter`` BACKQUOTE|CARET|COMMA|PIPE|SEMICOLON|TAB, ``lineEnding``
  LF|CRLF); ``GET .../jobs/query/{id}`` (job info: ``id``, ``operation``, ``object``, ``state``
  UploadComplete -> InProgress -> JobComplete | Failed | Aborted, ``numberRecordsProcessed``,
  ``errorMessage``...); ``GET .../jobs/query/{id}/results?locator=&maxRecords=`` (CSV, header row
  first, ``Sforce-Locator`` naming the next set or ``null``, ``Sforce-NumberOfRecords``; a job that is
  not complete answers 400); ``PATCH`` ``{"state": "Aborted"}``. GROUP BY, OFFSET, TYPEOF, ORDER BY,
  LIMIT and aggregates are refused (the guide says they are not supported or disable chunking), and
  rows come in Id order, not in any order the query asked for.
* ingest jobs: ``POST .../jobs/ingest`` (``object``, ``operation`` update, ``externalIdFieldName``...),
  job state Open; ``PUT .../jobs/ingest/{id}/batches`` (``text/csv``, 201, at most 100 MB raw data);
  ``PATCH`` ``{"state": "UploadComplete"}`` (400 ``INVALIDJOB`` after more than one upload: a job takes
  its data in one ``PUT``) or ``Aborted``; processing is the REST save path, so a
  record fails (lock, deleted, invalid value) exactly as it would through sObject Collections;
  ``GET .../successfulResults/`` (``sf__Id``, ``sf__Created``, then the uploaded columns),
  ``.../failedResults/`` (``sf__Id``, ``sf__Error`` as ``CODE:message:fields``), and
  ``.../unprocessedrecords/`` (the uploaded columns). An empty cell leaves a field as it is and
  ``#N/A`` sets it to null; data whose line endings do not match ``lineEnding`` fails the job, as
  Salesforce does ("LineEnding is invalid on user data").
* limits: ``DailyBulkV2QueryJobs`` and ``DailyBulkApiBatches`` (one batch per 10,000 ingested records)
  in ``GET .../limits``; creating a job past its allocation is a 400 ``LIMIT_EXCEEDED``.

Jobs finish after ``bulk_polls`` job-info requests report ``InProgress``; ``fail_next_bulk_job(message)``
makes the next job end ``Failed`` (an ingest job after processing half of its records).
"""

from __future__ import annotations

import csv
import io
import itertools
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testing.salesforce import FakeSalesforce, Response

DELIMITERS = {"BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "TAB": "\t"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
#: Records per ingest "batch" counted against the daily batch allocation.
RECORDS_PER_BATCH = 10_000
MAX_UPLOAD = 100 * 1024 * 1024
DEFAULT_MAX_RECORDS = 50_000
_UNSUPPORTED = ("GROUP BY", "OFFSET", "TYPEOF", "ORDER BY", "LIMIT", "COUNT(")


@dataclass
class Job:
    id: str
    kind: str  # "query" | "ingest"
    info: dict[str, Any]
    delimiter: str
    line_ending: str
    columns: list[str] = field(default_factory=list)
    #: A query job's results as CSV rows (no header) and where each row starts: kept as bytes, as the
    #: org keeps result files, so 100,000-row jobs stay small.
    data: bytes = b""
    offsets: array = field(default_factory=lambda: array("Q"))
    uploads: list[bytes] = field(default_factory=list)
    polls_left: int = 0
    fail: str | None = None
    #: An ingest job's outcome by uploaded row: the first ``processed`` rows were processed, those in
    #: ``failed`` with that ``sf__Error``; the rows after ``processed`` are unprocessed.
    processed: int = 0
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.offsets) - 1 if self.offsets else 0


class BulkApi:
    """The Bulk API 2.0 state of one fake org."""

    def __init__(self, fake: FakeSalesforce) -> None:
        self.fake = fake
        self.jobs: dict[str, Job] = {}
        self._seq = itertools.count(1)
        #: Job-info requests that report InProgress before a job completes.
        self.polls = 1
        self.query_jobs_limit, self.query_jobs_used = 10_000, 0
        self.batches_limit, self.batches_used = 15_000, 0
        self._fail_next: str | None = None

    def fail_next_job(self, message: str = "InternalServerError : retried more than 15 times") -> None:
        self._fail_next = message

    def limits(self) -> dict[str, Any]:
        return {
            "DailyBulkV2QueryJobs": {
                "Max": self.query_jobs_limit,
                "Remaining": max(0, self.query_jobs_limit - self.query_jobs_used),
            },
            "DailyBulkApiBatches": {
                "Max": self.batches_limit,
                "Remaining": max(0, self.batches_limit - self.batches_used),
            },
        }

    # -- routing --------------------------------------------------------------------------------------

    def route(self, method: str, version: str, rest: str, params: Mapping[str, str], body: bytes) -> Response:
        from testing.salesforce import _error

        parts = [p for p in rest.split("/") if p]  # ["jobs", "query"|"ingest", id?, sub?]
        kind = parts[1] if len(parts) > 1 else ""
        if kind not in ("query", "ingest"):
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 2 and method == "POST":
            return self._create(kind, version, body)
        job = self.jobs.get(parts[2]) if len(parts) > 2 else None
        if job is None or job.kind != kind:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")
        if len(parts) == 3 and method == "GET":
            return self._info(job)
        if len(parts) == 3 and method == "PATCH":
            return self._set_state(job, body)
        sub = parts[3] if len(parts) > 3 else ""
        if kind == "query" and sub == "results" and method == "GET":
            return self._results(job, params)
        if kind == "ingest" and sub == "batches" and method == "PUT":
            return self._upload(job, body)
        if kind == "ingest" and method == "GET" and sub in ("successfulResults", "failedResults"):
            return self._ingest_results(job, sub)
        if kind == "ingest" and method == "GET" and sub == "unprocessedrecords":
            return self._ingest_results(job, sub)
        return _error(404, "NOT_FOUND", "The requested resource does not exist")

    # -- jobs -----------------------------------------------------------------------------------------

    def _create(self, kind: str, version: str, body: bytes) -> Response:
        import json

        from testing.salesforce import _error, _salesforce_id

        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON value")
        delimiter = str(payload.get("columnDelimiter") or "COMMA")
        line_ending = str(payload.get("lineEnding") or "LF")
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            return _error(400, "INVALIDJOB", "InvalidJob : columnDelimiter or lineEnding is not valid")
        if str(payload.get("contentType") or "CSV") != "CSV":
            return _error(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        job_id = _salesforce_id("750", next(self._seq))
        stamp = self.fake.stamp()
        info: dict[str, Any] = {
            "id": job_id,
            "createdById": self.fake.user_id,
            "createdDate": stamp,
            "systemModstamp": stamp,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version),
            "lineEnding": line_ending,
            "columnDelimiter": delimiter,
        }
        job = Job(job_id, kind, info, DELIMITERS[delimiter], LINE_ENDINGS[line_ending])
        job.fail, self._fail_next = self._fail_next, None
        if kind == "query":
            if self.query_jobs_used >= self.query_jobs_limit:
                return _error(400, "LIMIT_EXCEEDED", "Max number of Bulk API 2.0 query jobs per day reached")
            problem = self._plan_query(job, payload)
            if problem is not None:
                return problem
            self.query_jobs_used += 1
        else:
            if self.batches_used >= self.batches_limit:
                return _error(400, "LIMIT_EXCEEDED", "Exceeded max number of batches allowed in 24 hours")
            operation = str(payload.get("operation") or "")
            if operation not in ("insert", "update", "upsert", "delete", "hardDelete"):
                return _error(400, "INVALIDJOB", f"InvalidJob : Invalid operation {operation!r}")
            try:
                table = self.fake.table(str(payload.get("object") or ""))
            except KeyError:
                return _error(400, "INVALIDJOB", f"InvalidJob : Unknown object {payload.get('object')!r}")
            info.update(
                operation=operation,
                object=table.name,
                state="Open",
                contentUrl=f"services/data/v{version}/jobs/ingest/{job_id}/batches",
                numberRecordsProcessed=0,
                numberRecordsFailed=0,
            )
        self.jobs[job_id] = job
        from testing.salesforce import Response

        return Response(200, dict(info))

    def _plan_query(self, job: Job, payload: Mapping[str, Any]) -> Response | None:
        from testing.salesforce import SoqlError, _error, parse_soql

        soql = str(payload.get("query") or "")
        operation = str(payload.get("operation") or "query")
        if operation not in ("query", "queryAll"):
            return _error(400, "INVALIDJOB", f"InvalidJob : Invalid operation {operation!r}")
        upper = " ".join(soql.upper().split())
        unsupported = next((w for w in _UNSUPPORTED if w in upper), None)
        if unsupported:
            return _error(400, "INVALIDJOB", f"InvalidJob : {unsupported.strip('(')} is not supported")
        try:
            q = parse_soql(soql)
            table = self.fake.table(q.sobject)
            rows = self.fake._execute(q, table, operation == "queryAll")
        except KeyError:
            return _error(400, "INVALIDJOB", "InvalidJob : sObject type is not supported")
        except SoqlError as exc:
            return _error(400, exc.code, exc.message)
        names = [table.fields[f.lower()].name for f in q.fields]
        types = [table.fields[f.lower()].type for f in q.fields]
        cols = [table.col[f.lower()] for f in q.fields]
        job.columns = names
        out = io.BytesIO()
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        writer = csv.writer(
            text, delimiter=job.delimiter, lineterminator=job.line_ending, quoting=csv.QUOTE_ALL
        )
        job.offsets.append(0)
        for row in sorted(rows, key=lambda r: r[0]):  # chunked by primary key: Id order
            writer.writerow(
                [_cell(row[i] if i < len(row) else None, t) for i, t in zip(cols, types, strict=True)]
            )
            job.offsets.append(out.tell())
        job.data = out.getvalue()
        job.info.update(operation=operation, object=table.name, state="UploadComplete")
        job.polls_left = self.polls
        return None

    def _info(self, job: Job) -> Response:
        from testing.salesforce import Response

        info = job.info
        if info["state"] in ("UploadComplete", "InProgress"):
            if job.polls_left > 0:
                job.polls_left -= 1
                info["state"] = "InProgress"
            elif job.kind == "query":
                self._finish_query(job)
            else:
                self._process(job)
        return Response(200, dict(info))

    def _finish_query(self, job: Job) -> None:
        if job.fail:
            job.info.update(state="Failed", errorMessage=job.fail)
            return
        job.info.update(state="JobComplete", numberRecordsProcessed=job.size, retries=0)

    def _set_state(self, job: Job, body: bytes) -> Response:
        import json

        from testing.salesforce import Response, _error

        wanted = str((json.loads(body or b"{}") or {}).get("state") or "")
        state = job.info["state"]
        if wanted == "Aborted" and state not in ("JobComplete", "Failed", "Aborted"):
            job.info["state"] = "Aborted"  # an ingest job's uploaded rows stay unprocessed
            return Response(200, dict(job.info))
        if job.kind == "ingest" and wanted == "UploadComplete" and state == "Open" and len(job.uploads) > 1:
            # Bulk API 2.0 takes one upload per job (it splits the data into batches itself).
            return _error(
                400,
                "INVALIDJOB",
                f"Found multiple contents for job: <{job.id}>, please 'Close' / 'Abort' / 'Delete' the "
                "current Job then create a new Job and make sure you only do 'PUT' once on a given Job.",
            )
        if job.kind == "ingest" and wanted == "UploadComplete" and state == "Open":
            job.info["state"] = "UploadComplete"
            job.polls_left = self.polls
            return Response(200, dict(job.info))
        return _error(400, "INVALIDJOBSTATE", f"InvalidJobState : Job state {state} cannot become {wanted}")

    # -- query results --------------------------------------------------------------------------------

    def _results(self, job: Job, params: Mapping[str, str]) -> Response:
        from testing.salesforce import Response, _error

        if job.info["state"] != "JobComplete":
            return _error(400, "INVALIDJOBSTATE", f"InvalidJobState : job is {job.info['state']}")
        start = int(params.get("locator") or 0) if (params.get("locator") or "0").isdigit() else -1
        if start < 0 or start > job.size:
            return _error(400, "INVALIDLOCATOR", "InvalidLocator : the locator is not valid")
        size = int(params.get("maxRecords") or DEFAULT_MAX_RECORDS)
        nxt = min(job.size, start + max(1, size))
        headers = {
            "Content-Type": "text/csv",
            "Sforce-NumberOfRecords": str(nxt - start),
            "Sforce-Locator": str(nxt) if nxt < job.size else "null",
        }
        body = _csv(job, job.columns, []) + job.data[job.offsets[start] : job.offsets[nxt]]
        return Response(200, raw=body, headers=headers)

    # -- ingest ---------------------------------------------------------------------------------------

    def _upload(self, job: Job, body: bytes) -> Response:
        from testing.salesforce import Response, _error

        if job.info["state"] != "Open":
            return _error(400, "INVALIDJOBSTATE", "InvalidJobState : the job is not open for uploads")
        if sum(len(u) for u in job.uploads) + len(body) > MAX_UPLOAD:
            return _error(400, "INVALIDBATCH", "InvalidBatch : job data exceeds the maximum size")
        job.uploads.append(body)
        return Response(201)

    def _parse_uploads(self, job: Job) -> tuple[list[str], list[list[str]], str | None]:
        columns: list[str] = []
        rows: list[list[str]] = []
        for data in job.uploads:
            text = data.decode("utf-8")
            end = text.find("\n")  # the header row's line ending (cells may hold newlines of their own)
            crlf = end > 0 and text[end - 1] == "\r"
            if end >= 0 and crlf != (job.line_ending == "\r\n"):
                setting = "CRLF" if job.line_ending == "\r\n" else "LF"
                message = "ClientInputError : LineEnding is invalid on user data. "
                message += f"Current LineEnding setting is {setting}"
                return [], [], message
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=job.delimiter)
            header = next(reader, [])
            if columns and header != columns:
                return [], [], "ClientInputError : all uploads of a job must have the same columns"
            columns = header
            rows.extend(r for r in reader if r)
        job.columns = columns
        return columns, rows, None

    def _process(self, job: Job) -> None:
        columns, rows, problem = self._parse_uploads(job)
        if problem is not None:
            job.info.update(state="Failed", errorMessage=problem)
            return
        if "Id" not in columns:
            job.info.update(state="Failed", errorMessage="InvalidBatch : Field name not found : Id")
            return
        done = rows
        if job.fail:
            done = rows[: len(rows) // 2]
        table = self.fake.table(job.info["object"])
        records = []
        for row in done:
            record: dict[str, Any] = {"attributes": {"type": table.name}}
            for name, cell in zip(columns, row, strict=False):
                if name == "Id":
                    record["Id"] = cell
                elif cell != "":
                    f = table.fields.get(name.lower())
                    record[name] = None if cell == "#N/A" else _typed(cell, f.type if f else "string")
            records.append(record)
        results = self.fake._save_all("PATCH", records, all_or_none=False) if records else []
        for index, result in enumerate(results):
            if not result.get("success"):
                err = (result.get("errors") or [{}])[0]
                fields = ":".join(err.get("fields") or [])
                job.failed[index] = f"{err.get('statusCode')}:{err.get('message')}:{fields or '--'}"
        job.processed = len(done)
        self.batches_used += max(1, -(-len(rows) // RECORDS_PER_BATCH))
        job.info.update(numberRecordsProcessed=len(done), numberRecordsFailed=len(job.failed))
        if job.fail:
            job.info.update(state="Failed", errorMessage=job.fail)
        else:
            job.info["state"] = "JobComplete"

    def _ingest_results(self, job: Job, which: str) -> Response:
        from testing.salesforce import Response, _error

        if job.info["state"] not in ("JobComplete", "Failed", "Aborted"):
            return _error(400, "INVALIDJOBSTATE", f"InvalidJobState : job is {job.info['state']}")
        columns, rows, _ = self._parse_uploads(job)  # results are rebuilt from the kept upload
        at_id = columns.index("Id") if "Id" in columns else 0
        if which == "successfulResults":
            header = ["sf__Id", "sf__Created", *columns]
            out = [
                [r[at_id], "false", *r] for i, r in enumerate(rows[: job.processed]) if i not in job.failed
            ]
        elif which == "failedResults":
            header = ["sf__Id", "sf__Error", *columns]
            out = [[rows[i][at_id], error, *rows[i]] for i, error in sorted(job.failed.items())]
        else:
            header, out = list(columns), rows[job.processed :]
        return Response(200, raw=_csv(job, header, out), headers={"Content-Type": "text/csv"})


def _csv(job: Job, header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=job.delimiter, lineterminator=job.line_ending, quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _cell(value: Any, kind: str) -> str:
    """A stored value as Bulk API CSV writes it: empty for null, ``true``/``false``, date-times in UTC
    with ``Z``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    if kind == "datetime" and text.endswith("+0000"):
        return text[:-5] + "Z"
    return text


def _typed(cell: str, kind: str) -> Any:
    """A CSV cell as the REST save path takes it."""
    if kind == "boolean":
        return cell.strip().lower() in ("true", "1")
    if kind in ("double", "currency", "percent"):
        try:
            return float(cell)
        except ValueError:
            return cell
    if kind == "int":
        try:
            return int(float(cell))
        except ValueError:
            return cell
    return cell
