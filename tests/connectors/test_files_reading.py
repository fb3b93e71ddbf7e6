"""The files connector's reading (``csv.reader`` and a plan of column positions) against the reading it
replaced (``csv.DictReader``, a dict per row, kept here as the reference): same pages, records, cursors,
warnings and data problems, in the same order, on generated exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import STATUS_KEYS, CrmRecord, DataProblem
from connectors.errors import ConfigError
from connectors.files import FilesConnector
from connectors.files import connector as files_connector
from connectors.files.cells import normalize_stamp, parse_amount, parse_day, parse_flag
from connectors.files.connector import _SeenIds

# ------------------------------------------------------------------------------- the reference reader

_FLAG_KEYS = frozenset({"is_converted", "is_closed", "is_won", "is_customer"})
_NOT_RAW = frozenset(STATUS_KEYS) | {"id", "name", "owner_id", "last_activity", "modstamp"}


def _first(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    for column in columns:
        value = row.get(column)
        if value is not None and value.strip():
            return value
    value = row.get(columns[0])
    return "" if value is None else value


def reference_pages(
    object_type: str, path: Path, columns: Mapping[str, str], since: str | None, page_size: int,
    warnings: list[str], problems: list[DataProblem],
) -> Iterator[tuple[list[CrmRecord], str | None]]:  # fmt: skip
    """The DictReader reading, as it was (``FilesConnector._pages`` and ``_Plan.record``)."""
    name = path.name
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        present = {column.lstrip("\ufeff").strip(): column for column in header if column is not None}
        by_name: dict[str, list[str]] = {}
        for column, canonical in columns.items():
            if column in present:
                by_name.setdefault(canonical, []).append(present[column])
        if "id" not in by_name:
            raise ConfigError("no id column")
        status_cols = [(n, cols) for n, cols in by_name.items() if n in STATUS_KEYS]
        raw_cols = [(n, cols) for n, cols in by_name.items() if n not in _NOT_RAW]
        seen: set[str] = set()
        records: list[CrmRecord] = []
        highest: str | None = None
        line = reader.line_num + 1
        for row in reader:
            first_line, line = line, reader.line_num + 1
            where = f"{name} line {first_line}"
            external_id = _first(row, by_name["id"]).strip()
            if not external_id:
                warnings.append(f"{where}: empty id, row skipped")
                problems.append(DataProblem("missing_id", "id", "", None, where))
                continue
            raw = {n: _first(row, cols) for n, cols in raw_cols}
            status: dict[str, Any] = {}
            for n, cols in status_cols:
                text = _first(row, cols)
                if not text.strip():
                    continue
                if n in _FLAG_KEYS:
                    value: Any = parse_flag(text)
                elif n == "amount":
                    value = parse_amount(text)
                elif n == "close_date":
                    day = parse_day(text)
                    value = None if day is None else day.isoformat()
                else:
                    value = text.strip()
                if value is None:
                    warnings.append(f"{where}: {n} {text[:40]!r} unreadable, left unknown")
                    problems.append(DataProblem("unreadable", n, text[:80], external_id, where))
                else:
                    status[n] = value
            if (
                object_type == "account"
                and "account_type" in by_name
                and "is_customer" not in status
                and _first(row, by_name["account_type"]).strip().casefold().startswith("customer")
            ):
                status["is_customer"] = True
            modstamp = ""
            if "modstamp" in by_name:
                text = _first(row, by_name["modstamp"])
                if text.strip():
                    modstamp = normalize_stamp(text) or ""
                    if not modstamp:
                        warnings.append(
                            f"{where}: modification stamp {text[:40]!r} unreadable, row always pulled"
                        )
                        problems.append(
                            DataProblem("unreadable_stamp", "modstamp", text[:80], external_id, where)
                        )
            last_activity = None
            if "last_activity" in by_name:
                text = _first(row, by_name["last_activity"])
                if text.strip():
                    last_activity = parse_day(text)
                    if last_activity is None:
                        warnings.append(f"{where}: last activity {text[:40]!r} unreadable, left unknown")
                        problems.append(
                            DataProblem("unreadable_stamp", "last_activity", text[:80], external_id, where)
                        )
            record_name = _first(row, by_name["name"]).strip() if "name" in by_name else ""
            owner = _first(row, by_name["owner_id"]).strip() if "owner_id" in by_name else ""
            record = CrmRecord(object_type, external_id, raw, status, record_name or None, owner or None,  # type: ignore[arg-type]
                               last_activity, modstamp)  # fmt: skip
            if external_id in seen:
                warnings.append(f"{where}: id {external_id!r} appears again, this row wins")
                problems.append(DataProblem("duplicate_id", "id", external_id, external_id, where))
            seen.add(external_id)
            if modstamp:
                if since is not None and modstamp < since:
                    continue
                if highest is None or modstamp > highest:
                    highest = modstamp
            if len(records) >= page_size:
                yield records, since
                records = []
            records.append(record)
        if records:
            yield records, highest or since


# ------------------------------------------------------------------------------------ generated files

#: Headers the generated exports draw from: the account defaults, a stray column, and near-duplicates
#: (a column mapped twice to one name through the ``columns`` option, a header with spaces, a repeat).
HEADERS = ["Id", "Name", "Industry", "NumberOfEmployees", "BillingCountry", "OwnerId", "LastActivityDate",
           "LastModifiedDate", "Tech_Stack__c", "Type", "Extra", "Alt_Id", " Name ", "IsCustomer__c",
           "Amount__c", "Close__c", "Stage__c"]  # fmt: skip
EXTRA_COLUMNS = {
    "Alt_Id": "id",
    "Extra": "industry",
    "IsCustomer__c": "is_customer",
    "Amount__c": "amount",
    "Close__c": "close_date",
    "Stage__c": "stage",
}
CELLS = st.sampled_from([
    "", " ", "  x ", "A1", "A2", "a1", "A1 ", "true", "FALSE", "yes", "maybe", "1,200", "$5m", "lots",
    "2025-12-01", "12/31/2025", "soon", "2026-11-23T02:00:00.000Z", "2026-11-23 02:00", "garbage",
    "Customer - Direct", "customer", "Prospect", "line\nbreak", 'quo"te', "Ünïcode", "n/a",
])  # fmt: skip


@st.composite
def exports(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    header = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=10))
    if draw(st.booleans()):
        header = ["\ufeffId" if draw(st.booleans()) else "Id", *header]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow(header)
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["full", "full", "full", "short", "long", "blank"]))
        if kind == "blank":
            out.write("\r\n")
            continue
        width = {"full": len(header), "short": max(0, len(header) - 2), "long": len(header) + 2}[kind]
        writer.writerow(draw(st.lists(CELLS, min_size=width, max_size=width)))
    columns = dict(draw(st.dictionaries(st.sampled_from(sorted(EXTRA_COLUMNS)), st.just(""), max_size=4)))
    return out.getvalue(), {column: EXTRA_COLUMNS[column] for column in columns}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    export=exports(),
    since=st.sampled_from([None, "2026-01-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"]),
    page_size=st.integers(1, 4),
    segment=st.sampled_from([1, 2, 3, 4096]),
)
def test_reading_matches_the_dictreader_reading(tmp_path, export, since, page_size, segment):
    with patch.object(files_connector, "_SEGMENT", segment):  # repeated ids looked for every few rows
        check_reading(tmp_path, export, since, page_size)


def check_reading(
    tmp_path: Path, export: tuple[str, dict[str, str]], since: str | None, page_size: int
) -> None:
    text, extra = export
    path = tmp_path / "crm" / "accounts.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
    connector = FilesConnector.from_config(
        {
            "path": tmp_path / "crm",
            "out": tmp_path / "out",
            "page_size": page_size,
            "columns": {"account": extra},
        }
    )
    columns = connector.config.columns_for("account")
    warnings: list[str] = []
    problems: list[DataProblem] = []
    try:
        expected = []
        for records, cursor in reference_pages(
            "account", path, columns, since, page_size, warnings, problems
        ):
            expected.append((records, cursor, list(warnings), list(problems)))
            problems.clear()
    except ConfigError:
        try:
            list(connector.pull("account", since))
        except ConfigError:
            return
        raise AssertionError("the reference found no id column, the connector did") from None
    got = []
    for page in connector.pull("account", since):
        got.append((page.records, page.cursor, list(connector.warnings), connector.take_problems()))
    assert got == expected
    assert connector.warnings == warnings
    assert connector.take_problems() == problems


# ------------------------------------------------------------------------------------- repeated ids

_ids = st.one_of(
    st.sampled_from(
        ["001A", "001B", "001A ", "a", "a\x00", "a\x00\x00", "Ünï", "x" * 40, "001AAAAAAAAAAAAAAA"]
    ),
    st.text(min_size=1, max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.lists(_ids, max_size=12), max_size=12))
def test_seen_ids_finds_exactly_the_repeats_a_set_finds(batches):
    seen = _SeenIds()
    every: set[str] = set()
    for batch in batches:
        expected = []
        for i, external_id in enumerate(batch):
            if external_id in every:
                expected.append(i)
            every.add(external_id)
        assert seen.add(batch) == expected


def test_an_id_repeated_far_down_the_file_is_told_with_its_line(tmp_path):
    rows = [[f"001{i:012d}", f"2026-01-01T00:00:{i % 60:02d}.000Z"] for i in range(30_000)]
    rows[25_000][0] = rows[7][0]
    rows[29_999][0] = rows[25_001][0]
    path = tmp_path / "crm" / "accounts.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([["Id", "LastModifiedDate"], *rows])
    for since in (None, "2026-01-01T00:00:30.000Z"):  # with since, most rows are read but not pulled
        connector = FilesConnector.from_config({"path": tmp_path / "crm", "out": tmp_path / "out"})
        pulled = sum(len(page.records) for page in connector.pull("account", since))
        assert pulled == (30_000 if since is None else 15_000)
        assert connector.warnings == [
            f"accounts.csv line 25002: id '{rows[7][0]}' appears again, this row wins",
            f"accounts.csv line 30001: id '{rows[25_001][0]}' appears again, this row wins",
        ]
        assert [(p.kind, p.where) for p in connector.take_problems()] == [
            ("duplicate_id", "accounts.csv line 25002"),
            ("duplicate_id", "accounts.csv line 30001"),
        ]
