"""Write-back of owned fields through sObject Collections (``PATCH composite/sobjects``).

Up to 200 records a request with ``allOrNone: false``, so one bad record never blocks the others; the
answer has one SaveResult per record, in request order. Records that failed with
``UNABLE_TO_LOCK_ROW`` (another process holds the row, typically a parent account during a bulk
job) are sent again within the run, a bounded number of times, and otherwise come back
``retryable``. Large write-backs go through a Bulk API 2.0 ingest job instead
(``connectors.salesforce.bulk``), whose per-record results come back as the same ``WriteResult``s.
An update is idempotent, so whole requests are retried on transient failures too.

The requests of one call go out ``client.concurrency`` at a time (each request's records are its own,
and its SaveResults land on exactly those records). When one request fails for good (the daily limit,
5xx after every retry), the requests not yet sent are not sent, those in flight finish, and the error
carries ``partial_results``: the results of every request that was answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

from connectors.base import FitUpdate, WriteResult
from connectors.errors import ConfigError, ConnectorError, PermanentError
from connectors.salesforce.bulk import BulkJobs, BulkUnavailable, csv_cell
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.mapping import parse_datetime
from connectors.values import word_to_bool

log = logging.getLogger("connectors.salesforce")

#: Records per sObject Collections request: Salesforce's limit.
COLLECTION_LIMIT = 200
#: Per-record error codes that a later attempt may not meet again.
RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "UNKNOWN_EXCEPTION", "REQUEST_RUNNING_TOO_LONG"})
_NUMERIC = frozenset({"double", "int", "currency", "percent", "long"})
_TEXT = frozenset({"string", "textarea", "picklist", "multipicklist", "combobox", "url", "email", "phone"})


def salesforce_datetime(value: datetime | date | str) -> str:
    """A date-time as the REST API writes it: ``2026-11-23T02:00:00.000Z`` (naive means UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_field_value(value: Any, meta: Mapping[str, Any] | None) -> Any:
    """A Python value as the field described by ``meta`` (a ``describe`` field) accepts it; text is cut
    to the field's length so a long reason does not fail the record with ``STRING_TOO_LONG``."""
    if value is None:
        return None
    kind = (meta or {}).get("type")
    if kind in _NUMERIC:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float):
            return value
        try:
            number = float(str(value).strip())
        except ValueError:
            return value  # let Salesforce name the problem on the record
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        if isinstance(value, str):
            return word_to_bool(value) is True
        return bool(value)
    if kind == "datetime":
        try:
            return salesforce_datetime(value)
        except (TypeError, ValueError):
            return value
    if kind == "date":
        return value.isoformat()[:10] if isinstance(value, date) else str(value)[:10]
    if isinstance(value, list | tuple):
        value = "\n".join(str(v) for v in value)
    text = str(value) if not isinstance(value, bool) else ("true" if value else "false")
    length = int((meta or {}).get("length") or 0)
    if kind in _TEXT and length and len(text) > length:
        text = text[: length - 1] + "…"
    return text


def _chunks(records: Sequence[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Groups of at most 200 with no id twice in one group (Salesforce refuses duplicate ids)."""
    out: list[list[tuple[int, dict[str, Any]]]] = []
    current: list[tuple[int, dict[str, Any]]] = []
    ids: set[str] = set()
    for item in records:
        record_id = item[1]["id"]
        if len(current) >= COLLECTION_LIMIT or record_id in ids:
            out.append(current)
            current, ids = [], set()
        current.append(item)
        ids.add(record_id)
    if current:
        out.append(current)
    return out


def _error(save_result: Mapping[str, Any]) -> tuple[str, str]:
    errors = save_result.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN")
    message = str(first.get("message") or "")
    fields = first.get("fields") or []
    if fields:
        message += f" (fields: {', '.join(map(str, fields))})"
    if len(errors) > 1:
        message += f" (+{len(errors) - 1} more errors)"
    return code, message


def _field(save_result: Mapping[str, Any]) -> str | None:
    """The first field Salesforce names in a record's first error (None: it names none)."""
    errors = save_result.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    fields = first.get("fields") or []
    return str(fields[0]) if fields else None


def _csv_rows(
    updates: Sequence[FitUpdate],
    owned: Mapping[str, str],
    field_meta: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
) -> Iterator[tuple[str, list[str]]]:
    """Each update as ``(Id, cells)`` of a Bulk API upload with ``columns`` after ``Id``: a field the
    update does not carry is an empty cell (left alone), a null one ``#N/A`` (cleared)."""
    at = {name: columns.index(api) for name, api in owned.items() if api in columns}
    for update in updates:
        cells = [""] * len(columns)
        for name, value in update.fields.items():
            api = owned[name]
            cells[at[name]] = csv_cell(to_field_value(value, field_meta.get(api.lower())))
        yield update.external_id, cells


def _save_result(external_id: str, save: Mapping[str, Any]) -> WriteResult:
    """One SaveResult of sObject Collections as a ``WriteResult``."""
    if save.get("success"):
        return WriteResult(external_id, True)
    code, message = _error(save)
    retryable = code in RETRYABLE_CODES
    return WriteResult(external_id, False, code, message, retryable=retryable, field=_field(save))


def write_updates(
    client: SalesforceClient,
    sobject: str,
    updates: Sequence[FitUpdate],
    *,
    owned: Mapping[str, str],
    field_meta: Mapping[str, Mapping[str, Any]],
    lock_retries: int,
    lock_wait: float,
    sleep: Callable[[float], None],
    bulk: BulkJobs | None = None,
    bulk_threshold: int = 0,
) -> list[WriteResult]:
    """Write ``updates`` (canonical owned names -> values) to ``sobject``; one result per update.
    More than ``bulk_threshold`` of them go through a Bulk API ingest job when ``bulk`` is given (the
    records it reports locked are sent again through REST, as REST's own locked records are)."""
    for name in {name for update in updates for name in update.fields}:
        if name not in owned:
            raise ConfigError(f"{name!r} is not an owned field; only {', '.join(owned)} are written")

    def body(update: FitUpdate) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": {"type": sobject}, "id": update.external_id}
        for name, value in update.fields.items():
            out[owned[name]] = to_field_value(value, field_meta.get(owned[name].lower()))
        return out

    results: list[WriteResult | None] = [None] * len(updates)
    pending: list[int] = list(range(len(updates)))
    if bulk is not None and len(updates) > bulk_threshold:
        try:
            # The job's CSV is built from the updates directly: no REST body per record is held.
            columns = sorted({owned[name] for update in updates for name in update.fields})
            rows = _csv_rows(updates, owned, field_meta, columns)
            by_id = bulk.update(sobject, columns, rows, count=len(updates))
        except BulkUnavailable as exc:
            log.warning("Salesforce %s write-back stays on REST: %s", sobject, exc)
        else:
            for index, update in enumerate(updates):
                results[index] = by_id.get(update.external_id) or WriteResult(
                    update.external_id, False, "NO_ANSWER", "the bulk job reported nothing", retryable=True
                )
            pending = [
                i for i, r in enumerate(results) if r is not None and r.error_code == "UNABLE_TO_LOCK_ROW"
            ]
            if not pending or not lock_retries:
                return [r for r in results if r is not None]
            sleep(lock_wait)
    records = [(index, body(updates[index])) for index in pending]
    _rest_rounds(client, sobject, updates, records, results, lock_retries=lock_retries, lock_wait=lock_wait,
                 sleep=sleep)  # fmt: skip
    return [r for r in results if r is not None]


def _rest_rounds(
    client: SalesforceClient,
    sobject: str,
    updates: Sequence[FitUpdate],
    pending: list[tuple[int, dict[str, Any]]],
    results: list[WriteResult | None],
    *,
    lock_retries: int,
    lock_wait: float,
    sleep: Callable[[float], None],
) -> None:
    """sObject Collections requests for ``pending``, then again for the records found locked."""
    for round_number in range(lock_retries + 1):
        if round_number:
            log.info(
                "retrying %d %s records locked by another process (round %d)",
                len(pending),
                sobject,
                round_number,
            )
            sleep(lock_wait * round_number)
        locked: list[tuple[int, dict[str, Any]]] = []
        for chunk, answer in _send_chunks(client, _chunks(pending), results):
            for (index, body), save in zip(chunk, answer, strict=True):
                result = results[index] = _save_result(updates[index].external_id, save)
                if result.error_code == "UNABLE_TO_LOCK_ROW" and round_number < lock_retries:
                    locked.append((index, body))
        if not locked:
            break
        pending = locked


Chunk = list[tuple[int, dict[str, Any]]]


def _send_one(client: SalesforceClient, chunk: Chunk) -> list[Any]:
    payload = {"allOrNone": False, "records": [body for _, body in chunk]}
    answer = client.rest("write", "composite/sobjects", method="PATCH", json=payload) or []
    if not isinstance(answer, list) or len(answer) != len(chunk):
        raise PermanentError(
            f"Salesforce composite/sobjects answered {len(answer)} results for {len(chunk)} records"
        )
    return answer


def _send_chunks(
    client: SalesforceClient, chunks: list[Chunk], results: list[WriteResult | None]
) -> list[tuple[Chunk, list[Any]]]:
    """Each chunk with its SaveResults, in chunk order; ``client.concurrency`` requests in flight. On a
    failure the chunks not yet sent stay unsent, those in flight finish, and the error is raised with
    ``partial_results``: ``results`` so far plus every answered chunk's successes."""
    workers = min(len(chunks), client.concurrency)
    if workers <= 1:
        answered: list[tuple[Chunk, list[Any]]] = []
        for chunk in chunks:
            try:
                answered.append((chunk, _send_one(client, chunk)))
            except ConnectorError as exc:
                _raise_partial(exc, results, answered)
        return answered
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="salesforce-write") as pool:
        futures: list[Future[list[Any]]] = [pool.submit(_send_one, client, chunk) for chunk in chunks]
        for future in futures:
            try:
                future.result()
            except CancelledError:
                continue
            except BaseException as exc:  # noqa: BLE001 - the first failure is raised below
                if failure is None:
                    failure = exc
                    for other in futures:
                        other.cancel()  # those not started yet; the ones in flight finish
    if failure is not None and not isinstance(failure, ConnectorError):
        raise failure
    answered = [
        (chunk, future.result())
        for chunk, future in zip(chunks, futures, strict=True)
        if not future.cancelled() and future.exception() is None
    ]
    if isinstance(failure, ConnectorError):
        _raise_partial(failure, results, answered)
    return answered


def _raise_partial(
    exc: ConnectorError, results: list[WriteResult | None], answered: list[tuple[Chunk, list[Any]]]
) -> None:
    """Raise ``exc`` carrying the results known so far: earlier rounds' and every answered chunk's."""
    done: dict[int, WriteResult] = {i: r for i, r in enumerate(results) if r is not None}
    for chunk, answer in answered:
        for (index, body), save in zip(chunk, answer, strict=True):
            done[index] = _save_result(str(body["id"]), save)
    exc.partial_results = [done[i] for i in sorted(done)]  # type: ignore[attr-defined]
    raise exc
