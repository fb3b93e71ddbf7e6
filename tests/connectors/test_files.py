"""The files connector: CSV exports in, re-import files out."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from connectors.base import OWNED_FIELDS, Connector, FitUpdate, FollowUpTask, RunAware
from connectors.errors import ConfigError
from connectors.files import DEFAULT_FIELD_NAMES, TASK_COLUMNS, FilesConfig, FilesConnector
from connectors.files.cells import escape_formula, format_cell, normalize_stamp, parse_day

ACCOUNT_HEADER = [
    "Id",
    "Name",
    "Industry",
    "NumberOfEmployees",
    "AnnualRevenue",
    "BillingCountry",
    "BillingState",
    "OwnerId",
    "LastActivityDate",
    "LastModifiedDate",
    "Tech_Stack__c",
    "Type",
]
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(seconds: int) -> str:
    moment = BASE + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def account_row(i: int, **over: str) -> list[str]:
    row = {
        "Id": f"001{i:012d}",
        "Name": f"Company {i}",
        "Industry": "Software",
        "NumberOfEmployees": "1,200",
        "AnnualRevenue": "$5m",
        "BillingCountry": "USA",
        "BillingState": "CA",
        "OwnerId": "005000000000001",
        "LastActivityDate": "2025-12-01",
        "LastModifiedDate": stamp(i),
        "Tech_Stack__c": "Okta;Salesforce",
        "Type": "Prospect",
    }
    row.update(over)
    return [row[column] for column in ACCOUNT_HEADER]


def make(tmp_path: Path, **options) -> FilesConnector:
    return FilesConnector.from_config({"path": tmp_path / "crm", "out": tmp_path / "out", **options})


def pull_all(connector: FilesConnector, object_type="account", since=None):
    return list(connector.pull(object_type, since))


# ------------------------------------------------------------------------------------------- config


def test_is_a_connector(tmp_path):
    connector = make(tmp_path)
    assert isinstance(connector, Connector)
    assert connector.crm == "files"
    assert connector.write_batch_size == 10_000
    assert connector.check_fields(["account", "lead"]) == []
    assert connector.install_fields(["account"]) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "/x"}, "out"),
        ({"path": "/x", "out": "/y", "colums": {}}, "colums"),
        ({"path": "/x", "out": "/y", "page_size": 0}, "page_size"),
        ({"path": "/x", "out": "/y", "field_names": {"score": "S__c"}}, "score"),
        ({"path": "/x", "out": "/y", "field_names": {"fit_tier": "ICP_Fit_Score__c"}}, "distinct"),
        ({"path": "/x", "out": "/y", "columns": {"account": {"Id": None}}}, "no column maps to id"),
        ({"path": "/x", "out": "/y", "columns": {"deal": {}}}, "columns"),
    ],
)
def test_from_config_errors_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        FilesConnector.from_config(options)


def test_config_merges_user_columns_and_files_with_defaults(tmp_path):
    config = FilesConfig(
        path=tmp_path,
        out=tmp_path,
        files={"lead": "Lead.csv"},
        columns={"account": {"Segment__c": "segment", "Type": None, "BillingCountry": "hq_country"}},
    )
    assert config.files == {"account": "accounts.csv", "opportunity": "opportunities.csv", "lead": "Lead.csv"}
    account = config.columns_for("account")
    assert account["Segment__c"] == "segment"
    assert account["BillingCountry"] == "hq_country"
    assert "Type" not in account
    assert account["Id"] == "id"
    assert config.columns_for("lead")["Company"] == "name"
    assert config.field_names == DEFAULT_FIELD_NAMES


# ------------------------------------------------------------------------------------------- pull


def test_pull_maps_columns_to_record_fields_raw_and_status(tmp_path):
    write_csv(
        tmp_path / "crm" / "accounts.csv",
        ACCOUNT_HEADER,
        [
            account_row(1, NumberOfEmployees=" 1,200 ", BillingCountry="n/a", Type="Customer - Direct"),
            account_row(2, Name="", OwnerId="", LastActivityDate=""),
        ],
    )
    (page,) = pull_all(make(tmp_path))
    first, second = page.records
    assert first.object_type == "account"
    assert first.external_id == "001000000000001"
    assert first.name == "Company 1"
    assert first.owner_id == "005000000000001"
    assert first.last_activity == date(2025, 12, 1)
    assert first.modstamp == stamp(1)
    assert first.raw == {
        "industry": "Software",
        "employees": " 1,200 ",  # raw: normalisation happens in the sync service
        "annual_revenue": "$5m",
        "country": "n/a",
        "state": "CA",
        "tech_stack": "Okta;Salesforce",
        "account_type": "Customer - Direct",
    }
    assert first.status == {"is_customer": True}
    assert second.status == {}  # "Prospect": unknown, derived later from won opportunities
    assert second.name is None and second.owner_id is None and second.last_activity is None


def test_pull_opportunity_and_lead_status(tmp_path):
    write_csv(
        tmp_path / "crm" / "opportunities.csv",
        [
            "Id",
            "Name",
            "AccountId",
            "StageName",
            "IsClosed",
            "IsWon",
            "Amount",
            "CloseDate",
            "OwnerId",
            "LastModifiedDate",
        ],
        [
            [
                "006A",
                "Big deal",
                "001A",
                "Closed Won",
                "true",
                "true",
                "12000.5",
                "2025-06-30",
                "005A",
                stamp(1),
            ],
            ["006B", "Open deal", "001A", "Prospecting", "0", "0", "", "6/30/2026", "005A", stamp(2)],
            ["006C", "Odd deal", "001B", "Closed Lost", "maybe", "false", "lots", "soon", "005A", stamp(3)],
        ],
    )
    write_csv(
        tmp_path / "crm" / "leads.csv",
        ["Id", "Company", "Industry", "Status", "IsConverted", "Country", "LastModifiedDate", "Extra"],
        [["00QA", "Lead Co", "Retail", "Closed - Not Converted", "false", "Holland", stamp(1), "ignored"]],
    )
    connector = make(tmp_path)
    (page,) = pull_all(connector, "opportunity")
    won, open_, odd = page.records
    assert won.status == {
        "account_id": "001A",
        "stage": "Closed Won",
        "is_closed": True,
        "is_won": True,
        "amount": 12000.5,
        "close_date": "2025-06-30",
    }
    assert won.raw == {}
    assert won.name == "Big deal"
    assert open_.status == {
        "account_id": "001A",
        "stage": "Prospecting",
        "is_closed": False,
        "is_won": False,
        "close_date": "2026-06-30",
    }
    assert odd.status == {"account_id": "001B", "stage": "Closed Lost", "is_won": False}
    assert len(connector.warnings) == 3
    assert all(w.startswith("opportunities.csv line 4: ") for w in connector.warnings)
    assert any("is_closed 'maybe'" in w for w in connector.warnings)
    (page,) = pull_all(connector, "lead")
    (lead,) = page.records
    assert lead.name == "Lead Co"
    assert lead.status == {"lead_status": "Closed - Not Converted", "is_converted": False}
    assert lead.raw == {"industry": "Retail", "country": "Holland"}  # unmapped columns are left out


def test_pull_user_columns_extend_and_override(tmp_path):
    write_csv(
        tmp_path / "crm" / "companies.csv",
        ["Record ID", "Company name", "Segment", "Type"],
        [["9001", "Acme", "Mid-market", "Customer"]],
    )
    connector = make(
        tmp_path,
        files={"account": "companies.csv"},
        columns={"account": {"Record ID": "id", "Company name": "name", "Segment": "segment", "Type": None}},
    )
    (page,) = pull_all(connector)
    (record,) = page.records
    assert (record.external_id, record.name) == ("9001", "Acme")
    assert record.raw == {"segment": "Mid-market"}
    assert record.status == {}
    assert record.modstamp == ""


def test_pages_of_2000_and_the_cursor(tmp_path):
    rows = [account_row(i) for i in range(4500)]
    rows[10] = account_row(10, LastModifiedDate=stamp(99_999))  # out of order: exports are sorted by Id
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, rows)
    connector = make(tmp_path)
    pages = pull_all(connector)
    assert [len(page.records) for page in pages] == [2000, 2000, 500]
    # only the last page moves the cursor: a run that stops halfway must not skip older rows further down
    assert [page.cursor for page in pages] == [None, None, stamp(99_999)]
    assert connector.usage().calls["read"] == 3
    assert len({r.external_id for page in pages for r in page.records}) == 4500


def test_exact_multiple_of_the_page_size_has_no_empty_page(tmp_path):
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, [account_row(i) for i in range(4000)])
    connector = make(tmp_path)
    pages = pull_all(connector)
    assert [len(page.records) for page in pages] == [2000, 2000]
    assert pages[-1].cursor == stamp(3999)
    assert connector.usage().calls["read"] == 2


def test_page_size_option(tmp_path):
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, [account_row(i) for i in range(5)])
    assert [len(p.records) for p in pull_all(make(tmp_path, page_size=2))] == [2, 2, 1]


def test_empty_export_yields_no_page(tmp_path):
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, [])
    assert pull_all(make(tmp_path)) == []


def test_since_filters_by_modstamp(tmp_path):
    rows = [account_row(i) for i in range(10)]
    rows.append(account_row(10, LastModifiedDate=""))  # no stamp: always pulled
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, rows)
    connector = make(tmp_path)
    (page,) = pull_all(connector, since=stamp(7))
    assert [r.external_id[-2:] for r in page.records] == ["07", "08", "09", "10"]  # at or after since
    assert page.cursor == stamp(9)
    assert pull_all(connector, since=stamp(7).replace("Z", "+00:00")) == pull_all(connector, since=stamp(7))
    (late,) = pull_all(connector, since=stamp(100))
    assert [r.external_id[-2:] for r in late.records] == ["10"]
    assert late.cursor == stamp(100)  # nothing newer: the cursor stays
    assert sum(len(p.records) for p in pull_all(connector, since=None)) == 11


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T10:20:30.000Z", "2026-01-31T10:20:30.000Z"),
        ("2026-01-31T10:20:30.000+0000", "2026-01-31T10:20:30.000Z"),
        ("2026-01-31T10:20:30Z", "2026-01-31T10:20:30.000Z"),
        ("2026-01-31T10:20:30.123456Z", "2026-01-31T10:20:30.123Z"),
        ("2026-01-31T11:20:30+01:00", "2026-01-31T10:20:30.000Z"),
        ("2026-01-31T01:20:30-05:00", "2026-01-31T06:20:30.000Z"),
        ("2026-01-31 10:20:30", "2026-01-31T10:20:30.000Z"),
        ("2026-01-31", "2026-01-31T00:00:00.000Z"),
        ("1/31/2026 10:20 AM", "2026-01-31T10:20:00.000Z"),
        ("1/31/2026 10:20 PM", "2026-01-31T22:20:00.000Z"),
        ("01/31/2026 10:20:30", "2026-01-31T10:20:30.000Z"),
        ("31/01/2026 10:20", "2026-01-31T10:20:00.000Z"),
        ("31.01.2026 10:20", "2026-01-31T10:20:00.000Z"),
        ("2026/01/31 10:20:30", "2026-01-31T10:20:30.000Z"),
        ("1769854830", "2026-01-31T10:20:30.000Z"),
        ("1769854830000", "2026-01-31T10:20:30.000Z"),
        ("yesterday", None),
        ("2026-13-45T00:00:00Z", None),
    ],
)
def test_normalize_stamp(text, expected):
    assert normalize_stamp(text) == expected


def test_pull_normalizes_other_stamp_formats(tmp_path):
    write_csv(
        tmp_path / "crm" / "accounts.csv",
        ACCOUNT_HEADER,
        [
            account_row(1, LastModifiedDate="1/31/2026 10:20 AM"),
            account_row(2, LastModifiedDate="2026-01-31T11:20:30.000+0100"),
            account_row(3, LastModifiedDate="garbage"),
        ],
    )
    connector = make(tmp_path)
    (page,) = pull_all(connector)
    assert [r.modstamp for r in page.records] == ["2026-01-31T10:20:00.000Z", "2026-01-31T10:20:30.000Z", ""]
    assert page.cursor == "2026-01-31T10:20:30.000Z"
    assert connector.warnings == [
        "accounts.csv line 4: modification stamp 'garbage' unreadable, row always pulled"
    ]


def test_pull_reads_utf8_with_bom(tmp_path):
    write_csv(
        tmp_path / "crm" / "accounts.csv",
        ACCOUNT_HEADER,
        [account_row(1, Name="Müller GmbH")],
        encoding="utf-8-sig",
    )
    assert (tmp_path / "crm" / "accounts.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    (page,) = pull_all(make(tmp_path))
    assert page.records[0].external_id == "001000000000001"
    assert page.records[0].name == "Müller GmbH"


def test_pull_other_encoding_and_delimiter(tmp_path):
    path = tmp_path / "crm" / "accounts.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes("Id;Name\r\n001A;Société Générale\r\n".encode("cp1252"))
    with pytest.raises(ConfigError, match="accounts.csv: not utf-8 text"):
        pull_all(make(tmp_path, delimiter=";"))
    (page,) = pull_all(make(tmp_path, delimiter=";", encoding="cp1252"))
    assert page.records[0].name == "Société Générale"


def test_malformed_csv_names_file_and_line(tmp_path):
    write_csv(tmp_path / "crm" / "accounts.csv", ["Id", "Name"], [["001A", "Acme"], ["001B", "x" * 200_000]])
    with pytest.raises(ConfigError, match="accounts.csv line 3"):
        pull_all(make(tmp_path))


def test_missing_file_names_the_file(tmp_path):
    (tmp_path / "crm").mkdir()
    with pytest.raises(ConfigError, match="accounts.csv"):
        make(tmp_path).pull("account", None)
    with pytest.raises(ConfigError, match="Lead.csv"):
        make(tmp_path, files={"lead": "Lead.csv"}).pull("lead", None)


def test_missing_id_column_names_file_and_column(tmp_path):
    write_csv(tmp_path / "crm" / "accounts.csv", ["AccountId", "Name"], [["001A", "Acme"]])
    with pytest.raises(ConfigError) as info:
        pull_all(make(tmp_path))
    assert "accounts.csv" in str(info.value)
    assert "'Id'" in str(info.value)


def test_empty_file_is_a_missing_id_column(tmp_path):
    path = tmp_path / "crm" / "accounts.csv"
    path.parent.mkdir(parents=True)
    path.write_text("")
    with pytest.raises(ConfigError, match="accounts.csv: no id column 'Id'"):
        pull_all(make(tmp_path))


def test_absent_optional_columns_are_fine(tmp_path):
    write_csv(tmp_path / "crm" / "accounts.csv", ["Id", "Name"], [["001A", "Acme"]])
    (page,) = pull_all(make(tmp_path))
    (record,) = page.records
    assert (record.external_id, record.name, record.raw, record.status, record.modstamp) == (
        "001A",
        "Acme",
        {},
        {},
        "",
    )


def test_empty_id_rows_are_skipped_with_a_line_numbered_warning(tmp_path):
    rows = [account_row(1), account_row(2, Id=""), account_row(3, Name="Two\nlines"), account_row(4, Id="  ")]
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, rows)
    connector = make(tmp_path)
    (page,) = pull_all(connector)
    assert [r.external_id[-1] for r in page.records] == ["1", "3"]
    assert page.records[1].name == "Two\nlines"
    # line 4 holds row 3, which spans two physical lines; row 4 starts on line 6
    assert connector.warnings == [
        "accounts.csv line 3: empty id, row skipped",
        "accounts.csv line 6: empty id, row skipped",
    ]


def test_pull_unknown_object_type(tmp_path):
    with pytest.raises(ConfigError, match="deal"):
        make(tmp_path).pull("deal", None)  # type: ignore[arg-type]


def test_pull_is_lazy_and_close_releases_the_file(tmp_path):
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, [account_row(i) for i in range(5000)])
    connector = make(tmp_path)
    pages = connector.pull("account", None)
    first = next(pages)
    assert len(first.records) == 2000
    assert connector.usage().calls["read"] == 1
    connector.close()
    with pytest.raises(StopIteration):
        next(pages)


# ------------------------------------------------------------------------------------------- write


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def full_update(external_id: str, **over) -> FitUpdate:
    fields = {
        "fit_score": 67,
        "fit_tier": "good",
        "fit_reasons": "industry Computer Software: +30; employees 350 in 200-500: +15",
        "icp_version": 3,
        "scored_at": datetime(2026, 1, 31, 2, 0, tzinfo=UTC),
        "reengage_flag": False,
        "reengage_reason": None,
    }
    fields.update(over)
    return FitUpdate(external_id, fields)


def test_write_appends_rows_with_one_header(tmp_path):
    connector = make(tmp_path)
    results = connector.write(
        "account", [full_update("001A"), full_update("001B", fit_score=80, fit_tier="best")]
    )
    assert [(r.external_id, r.ok) for r in results] == [("001A", True), ("001B", True)]
    connector.write(
        "account", [full_update("001A", fit_score=81.0, reengage_flag=True, reengage_reason="poor → best")]
    )
    rows = read_rows(tmp_path / "out" / "account_updates.csv")
    assert rows[0] == [
        "Id",
        "ICP_Fit_Score__c",
        "ICP_Fit_Tier__c",
        "ICP_Fit_Reasons__c",
        "ICP_Version__c",
        "ICP_Scored_At__c",
        "ICP_Reengage__c",
        "ICP_Reengage_Reason__c",
    ]
    assert rows[1] == [
        "001A",
        "67",
        "good",
        "industry Computer Software: +30; employees 350 in 200-500: +15",
        "3",
        "2026-01-31T02:00:00.000Z",
        "false",
        "",
    ]
    assert rows[3] == [
        "001A",
        "81",
        "good",
        "industry Computer Software: +30; employees 350 in 200-500: +15",
        "3",
        "2026-01-31T02:00:00.000Z",
        "true",
        "poor → best",
    ]
    assert len(rows) == 4
    assert connector.usage().calls["write"] == 2
    assert not (tmp_path / "out" / "lead_updates.csv").exists()


def test_write_partial_updates_null_value_and_custom_names(tmp_path):
    connector = make(
        tmp_path,
        null_value="#N/A",
        id_column="Record ID",
        field_names={"fit_score": "icp_fit_score", "fit_tier": "icp_fit_tier"},
    )
    connector.write("lead", [FitUpdate("00QA", {"fit_score": 12, "reengage_reason": None})])
    header, row = read_rows(tmp_path / "out" / "lead_updates.csv")
    assert header[:3] == ["Record ID", "icp_fit_score", "icp_fit_tier"]
    assert dict(zip(header, row, strict=True)) == {
        "Record ID": "00QA",
        "icp_fit_score": "12",
        "icp_fit_tier": "",
        "ICP_Fit_Reasons__c": "",
        "ICP_Version__c": "",
        "ICP_Scored_At__c": "",
        "ICP_Reengage__c": "",
        "ICP_Reengage_Reason__c": "#N/A",
    }


def test_write_rejects_unknown_fields_and_missing_ids_per_record(tmp_path):
    connector = make(tmp_path)
    results = connector.write(
        "account",
        [
            FitUpdate("001A", {"fit_score": 50, "Name": "Hijack"}),
            FitUpdate("", {"fit_score": 50}),
            FitUpdate("001C", {"fit_score": 50}),
        ],
    )
    assert [(r.ok, r.error_code) for r in results] == [
        (False, "UNKNOWN_FIELD"),
        (False, "MISSING_ID"),
        (True, None),
    ]
    assert "Name" in results[0].error_message
    assert not any(r.retryable for r in results)
    rows = read_rows(tmp_path / "out" / "account_updates.csv")
    assert [row[0] for row in rows[1:]] == ["001C"]


def test_write_nothing(tmp_path):
    connector = make(tmp_path)
    assert connector.write("account", []) == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\rfoo", "'\rfoo"),
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("plain text", "plain text"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_escape_formula(value, cell):
    assert escape_formula(value) == cell


def test_write_output_is_safe_against_formula_injection(tmp_path):
    connector = make(tmp_path)
    evil = "=cmd|' /C calc'!A0"
    connector.write(
        "account",
        [
            FitUpdate(
                "=1+1",
                {"fit_reasons": evil, "fit_tier": "+1", "reengage_reason": "@SUM(A1)", "fit_score": -5},
            ),
            FitUpdate("001B", {"fit_reasons": "-1", "fit_tier": 'good, "quoted"\nnext line'}),
        ],
    )
    rows = read_rows(tmp_path / "out" / "account_updates.csv")
    header = rows[0]
    first = dict(zip(header, rows[1], strict=True))
    second = dict(zip(header, rows[2], strict=True))
    assert first["Id"] == "'=1+1"
    assert first["ICP_Fit_Reasons__c"] == "'" + evil
    assert first["ICP_Fit_Tier__c"] == "'+1"
    assert first["ICP_Reengage_Reason__c"] == "'@SUM(A1)"
    assert first["ICP_Fit_Score__c"] == "'-5"  # a plain negative number is escaped too (documented)
    assert second["ICP_Fit_Reasons__c"] == "'-1"
    assert second["ICP_Fit_Tier__c"] == 'good, "quoted"\nnext line'  # csv quoting round-trips
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_write_refuses_a_file_with_other_columns(tmp_path):
    make(tmp_path).write("account", [full_update("001A")])
    renamed = make(tmp_path, field_names={"fit_score": "Fit_Score__c"})
    with pytest.raises(ConfigError, match="account_updates.csv"):
        renamed.write("account", [full_update("001A")])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (67, "67"),
        (67.0, "67"),
        (0.5, "0.5"),
        ("x", "x"),
        (date(2026, 1, 31), "2026-01-31"),
        (datetime(2026, 1, 31, 3, 0, tzinfo=timezone(timedelta(hours=1))), "2026-01-31T02:00:00.000Z"),
        (["a", "b"], "a; b"),
        ({"b": 1, "a": 2}, '{"a": 2, "b": 1}'),
    ],
)
def test_format_cell(value, text):
    assert format_cell(value) == text


def test_parse_day():
    assert parse_day("2026-01-31") == date(2026, 1, 31)
    assert parse_day("2026-01-31T23:30:00-05:00") == date(2026, 1, 31)  # the date as written
    assert parse_day("1/31/2026") == date(2026, 1, 31)
    assert parse_day("nope") is None
    assert parse_day("") is None


# ------------------------------------------------------------------------------------------- tasks


def task(key: str, **over) -> FollowUpTask:
    fields = {
        "key": key,
        "object_type": "lead",
        "external_id": "00QA",
        "owner_id": "005A",
        "subject": "Re-engage: Lead Co now fits (best)",
        "description": "poor → best under ICP v3: employees 620 ≥ 500",
        "due_date": date(2026, 2, 3),
    }
    fields.update(over)
    return FollowUpTask(**fields)


def test_create_tasks_writes_the_file(tmp_path):
    connector = make(tmp_path)
    results = connector.create_tasks([task("k1"), task("k2", owner_id=None, external_id="00QB")])
    assert [(r.key, r.ok, r.existed, r.task_id) for r in results] == [
        ("k1", True, False, "k1"),
        ("k2", True, False, "k2"),
    ]
    rows = read_rows(tmp_path / "out" / "tasks.csv")
    assert rows[0] == list(TASK_COLUMNS)
    assert rows[1] == [
        "k1",
        "lead",
        "00QA",
        "005A",
        "Re-engage: Lead Co now fits (best)",
        "poor → best under ICP v3: employees 620 ≥ 500",
        "2026-02-03",
    ]
    assert rows[2][:4] == ["k2", "lead", "00QB", ""]


def test_create_tasks_is_idempotent_by_key_within_and_across_instances(tmp_path):
    first = make(tmp_path)
    assert [r.existed for r in first.create_tasks([task("k1"), task("=k2"), task("k1")])] == [
        False,
        False,
        True,
    ]
    assert [r.existed for r in first.create_tasks([task("k1"), task("k3")])] == [True, False]
    second = make(tmp_path)  # a later run: reads the keys already in tasks.csv
    results = second.create_tasks([task("k1"), task("=k2"), task("k3"), task("k4")])
    assert [(r.key, r.ok, r.existed) for r in results] == [
        ("k1", True, True),
        ("=k2", True, True),
        ("k3", True, True),
        ("k4", True, False),
    ]
    rows = read_rows(tmp_path / "out" / "tasks.csv")
    assert [row[0] for row in rows[1:]] == ["k1", "'=k2", "k3", "k4"]


def test_create_tasks_escapes_formulas(tmp_path):
    make(tmp_path).create_tasks([task("k1", subject='=HYPERLINK("x")', description="-1", owner_id="@me")])
    row = read_rows(tmp_path / "out" / "tasks.csv")[1]
    assert row[3:6] == ["'@me", '\'=HYPERLINK("x")', "'-1"]


def test_create_tasks_refuses_a_foreign_tasks_file(tmp_path):
    write_csv(tmp_path / "out" / "tasks.csv", ["Subject", "WhoId"], [["x", "y"]])
    with pytest.raises(ConfigError, match="tasks.csv"):
        make(tmp_path).create_tasks([task("k1")])


def test_owned_fields_have_default_column_names():
    assert set(DEFAULT_FIELD_NAMES) == set(OWNED_FIELDS)


def test_each_run_writes_into_its_own_folder_and_tasks_stay_unique_across_runs(tmp_path):
    first = make(tmp_path)
    assert isinstance(first, RunAware)
    first.start_run(7)
    first.write("account", [full_update("001A"), full_update("001B")])
    first.create_tasks([task("k1")])
    assert [row[0] for row in read_rows(tmp_path / "out" / "run-7" / "account_updates.csv")[1:]] == [
        "001A",
        "001B",
    ]
    assert not (tmp_path / "out" / "account_updates.csv").exists()

    second = make(tmp_path)  # the next run: a new folder; a task key of an earlier run is not created again
    second.start_run(8)
    second.write("account", [full_update("001A")])
    results = second.create_tasks([task("k1"), task("k2")])
    assert [(r.key, r.existed) for r in results] == [("k1", True), ("k2", False)]
    assert [row[0] for row in read_rows(tmp_path / "out" / "run-8" / "account_updates.csv")[1:]] == ["001A"]
    assert [row[0] for row in read_rows(tmp_path / "out" / "run-8" / "tasks.csv")[1:]] == ["k2"]
    assert [row[0] for row in read_rows(tmp_path / "out" / "run-7" / "tasks.csv")[1:]] == ["k1"]


def test_problems_of_later_pages_are_handed_over_too(tmp_path):
    # the sync takes the problems after each page: those found on the second page must not go to the
    # list handed over after the first (they were lost: the plan kept the first list's append)
    rows = [account_row(1), account_row(2), account_row(3, LastModifiedDate="garbage"), account_row(4, Id="")]
    rows.append(account_row(1))
    write_csv(tmp_path / "crm" / "accounts.csv", ACCOUNT_HEADER, rows)
    connector = make(tmp_path, page_size=1)
    taken = []
    for _page in connector.pull("account", None):
        taken.append([(p.kind, p.where) for p in connector.take_problems()])
    taken.append([(p.kind, p.where) for p in connector.take_problems()])
    assert [problem for page in taken for problem in page] == [
        ("unreadable_stamp", "accounts.csv line 4"),
        ("missing_id", "accounts.csv line 5"),
        ("duplicate_id", "accounts.csv line 6"),
    ]
