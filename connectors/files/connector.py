"""The files connector: CRM exports (CSV) in, re-import files (CSV) out.

For teams that cannot (or do not yet want to) connect the worker to the CRM's API: export accounts,
opportunities and leads as CSV, run the worker, import ``<object>_updates.csv`` (and ``tasks.csv``) back
with the CRM's import tool (Salesforce Data Loader / Data Import Wizard, HubSpot imports).

* ``pull`` streams a file with ``csv.reader`` (never the whole file in memory) in pages of
  ``page_size`` records. With ``since``, only rows whose modification stamp is at or after it are pulled;
  rows without a stamp are always pulled (their age is unknown).
* The cursor: an export is not necessarily sorted by modification stamp (Data Export sorts by Id), so a
  page's "max stamp seen so far" could skip older rows further down the file if a run stopped halfway.
  Every page but the last therefore carries the cursor it started from (``since``: no progress), and the
  last page carries the highest stamp of the whole pull. Re-reading a local file after a failed run is cheap.
* Each sync run writes into its own folder, ``<out>/run-<run id>/`` (``start_run``), so that a CRM import
  of one folder never sees an id twice: ``write`` appends one row per update to ``<object>_updates.csv``
  (a run writes each record once) and ``create_tasks`` appends to ``tasks.csv``, idempotent by task key
  across every run's folder. Used without a run (``start_run`` never called), they write into ``<out>``.
* Every written cell is escaped against formula injection (see ``cells.escape_formula``).
"""

from __future__ import annotations

import csv
import functools
import operator
import os
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import date
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from connectors.base import (
    OBJECT_TYPES,
    OWNED_FIELDS,
    STATUS_KEYS,
    ApiUsage,
    CrmRecord,
    DataProblem,
    FitUpdate,
    FollowUpTask,
    ObjectType,
    Page,
    TaskResult,
    WriteResult,
)
from connectors.errors import ConfigError, PermanentError
from connectors.files.cells import (
    escape_formula,
    normalize_stamp,
    owned_cell,
    owned_cells,
    parse_amount,
    parse_day,
    parse_flag,
)
from connectors.files.config import FilesConfig
from connectors.registry import CRMS

#: Columns of ``tasks.csv``.
TASK_COLUMNS = ("key", "object_type", "record_id", "owner_id", "subject", "description", "due_date")
#: Warnings kept on the connector; later ones are counted in ``warnings_dropped``.
MAX_WARNINGS = 1000

_FLAG_KEYS = frozenset({"is_converted", "is_closed", "is_won", "is_customer"})
_STATUS_KEYS = frozenset(STATUS_KEYS)
_OWNED = frozenset(OWNED_FIELDS)
_NOT_RAW = _STATUS_KEYS | {"id", "name", "owner_id", "last_activity", "modstamp"}


class FilesConnector:
    """A ``connectors.base.Connector`` over CSV exports and re-import files."""

    crm = "files"
    write_batch_size = CRMS["files"].write_batch_size
    #: Writing a batch is our own CPU work (formatting, CSV): the write phase commits the batch before
    #: in a second thread meanwhile (``worker.sync.write``; a crash re-sends at most those two batches,
    #: into the next run's folder).
    commit_behind_writes = True

    def __init__(self, config: FilesConfig) -> None:
        self.config = config
        #: Problems that skipped or blanked data (file and line), for the run record.
        self.warnings: list[str] = []
        self.warnings_dropped = 0
        #: The same problems, structured, until ``take_problems`` hands them over (at most a page's worth).
        self._problems: list[DataProblem] = []
        self._usage = ApiUsage()
        self._task_keys: set[str] | None = None
        #: Where this run's files go: ``<out>/run-<id>`` once ``start_run`` is called.
        self.run_dir: Path = config.out
        self._open_pulls: weakref.WeakSet[Generator[Page, None, None]] = weakref.WeakSet()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FilesConnector:
        """Build from a connection's ``options`` mapping; a bad option raises ``ConfigError``."""
        try:
            return cls(FilesConfig.model_validate(dict(config)))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in err['loc']) or 'options'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"files connector options: {problems}") from None

    def start_run(self, run_id: int) -> None:
        """Write this run's files into ``<out>/run-<run_id>/`` (``connectors.base.RunAware``)."""
        self.run_dir = self.config.out / f"run-{int(run_id)}"

    # ----------------------------------------------------------------------------------------- fields

    def check_fields(self, object_types: Sequence[ObjectType]) -> list[str]:
        """An export and its re-import have no schema to check: always empty."""
        return []

    def install_fields(self, object_types: Sequence[ObjectType]) -> list[str]:
        """Nothing to install: the owned fields must exist in the CRM the files are imported into."""
        return []

    # ----------------------------------------------------------------------------------------- pull

    def pull(self, object_type: ObjectType, since: str | None) -> Iterator[Page]:
        """Pages of records from the export of ``object_type`` (see the module notes on the cursor)."""
        _check_object_type(object_type)
        path = self.config.file_for(object_type)
        if not path.is_file():
            raise ConfigError(f"{object_type} export not found: {path} (set files.{object_type} or path)")
        start = None
        if since:
            start = normalize_stamp(since) or since
        pages = self._pages(object_type, path, start)
        self._open_pulls.add(pages)
        return pages

    def _pages(self, object_type: ObjectType, path: Path, since: str | None) -> Generator[Page, None, None]:
        """Read with ``csv.reader`` and a ``_Plan`` of column positions (a dict per row, as ``DictReader``
        builds, costs more than the rest of reading a row). Rows are as ``DictReader`` reads them: blank
        rows are skipped, missing trailing cells are blank, extra cells are ignored."""
        cfg = self.config
        name = path.name
        try:
            with open(path, newline="", encoding=cfg.encoding) as handle:
                reader = csv.reader(handle, delimiter=cfg.delimiter)
                try:
                    header = next(reader, [])
                except (UnicodeDecodeError, csv.Error) as exc:
                    raise _unreadable(path, 1, exc) from None
                # Repeated ids are found a segment of rows at a time (``_SeenIds``), so the warnings and
                # problems of a segment are held, then told in row order with the repeats in their place.
                seen = _SeenIds()
                ids: list[str] = []  # the segment's records' ids and first lines
                lines: list[int] = []
                held: list[tuple[int, str | DataProblem]] = []  # (index of the next record, warning/problem)

                def hold_warning(message: str) -> None:
                    held.append((len(ids), message))

                def hold_problem(problem: DataProblem) -> None:
                    held.append((len(ids), problem))

                def tell_repeat(i: int) -> None:  # the last row wins, as a re-import would
                    where = f"{name} line {lines[i]}"
                    self._warn(f"{where}: id {ids[i]!r} appears again, this row wins")
                    self._problem(DataProblem("duplicate_id", "id", ids[i], ids[i], where))

                def flush() -> None:
                    repeats = iter(seen.add(ids))
                    upcoming = next(repeats, None)
                    for before, event in held:
                        while upcoming is not None and upcoming < before:
                            tell_repeat(upcoming)
                            upcoming = next(repeats, None)
                        if isinstance(event, str):
                            self._warn(event)
                        else:
                            self._problem(event)
                    while upcoming is not None:
                        tell_repeat(upcoming)
                        upcoming = next(repeats, None)
                    ids.clear()
                    lines.clear()
                    held.clear()

                plan = _Plan(object_type, name, cfg.columns_for(object_type), header, hold_problem)
                width = len(header)
                build = plan.record
                page_size = cfg.page_size
                records: list[CrmRecord] = []
                highest: str | None = None
                line = reader.line_num + 1
                try:
                    while True:
                        try:
                            row = next(reader)
                            while not row:  # a blank line: no row (DictReader skips it too)
                                row = next(reader)
                        except StopIteration:
                            break
                        except (UnicodeDecodeError, csv.Error) as exc:
                            raise _unreadable(path, line, exc) from None
                        first_line, line = line, reader.line_num + 1
                        if len(row) < width:
                            row += [""] * (width - len(row))
                        record = build(row, first_line, hold_warning)
                        if record is None:
                            continue
                        ids.append(record.external_id)
                        lines.append(first_line)
                        stamp = record.modstamp
                        if stamp:
                            if since is not None and stamp < since:
                                if len(ids) >= _SEGMENT:
                                    flush()
                                continue
                            if highest is None or stamp > highest:
                                highest = stamp
                        if len(records) >= page_size:
                            flush()
                            self._usage.count("read")
                            yield Page(records=records, cursor=since)
                            records = []
                        elif len(ids) >= _SEGMENT:
                            flush()
                        records.append(record)
                finally:  # also when a row cannot be read: what came before it is told, as it was found
                    flush()
                if records:
                    self._usage.count("read")
                    yield Page(records=records, cursor=highest or since)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None

    def take_problems(self) -> list[DataProblem]:
        """The data problems found since the last call (empty ids, unreadable stamps and values,
        repeated ids), oldest first."""
        problems, self._problems = self._problems, []
        return problems

    def _problem(self, problem: DataProblem) -> None:
        """Keep a problem for the next ``take_problems`` (looked up each time: ``take_problems`` hands the
        list over and starts a new one, so a reference to the old list's ``append`` would add to a list
        already handed over, and the problem would be lost)."""
        self._problems.append(problem)

    def _warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        else:
            self.warnings_dropped += 1

    # ----------------------------------------------------------------------------------------- write

    def write(self, object_type: ObjectType, updates: Sequence[FitUpdate]) -> list[WriteResult]:
        """Append one row per valid update to ``<out>/<object_type>_updates.csv``; one result per update."""
        _check_object_type(object_type)
        if not updates:
            return []
        cfg = self.config
        header = [cfg.id_column, *(cfg.field_names[name] for name in OWNED_FIELDS)]
        ids = [(update.external_id or "").strip() for update in updates]
        fields = [update.fields for update in updates]
        rows: Sequence[Sequence[str]]
        if all(ids) and all(map(_OWNED.issuperset, fields)):
            # Every update is valid (the sync's own batches): the cells are formatted a column at a time.
            # An owned field an update leaves out is an empty cell, as ``owned_cell("")`` writes it.
            columns = [owned_cells(ids)]
            columns += [
                owned_cells(list(map(dict.get, fields, repeat(name), repeat(""))), cfg.null_value)
                for name in OWNED_FIELDS
            ]
            rows = list(zip(*columns, strict=True))
            results = [WriteResult(external_id, True) for external_id in ids]
        else:
            rows, results = self._rows(updates)
        if rows:
            self._append(self.run_dir / f"{object_type}_updates.csv", header, rows)
        self._usage.count("write")
        return results

    def _rows(self, updates: Sequence[FitUpdate]) -> tuple[list[list[str]], list[WriteResult]]:
        """The rows of a write's valid updates, one by one, and a result per update (a refusal for an
        update without a record id or with a field that is not owned)."""
        null = self.config.null_value
        results: list[WriteResult] = []
        rows: list[list[str]] = []
        for update in updates:
            external_id = (update.external_id or "").strip()
            fields = update.fields
            if not external_id:
                results.append(
                    WriteResult(update.external_id, False, "MISSING_ID", "the update has no record id")
                )
            elif not _OWNED.issuperset(fields):
                unknown = sorted(str(key) for key in fields if key not in _OWNED)
                message = f"not an owned field: {', '.join(unknown)}"
                results.append(WriteResult(external_id, False, "UNKNOWN_FIELD", message, field=unknown[0]))
            else:
                row = [escape_formula(external_id)]
                row += [owned_cell(fields[name], null) if name in fields else "" for name in OWNED_FIELDS]
                rows.append(row)
                results.append(WriteResult(external_id, True))
        return rows, results

    def _append(self, path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Append rows (cells already escaped), writing the header first into a new or empty file."""
        enc = self.config.out_encoding
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists() or path.stat().st_size == 0
            if not fresh:
                existing = _read_header(path, enc)
                if existing != list(header):
                    raise ConfigError(
                        f"{path} has columns {existing} but this connection writes {list(header)}: "
                        "import and move the old file, or restore the previous field names"
                    )
            with open(path, "a", newline="", encoding=enc) as handle:
                writer = csv.writer(handle, lineterminator="\r\n")
                if fresh:
                    writer.writerow(header)
                writer.writerows(rows)
                handle.flush()
                os.fsync(handle.fileno())
        except PermissionError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
        except OSError as exc:
            raise PermanentError(f"cannot write {path}: {exc.strerror or exc}") from None

    # ----------------------------------------------------------------------------------------- tasks

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> list[TaskResult]:
        """Append new tasks to ``<out>/tasks.csv``; a key already in the file (or in this call) is not
        written again and comes back with ``existed=True``."""
        if not tasks:
            return []
        path = self.run_dir / "tasks.csv"
        known = self._known_task_keys()
        results: list[TaskResult] = []
        rows: list[list[str]] = []
        fresh: set[str] = set()
        for task in tasks:
            stored = escape_formula(task.key)
            if not task.key:
                results.append(TaskResult(task.key, False, error="the task has no key"))
                continue
            if stored in known or stored in fresh:
                results.append(TaskResult(task.key, True, task_id=task.key, existed=True))
                continue
            fresh.add(stored)
            cells = [task.key, task.object_type, task.external_id, task.owner_id or "", task.subject,
                     task.description, task.due_date.isoformat()]  # fmt: skip
            rows.append([escape_formula(cell) for cell in cells])
            results.append(TaskResult(task.key, True, task_id=task.key))
        if rows:
            self._append(path, TASK_COLUMNS, rows)
            known.update(fresh)
        self._usage.count("other")
        return results

    def _known_task_keys(self) -> set[str]:
        """Keys already in a tasks.csv (``<out>`` and every ``<out>/run-*``), read once per connector (as
        stored, i.e. escaped)."""
        if self._task_keys is None:
            out = self.config.out
            keys: set[str] = set()
            paths = [out / "tasks.csv", *(sorted(out.glob("run-*/tasks.csv")) if out.is_dir() else [])]
            for path in paths:
                keys.update(self._task_keys_in(path))
            self._task_keys = keys
        return self._task_keys

    def _task_keys_in(self, path: Path) -> set[str]:
        keys: set[str] = set()
        try:
            if path.exists() and path.stat().st_size > 0:
                with open(path, newline="", encoding=self.config.out_encoding) as handle:
                    reader = csv.reader(handle)
                    header = next(reader, [])
                    if header != list(TASK_COLUMNS):
                        raise ConfigError(f"{path} has columns {header}, expected {list(TASK_COLUMNS)}")
                    keys.update(row[0] for row in reader if row)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        return keys

    # ----------------------------------------------------------------------------------------- misc

    def usage(self) -> ApiUsage:
        return self._usage

    def close(self) -> None:
        """Close the files of pulls still in progress."""
        for pages in list(self._open_pulls):
            pages.close()
        self._open_pulls.clear()


# --------------------------------------------------------------------------------------------- helpers


#: Rows whose repeated ids are looked for at once (at most; a page's rows are looked at before it is handed
#: over).
_SEGMENT = 4096


class _SeenIds:
    """The ids of one export seen so far, for the repeated-id warning, in far less memory than a set of
    the ids (a set of 185,000 ids of 15 characters takes 19 MB; this, 3 MB, and flat as a file grows).

    Exact: each id is kept as its UTF-8 bytes in sorted numpy arrays of fixed-width byte strings (``S``),
    one per batch, merged as they grow (each merge at least doubles a run, so there are at most ~log2 of
    the batches, and each id is moved ~log2 times). An id whose bytes end in NUL is kept in a set instead:
    numpy reads trailing NULs of an ``S`` value as padding."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        self._odd: set[str] = set()

    def add(self, ids: Sequence[str]) -> list[int]:
        """Remember ``ids`` (one segment of the file, in order); the positions of those seen before them
        or earlier among them, ascending."""
        if not ids:
            return []
        keys = [external_id.encode("utf-8", "surrogatepass") for external_id in ids]
        repeated = [False] * len(ids)
        if any(key.endswith(b"\0") for key in keys):
            for i, key in enumerate(keys):
                if key.endswith(b"\0"):
                    repeated[i] = ids[i] in self._odd
                    self._odd.add(ids[i])
                    keys[i] = b""  # stands for no id: never compared (see below)
        batch = np.array(keys, dtype=np.bytes_)  # as wide as its longest id (numpy compares any widths)
        kept = batch != b""
        order = np.argsort(batch, kind="stable")
        ordered = batch[order]  # searched in order: each search starts where the one before ended
        known = np.zeros(len(ids), dtype=bool)
        for run in self._runs:
            at = np.searchsorted(run, ordered)
            at[at == len(run)] = 0
            known |= run[at] == ordered
        before = np.zeros(len(ids), dtype=bool)  # in an earlier segment
        before[order] = known
        repeat = ordered[1:] == ordered[:-1]  # in sorted order: equal to the one before it
        again = np.zeros(len(ids), dtype=bool)  # equal to one earlier in this segment (a stable sort)
        again[order[1:][repeat]] = True
        first = np.concatenate(([True], ~repeat))  # each distinct id once, still sorted
        new = ordered[first & ~known & (ordered != b"")]
        if len(new):
            self._runs.append(new)
            while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
                merged = np.concatenate(self._runs[-2:])
                merged.sort(kind="stable")  # a merge of two sorted runs
                self._runs[-2:] = [merged]
        found = ((before | again) & kept) | np.array(repeated)
        return [int(i) for i in np.flatnonzero(found)]


class _Plan:
    """How one export's columns become a CrmRecord, worked out once from its header: each canonical name's
    column positions, and which names are attributes (``raw``) and status keys (with their parser).

    ``record`` takes a row as ``csv.reader`` gives it, padded to the header's width. A canonical name
    mapped from several columns takes the first non-blank of them (``_first``); the common case, one
    column, is read by position. When the same header appears twice, the last such column is read (as
    ``DictReader``, whose dict keeps the last)."""

    def __init__(
        self,
        object_type: ObjectType,
        file_name: str,
        columns: Mapping[str, str],
        header: Sequence[str],
        problem: Callable[[DataProblem], None] = lambda _p: None,
    ):
        self.object_type = object_type
        self.file_name = file_name
        self.problem = problem
        position = {column: i for i, column in enumerate(header)}  # the last of a repeated header
        present = {column.lstrip("\ufeff").strip(): column for column in header if column is not None}
        by_name: dict[str, list[str]] = {}
        for column, name in columns.items():
            if column in present:
                by_name.setdefault(name, []).append(present[column])
        id_columns = [column for column, name in columns.items() if name == "id"]
        if "id" not in by_name:
            wanted = " or ".join(repr(column) for column in id_columns)
            raise ConfigError(
                f"{file_name}: no id column {wanted} in the header (columns: {list(present)[:20]})"
            )
        self.by_name = by_name
        at = {name: tuple(position[column] for column in cols) for name, cols in by_name.items()}
        #: Attribute names in column-mapping order (the order of ``raw``), the position read for each
        #: (the first of its columns), and the names mapped from several columns (read with ``_first``).
        raw = [(name, cols) for name, cols in at.items() if name not in _NOT_RAW]
        self.raw_names = tuple(name for name, _ in raw)
        self.raw_get: Callable[[Sequence[str]], Any] | None = (
            operator.itemgetter(*(cols[0] for _, cols in raw)) if len(raw) > 1 else None
        )
        self.raw_single = raw[0][1][0] if len(raw) == 1 else None
        self.raw_multi = [(name, cols) for name, cols in raw if len(cols) > 1]
        self.status: list[
            tuple[str, Callable[[Sequence[str]], str], Callable[[str], Any], dict[str, Any]]
        ] = [
            (name, _reader(cols), _STATUS_PARSERS.get(name, _status_text), {})
            for name, cols in at.items()
            if name in _STATUS_KEYS
        ]
        self.id = _reader(at["id"])
        self.name = _optional(at, "name")
        self.owner = _optional(at, "owner_id")
        self.activity = _optional(at, "last_activity")
        self.stamp = _optional(at, "modstamp")
        self.account_type = _optional(at, "account_type") if object_type == "account" else None
        self._days: dict[str, date | None] = {}

    def record(self, row: Sequence[str], line: int, warn: Any) -> CrmRecord | None:
        external_id = self.id(row).strip()
        if not external_id:
            where = f"{self.file_name} line {line}"
            warn(f"{where}: empty id, row skipped")
            self.problem(DataProblem("missing_id", "id", "", None, where))
            return None
        if self.raw_get is not None:
            raw = dict(zip(self.raw_names, self.raw_get(row), strict=True))
        elif self.raw_single is not None:
            raw = {self.raw_names[0]: row[self.raw_single]}
        else:
            raw = {}
        for name, cols in self.raw_multi:
            raw[name] = _first(row, cols)
        status: dict[str, Any] = {}
        for name, cell, parse, memo in self.status:
            text = cell(row)
            try:
                value = memo[text]
            except KeyError:
                value = parse(text) if text.strip() else _BLANK
                if len(memo) >= _MEMO_SIZE:  # bounded: values repeat (flags, stages, dates) or do not
                    memo.clear()
                memo[text] = value
            if value is _BLANK:
                continue
            if value is None:
                where = f"{self.file_name} line {line}"
                warn(f"{where}: {name} {text[:40]!r} unreadable, left unknown")
                self.problem(DataProblem("unreadable", name, text[:80], external_id, where))
            else:
                status[name] = value
        if self.account_type and "is_customer" not in status:
            kind = self.account_type(row).strip().casefold()
            if kind.startswith("customer"):
                status["is_customer"] = True
        modstamp = ""
        if self.stamp:
            text = self.stamp(row)
            if text.strip():
                modstamp = normalize_stamp(text) or ""
                if not modstamp:
                    where = f"{self.file_name} line {line}"
                    warn(f"{where}: modification stamp {text[:40]!r} unreadable, row always pulled")
                    self.problem(DataProblem("unreadable_stamp", "modstamp", text[:80], external_id, where))
        last_activity = None
        if self.activity:
            text = self.activity(row)
            if text.strip():
                days = self._days
                if text in days:
                    last_activity = days[text]
                else:
                    last_activity = parse_day(text)
                    if len(days) >= _MEMO_SIZE:
                        days.clear()
                    days[text] = last_activity
                if last_activity is None:
                    where = f"{self.file_name} line {line}"
                    warn(f"{where}: last activity {text[:40]!r} unreadable, left unknown")
                    self.problem(
                        DataProblem("unreadable_stamp", "last_activity", text[:80], external_id, where)
                    )
        name = self.name(row).strip() if self.name else ""
        owner = self.owner(row).strip() if self.owner else ""
        return CrmRecord(
            self.object_type, external_id, raw, status, name or None, owner or None, last_activity, modstamp
        )


#: Distinct cells remembered per parsed column (``_Plan.record``): enough for every flag, stage and day of
#: a few years; cleared when full, so memory stays flat whatever the file's size.
_MEMO_SIZE = 4096
#: A blank status cell (no value, no warning), as remembered.
_BLANK = object()


def _status_text(text: str) -> str:
    return text.strip()


def _status_day(text: str) -> str | None:
    day = parse_day(text)
    return None if day is None else day.isoformat()


#: Status keys read as something other than stripped text; each parser returns None when unreadable.
_STATUS_PARSERS: dict[str, Callable[[str], Any]] = {
    **{key: parse_flag for key in _FLAG_KEYS},
    "amount": parse_amount,
    "close_date": _status_day,
}


def _reader(columns: Sequence[int]) -> Callable[[Sequence[str]], str]:
    """How to read a name's cell from a row: by position when one column maps to it, else ``_first``."""
    if len(columns) == 1:
        return operator.itemgetter(columns[0])
    return functools.partial(_first, columns=tuple(columns))


def _optional(at: Mapping[str, Sequence[int]], name: str) -> Callable[[Sequence[str]], str] | None:
    """``_reader`` of a name the header may not have (None when absent)."""
    columns = at.get(name)
    return _reader(columns) if columns else None


def _first(row: Sequence[str], columns: Sequence[int]) -> str:
    """The first non-blank value among the positions mapped to one name (the first's when all are blank)."""
    for column in columns:
        value = row[column]
        if value.strip():
            return value
    return row[columns[0]]


def _check_object_type(object_type: str) -> None:
    if object_type not in OBJECT_TYPES:
        raise ConfigError(f"unknown object type {object_type!r} (expected one of {', '.join(OBJECT_TYPES)})")


def _unreadable(path: Path, line: int, exc: Exception) -> ConfigError:
    if isinstance(exc, UnicodeDecodeError):  # decoded in blocks: the line is not known
        return ConfigError(
            f"{path}: not {exc.encoding} text; set the connector's encoding option (e.g. cp1252)"
        )
    return ConfigError(f"{path} line {line}: {exc}")


def _read_header(path: Path, encoding: str) -> list[str]:
    with open(path, newline="", encoding=encoding) as handle:
        return next(csv.reader(handle), [])
