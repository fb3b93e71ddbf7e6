"""Output people can read, and prospect files read carefully (issue 10): score's encoding, delimiter, row
shape and --map checks; runs, runs show, reengage list; --json; help text on every option."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer.main

from tests.cli import run_cli as run
from worker.cli.app import app
from worker.demo.sample_crm import write_sample_crm
from worker.settings import get_settings
from worker.store.db import _store_for

BUNDLED = Path(__file__).resolve().parents[2] / "worker" / "demo"
ICP = str(BUNDLED / "icp_v1.yaml")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ICP_WORKER_HOME", str(tmp_path / "home"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ICP_WORKER_NO_PROGRESS", "1")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    _store_for.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    _store_for.cache_clear()


# ------------------------------------------------------------------------------------------------ score


def test_a_cp1252_file_names_the_byte_and_suggests_encoding(env):
    src = env / "latin.csv"
    src.write_bytes("Company,Country,Employees\nM\u00fcller GmbH,Deutschland,300\n".encode("cp1252"))
    result = run("score", str(src), "--icp", ICP, "-o", str(env / "out.csv"), code=2)
    assert "byte 0xfc on line 2 is not utf-8 text" in result.output
    assert "--encoding cp1252" in result.output
    assert not (env / "out.csv").exists()
    ok = run("score", str(src), "--icp", ICP, "-o", str(env / "out.csv"), "--encoding", "cp1252", "--json")
    assert json.loads(ok.stdout)["rows"] == 1
    with open(env / "out.csv", encoding="utf-8") as f:
        assert next(csv.DictReader(f))["Company"] == "M\u00fcller GmbH"


@pytest.mark.parametrize(("delimiter", "name"), [(";", "';'"), ("\t", "tab")])
def test_semicolon_and_tab_files_are_detected_and_said(env, delimiter, name):
    src = env / "p.csv"
    src.write_text(
        delimiter.join(["Company", "Sector", "Head count", "HQ Country"]) + "\n"
        + delimiter.join(["Acme", "Software", "1,200", "USA"]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    result = run("score", str(src), "--icp", ICP, "-o", str(env / "o.csv"), "--json")
    assert f"delimiter {name} (detected)" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["delimiter"] == delimiter and summary["columns"]["Head count"] == "employees"
    forced = run("score", str(src), "--icp", ICP, "-o", str(env / "o.csv"), "--delimiter", ",", "--json")
    assert "delimiter ',' (--delimiter)" in forced.stderr


def test_short_rows_extra_cells_and_an_unclosed_quote_are_warned_with_their_line(env):
    src = env / "p.csv"
    src.write_text(
        "Company,Sector,Head count,Country\n"
        "Acme,Software,1200,US\n"  # 2
        "Short,Retail\n"  # 3
        "Long,Retail,5,US,surplus\n"  # 4
        'Open,"Retail,5,US\n'  # 5: the quote never closes
        "Lost,Retail,5,US\n",
        encoding="utf-8",
    )
    result = run("score", str(src), "--icp", ICP, "-o", str(env / "o.csv"), "--json")
    assert "warning: line 3: 2 cells, the header has 4: the rest are missing" in result.stderr
    assert "warning: line 4: 5 cells, the header has 4: the extra ones are ignored" in result.stderr
    assert "a quote opened on line 5 is never closed" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 3 and summary["structure_warnings"] == 3


def test_map_refuses_unknown_columns_and_attributes(env):
    src = env / "p.csv"
    src.write_text("Company,Head count\nAcme,1200\n", encoding="utf-8")
    out = str(env / "o.csv")
    bad_column = run("score", str(src), "--icp", ICP, "-o", out, "--map", "Headcount=employees", code=2)
    assert "has no column 'Headcount'; did you mean 'Head count'?" in bad_column.output
    bad_attr = run("score", str(src), "--icp", ICP, "-o", out, "--map", "Head count=employes", code=2)
    assert "unknown attribute 'employes'; did you mean 'employees'?" in bad_attr.output


def test_score_summarizes_unreadable_values_and_writes_them_to_csv(env):
    src = env / "p.csv"
    src.write_text(
        "Company,Head count,Country\nAcme,1200,Untied Kingdom\nBeta,-3,US\nGamma,lots,Untied Kingdom\n",
        encoding="utf-8",
    )
    warnings = env / "warnings.csv"
    out = str(env / "o.csv")
    result = run("score", str(src), "--icp", ICP, "-o", out, "--warnings", str(warnings), "--json")
    assert "4 values could not be read" in result.stderr
    assert "country: 'Untied Kingdom' ×2 (line 2, line 4)" in result.stderr
    quality = json.loads(result.stdout)["quality"]
    by_attr = {a["attribute"]: a for a in quality["attributes"]}
    assert by_attr["country"]["unreadable"] == 2 and by_attr["employees"]["impossible"] == 1
    assert by_attr["employees"]["unreadable"] == 1
    with open(warnings, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["line"], r["column"], r["kind"], r["raw_value"]) for r in rows] == [
        ("2", "Country", "unreadable", "Untied Kingdom"),
        ("3", "Head count", "impossible", "'-3"),  # escaped against formula injection
        ("4", "Head count", "unreadable", "lots"),
        ("4", "Country", "unreadable", "Untied Kingdom"),
    ]


# -------------------------------------------------------------------------------------------- store output


@pytest.fixture
def synced(env, monkeypatch):
    write_sample_crm(env / "crm", accounts=200)
    (env / "icp-worker.yaml").write_text(
        "connections:\n  - name: exports\n    crm: files\n    options: {path: crm, out: out}\n"
        "    industry_synonyms: {Software: Computer Software, SaaS: Computer Software}\n",
        encoding="utf-8",
    )
    run("icp", "publish", ICP, "--note", "v1", "--no-reevaluate")
    run("sync")
    run("icp", "publish", str(BUNDLED / "icp_v2.yaml"), "--note", "v2")
    return env


def test_runs_never_cut_numbers_or_statuses(synced, monkeypatch):
    from worker.cli.common import out

    for width in (60, 80, 200):
        monkeypatch.setattr(out, "_width", width)
        result = run("runs")
        assert "…" not in result.stdout, result.stdout
        assert "succeeded" in result.stdout
        if width < 200:
            assert "left out for the terminal's width" in result.stderr


def test_runs_show_lists_a_runs_warnings(synced, monkeypatch):
    from worker.cli.common import out

    monkeypatch.setattr(out, "_width", 200)
    text = run("runs", "show", "1").stdout
    assert "run 1 of exports: incremental, succeeded" in text
    assert "data-quality warnings" in text and "unreadable" in text
    data = json.loads(run("runs", "show", "1", "--json").stdout)
    assert data["id"] == 1 and data["warnings"] and all(w["count"] > 0 for w in data["warnings"])
    assert "no run 99" in run("runs", "show", "99", code=2).output


def test_reengage_list_filters_counts_and_writes_csv(synced):
    everything = json.loads(run("reengage", "list", "--json", "--limit", "1000").stdout)
    total = len(everything)
    assert total > 3
    page = run("reengage", "list", "--limit", "2")
    assert f"{total - 2:,} more not shown (of {total:,})" in page.stdout
    assert f"{total - 2:,} more not shown" in run("reengage", "list", "--limit", "2", "--json").stderr
    owner = everything[0]["owner_id"]
    mine = json.loads(run("reengage", "list", "--json", "--owner", owner).stdout)
    assert mine and all(f["owner_id"] == owner for f in mine)
    kind = sorted({f["kind"] for f in everything})[0]
    some = json.loads(run("reengage", "list", "--json", "--kind", kind).stdout)
    assert some and {f["kind"] for f in some} == {kind}
    out = synced / "flags.csv"
    run("reengage", "list", "--limit", "1", "--csv", str(out))
    with open(out, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == total, "the CSV holds every matching flag, not only the ones shown"
    run("reengage", "list", "--kind", "nonsense", code=2)


def test_json_of_icp_show_icp_diff_and_fields_check(synced):
    shown = json.loads(run("icp", "show", "2", "--json").stdout)
    assert shown["version"] == 2 and shown["content"] == (BUNDLED / "icp_v2.yaml").read_text(encoding="utf-8")
    diff = json.loads(run("icp", "diff", "1", "2", "--json").stdout)
    assert diff["from"] == 1 and diff["to"] == 2 and diff["changes"]
    fields = json.loads(run("fields", "check", "--connection", "exports", "--json").stdout)
    assert fields == {"connection": "exports", "objects": ["account", "opportunity", "lead"], "missing": [],
                      "ok": True}  # fmt: skip


def test_every_option_has_help_and_switches_take_no_value():
    command = typer.main.get_command(app)
    missing, valued_bools = [], []

    def walk(cmd, path):
        for p in cmd.params:
            if p.param_type_name != "option":
                continue
            if not p.help:
                missing.append(f"{' '.join(path)} {p.opts[0]}")
            if p.type_descriptor.annotation is bool and not p.is_flag:
                valued_bools.append(f"{' '.join(path)} {p.opts[0]}")
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(command, ["icp-worker"])
    assert missing == []
    assert valued_bools == []


@pytest.mark.parametrize(
    "args",
    [["sync"], ["runs"], ["runs", "show"], ["reengage", "list"], ["quality"], ["score"], ["icp", "show"]],
)
def test_help_shows_switches_as_switches(args):
    text = run(*args, "--help").stdout
    assert "--json" in text and "<bool>" not in text
