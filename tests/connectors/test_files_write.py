"""The files connector's write path: the column-at-a-time formatting writes exactly what the cell-by-cell
formatting writes (``escape_formula(format_cell(value))``), on values chosen to hit every branch."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from connectors.base import OWNED_FIELDS, FitUpdate
from connectors.files import FilesConnector
from connectors.files.cells import escape_formula, format_cell, owned_cell, owned_cells


class Level(IntEnum):
    LOW = -2
    HIGH = 3


class Text(str):
    """A ``str`` subclass: not ``type(value) is str``, so it takes the plain path."""


TRICKY: list[Any] = [
    "", "plain", "=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "a=b", "'quoted", " =x", "é→≥",
    'good, "quoted"\nnext line', 0, 5, -5, 10**20, -(10**20), True, False, 1.0, -1.0, 2.5, -2.5, 1e20,
    1e16, float("inf"), float("-inf"), None, datetime(2026, 1, 31, 2, 0, tzinfo=UTC),
    datetime(2026, 1, 31, 2, 0), date(2026, 1, 31), ["a", "b"], ["=x", -1], ("t",), {"k": -1},
    {"b": 1, "a": "=x"}, set(), Level.LOW, Level.HIGH, Text("=evil"), Text("fine"),
]  # fmt: skip
#: Columns of one type (the builtin paths) and of mixed types (the plain path), with negatives and
#: formula starts among otherwise safe values.
COLUMNS: list[list[Any]] = [
    [],
    ["good", "best", "poor"],
    ["good", "=HYPERLINK(1)", "", "-x"],
    [67, 0, 100, 10**30],
    [67, -1, 3],
    [True, False, True],
    [1, True, 0, False],
    [1, 2.0, -3.5],
    ["a", None, "b"],
    ["a", 1, True, None],
    [Level.HIGH, 3],
    [Text("=x"), "y"],
    TRICKY,
]


def plain(values: list[Any], null_value: str) -> list[str]:
    """What the connector wrote before: each cell formatted, then escaped."""
    return [escape_formula(format_cell(value, null_value)) for value in values]


@pytest.mark.parametrize("null_value", ["", "#N/A", "=NA()"])
def test_owned_cell_is_format_then_escape(null_value):
    for value in TRICKY:
        assert owned_cell(value, null_value) == escape_formula(format_cell(value, null_value)), value


@pytest.mark.parametrize("null_value", ["", "#N/A", "=NA()"])
@pytest.mark.parametrize("column", COLUMNS, ids=range(len(COLUMNS)))
def test_owned_cells_is_format_then_escape_for_every_cell(column, null_value):
    assert owned_cells(list(column), null_value) == plain(column, null_value)


def test_owned_cells_escape_what_can_start_a_formula():
    assert owned_cells([5, -5]) == ["5", "'-5"]
    assert owned_cells(["ok", "=cmd", "+1", "-1", "@x", "\tx", "\rx"]) == [
        "ok", "'=cmd", "'+1", "'-1", "'@x", "'\tx", "'\rx",
    ]  # fmt: skip
    assert owned_cells([True, False]) == ["true", "false"]


def _updates() -> list[FitUpdate]:
    """Updates with every owned field, some fields left out, ``None`` values and formula starts."""
    out = []
    for i, value in enumerate(TRICKY):
        fields = {name: value for name in OWNED_FIELDS}
        if i % 3 == 1:
            del fields["reengage_reason"], fields["fit_tier"]  # a partial update
        out.append(FitUpdate(f" 00{i}=x " if i % 5 == 0 else f"00{i}", fields))
    out.append(FitUpdate("=1+1", {"fit_score": 50, "fit_reasons": 'a, "b"\r\nc'}))
    out.append(FitUpdate("001Z", {}))
    return out


@pytest.mark.parametrize("null_value", ["", "=NA()"])
def test_a_batch_of_valid_updates_writes_what_the_record_by_record_path_writes(tmp_path: Path, null_value):
    updates = _updates()
    fast = FilesConnector.from_config({"path": tmp_path, "out": tmp_path / "fast", "null_value": null_value})
    slow = FilesConnector.from_config({"path": tmp_path, "out": tmp_path / "slow", "null_value": null_value})
    fast._rows = None  # type: ignore[assignment,method-assign]  # a valid batch never takes it
    fast_results = fast.write("account", updates)
    # One refused update in the batch sends the whole batch through the record-by-record path.
    slow_results = slow.write("account", [*updates, FitUpdate("", {"fit_score": 1})])
    assert fast_results == slow_results[:-1]
    assert all(r.ok for r in fast_results) and not slow_results[-1].ok
    written = (tmp_path / "fast" / "account_updates.csv").read_bytes()
    assert written == (tmp_path / "slow" / "account_updates.csv").read_bytes()
    assert written.count(b"\r\n") > len(updates)  # a header and the rows (one cell holds a CRLF)
    # The record-by-record path itself: the rows are each cell's format-then-escape.
    rows, results = slow._rows(updates)
    assert [r.external_id for r in results] == [u.external_id.strip() for u in updates]
    for row, update in zip(rows, updates, strict=True):
        expected = [escape_formula(update.external_id.strip())]
        expected += [
            escape_formula(format_cell(update.fields[name], null_value)) if name in update.fields else ""
            for name in OWNED_FIELDS
        ]
        assert row == expected
