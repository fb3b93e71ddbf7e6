"""How a command reports runs and record-level dry runs: the records file, the first record errors, and
the exit code (0: every run succeeded; 1: a run failed, stopped at the quota, or left records unwritten)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from worker.cli.common import UserError, err
from worker.store.states import RunStatus
from worker.sync import RunSummary
from worker.sync.plan import RECORD_COLUMNS, record_cells

#: Record errors printed per run (the run keeps the first ``worker.sync.write.MAX_RECORD_ERRORS``).
SHOWN_ERRORS = 5


def write_records(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """The record-level dry run as CSV (``RECORD_COLUMNS``, one row per record that would be written);
    cells a spreadsheet would run as formulas are escaped. Returns the number of rows."""
    n = 0
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(RECORD_COLUMNS)
            for row in rows:
                writer.writerow(record_cells(row))
                n += 1
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return n


def failed(summary: RunSummary) -> bool:
    """Anything but ``succeeded``: record errors (``partial``), a quota stop, a failure."""
    return summary.status != RunStatus.SUCCEEDED


def print_record_errors(summary: RunSummary, limit: int = SHOWN_ERRORS) -> None:
    """The first records the CRM refused in this run: id, field, the CRM's message."""
    shown = summary.record_errors[:limit]
    if not shown:
        return
    total = summary.counts.get("write_errors", len(summary.record_errors))
    err.print(f"  {total:,} record(s) not written; the first:", highlight=False)
    for e in shown:
        where = f"{e['object_type']} {e['id']}"
        field = e.get("field") or "-"
        code = f"{e['code']}: " if e.get("code") else ""
        err.print(f"    {where}  field {field}  {code}{e['message']}", highlight=False, markup=False)


def exit_for(summaries: Sequence[RunSummary]) -> None:
    """Exit 1 when any run did not succeed (after printing what it has to say)."""
    if any(failed(s) for s in summaries):
        raise typer.Exit(1)


def error_object(summary: RunSummary) -> dict[str, Any]:
    """The JSON a failing run prints with ``--json``."""
    return {
        "error": summary.error or f"run {summary.run_id} ended {summary.status}",
        "status": summary.status,
        "run_id": summary.run_id,
        "connection": summary.connection,
        "record_errors": summary.record_errors,
    }
