"""``icp-worker explain`` and ``history export`` on the demo's store (ICP v1, then v2 published)."""

from __future__ import annotations

import csv
import json
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from tests.cli import run_cli
from worker.icp.moves import tier_rank
from worker.icp.reasons import fmt_points
from worker.icp.scoring import Scorer
from worker.icp.spec import parse_icp
from worker.settings import get_settings
from worker.store.db import Store, _store_for
from worker.store.history_export import COLUMNS, export_history
from worker.store.models import Connection, FitHistory, IcpVersion, RecordFit, RecordSnapshot

V2 = parse_icp((resources.files("worker.demo") / "icp_v2.yaml").read_text("utf-8"), "icp_v2.yaml")


def run(*args: str, code: int = 0):
    return run_cli(*args, code=code, traceback=True)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain") / "demo"
    mp = pytest.MonkeyPatch()
    mp.setenv("ICP_WORKER_HOME", str(folder.parent / "home"))
    mp.setenv("ICP_WORKER_NO_PROGRESS", "1")
    mp.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    run("demo", "--accounts", "300", "--dir", str(folder), "--json")
    mp.undo()
    return folder


@pytest.fixture
def demo(demo_dir, monkeypatch):
    """Commands now read the demo's store and connections file."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{demo_dir / 'demo.db'}")
    monkeypatch.setenv("ICP_WORKER_CONFIG", str(demo_dir / "icp-worker.yaml"))
    monkeypatch.setenv("ICP_WORKER_NO_PROGRESS", "1")
    get_settings.cache_clear()
    _store_for.cache_clear()
    store = Store(f"sqlite:///{demo_dir / 'demo.db'}")
    yield store
    store.dispose()
    get_settings.cache_clear()
    _store_for.cache_clear()


def explain_json(*args: str) -> dict:
    return json.loads(run("explain", *args, "--json").stdout)


def test_an_account_that_changed_tier_between_v1_and_v2_shows_both_and_travels_back(demo):
    with demo.session() as s:
        v2_at = s.scalar(select(IcpVersion.created_at).where(IcpVersion.number == 2))
        moved = s.scalar(
            select(FitHistory.external_id)
            .where(
                FitHistory.object_type == "account",
                FitHistory.icp_version == 2,
                FitHistory.previous_tier.is_not(None),
                FitHistory.previous_tier != FitHistory.tier,
            )
            .order_by(FitHistory.external_id)
            .limit(1)
        )
    assert moved is not None
    data = explain_json(moved)
    assert {"score", "tier", "coverage", "icp_version", "reasons", "history"} <= set(data)
    assert data["icp_version"] == 2
    assert [h["icp_version"] for h in data["history"]] == [1, 2]
    first, revision = data["history"]
    assert first["cause"] == "first" and first["from"] is None
    assert revision["cause"] in ("revision", "revision+data")
    assert revision["from"]["tier"] == first["to"]["tier"] != revision["to"]["tier"] == data["tier"]
    assert revision["why"].startswith("ICP revision") and "v1 → v2" in revision["why"]
    for reason in data["reasons"]:
        assert {"key", "value", "credit", "points", "text"} <= set(reason)

    before_v2 = (v2_at.replace(tzinfo=UTC) - timedelta(milliseconds=1)).isoformat()
    then = explain_json(moved, "--as-of", before_v2)["as_of"]
    assert (then["tier"], then["icp_version"]) == (first["to"]["tier"], 1)
    now = explain_json(moved, "--as-of", datetime.now(UTC).isoformat())["as_of"]
    assert (now["tier"], now["icp_version"]) == (data["tier"], 2)
    assert explain_json(moved, "--as-of", "2001-01-01")["as_of"]["tier"] is None

    text = run("explain", moved, "--as-of", before_v2).stdout
    assert "history" in text and "ICP revision (v1 → v2)" in text
    assert f"{first['to']['score']} {first['to']['tier']} under ICP v1" in text


def test_a_good_account_gets_a_next_tier_move_that_rescoring_confirms(demo):
    with demo.session() as s:
        rows = s.execute(
            select(RecordSnapshot.external_id, RecordSnapshot.attributes)
            .join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
            .where(RecordSnapshot.object_type == "account", RecordFit.tier == "good")
            .order_by(RecordSnapshot.external_id)
        ).all()
    scorer = Scorer(V2)
    checked = 0
    for external_id, attributes in rows:
        data = explain_json(external_id, "--object", "account")
        nxt = data["next_tier"]
        assert nxt["current"] == "good" and nxt["target"] == "best"
        for move in nxt["moves"]:
            lifted = scorer.score({**attributes, move["attribute"]: move["value"]})
            assert lifted.tier == "best" == move["tier"], (external_id, move)
            assert tier_rank(V2, lifted.tier) > tier_rank(V2, "good")
            assert move["text"] == f"{move['condition']} would make it best: {fmt_points(move['gain'])}"
            checked += 1
    assert checked, "the demo has good accounts one change away from best"


def test_the_crm_text_of_a_financial_services_account_names_the_industry(demo, demo_dir):
    with demo.session() as s:
        row = s.execute(
            select(RecordSnapshot.external_id, RecordFit.reasons_text, RecordFit.written)
            .join(RecordFit, RecordFit.snapshot_id == RecordSnapshot.id)
            .where(
                RecordSnapshot.object_type == "account",
                RecordSnapshot.attributes["industry"].as_string() == "Financial Services",
                RecordFit.tier != "disqualified",
            )
            .limit(1)
        ).first()
    assert row is not None
    assert "industry Financial Services +12" in row.reasons_text
    assert row.written["fit_reasons"] == row.reasons_text
    reimport = []  # each run writes its own folder, reimport/run-<id>/: read them in run order
    for folder in sorted(
        (demo_dir / "reimport").glob("run-*"), key=lambda p: int(p.name.removeprefix("run-"))
    ):
        if (folder / "account_updates.csv").exists():
            with open(folder / "account_updates.csv", encoding="utf-8") as fh:
                reimport += [r for r in csv.DictReader(fh) if row.external_id in r.values()]
    assert reimport and reimport[-1]["ICP_Fit_Reasons__c"] == row.reasons_text


def test_an_opportunity_shows_the_account_whose_fit_it_carries(demo):
    with demo.session() as s:
        opp, parent = s.execute(
            select(RecordSnapshot.external_id, RecordSnapshot.parent_id)
            .where(RecordSnapshot.object_type == "opportunity", RecordSnapshot.parent_id.is_not(None))
            .limit(1)
        ).one()
    data = explain_json(opp)
    account = explain_json(parent)
    assert data["carried_from"]["id"] == parent
    assert (data["score"], data["tier"]) == (account["score"], account["tier"])
    assert [r["text"] for r in data["reasons"]] == [r["text"] for r in account["reasons"]]
    assert data["reengage"] is None


def test_unknown_and_ambiguous_ids_exit_2_naming_the_candidates(demo):
    result = run("explain", "no-such-id", code=2)
    assert "no record 'no-such-id'" in result.output
    with demo.session() as s:
        account = s.scalar(select(RecordSnapshot).where(RecordSnapshot.object_type == "account").limit(1))
        other = Connection(name="second", crm="files", config={}, created_at=datetime.now(UTC))
        s.add(other)
        s.flush()
        s.execute(
            insert(RecordSnapshot),
            [
                {
                    "connection_id": other.id,
                    "object_type": "lead",
                    "external_id": account.external_id,
                    "name": "Same id, other CRM",
                    "attributes": {},
                    "status": {},
                    "warnings": [],
                    "crm_modstamp": "",
                    "dirty": True,
                    "pulled_at": datetime.now(UTC),
                }
            ],
        )
        ext = account.external_id
    try:
        result = run("explain", ext, code=2)
        assert "names 2 records" in result.output
        assert "--connection demo --object account" in result.output
        assert "--connection second --object lead" in result.output
        assert explain_json(ext, "--connection", "demo")["id"] == ext
        result = run("explain", ext, "--connection", "second", code=2)
        assert "not scored yet" in result.output
        run("explain", ext, "--object", "contact", code=2)
        assert "expected a date" in run("explain", ext, "--as-of", "yesterday", code=2).output
    finally:
        with demo.session() as s:
            s.delete(s.scalar(select(Connection).where(Connection.name == "second")))


def test_history_export_csv_and_parquet(demo, tmp_path):
    with demo.session() as s:
        total = s.scalar(select(func.count()).select_from(FitHistory))
        v2_at = s.scalar(select(IcpVersion.created_at).where(IcpVersion.number == 2))
        since_v2 = s.scalar(select(func.count()).select_from(FitHistory).where(FitHistory.icp_version == 2))
    out = tmp_path / "history.csv"
    assert f"{total:,} history rows" in run("history", "export", "-o", str(out)).stdout
    with open(out, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == total and tuple(rows[0]) == COLUMNS
    assert {r["cause"] for r in rows} <= {"first", "revision", "revision+data", "data", "account"}
    revised = [r for r in rows if r["icp_version"] == "2"]
    assert revised and all(r["previous_version"] == "1" and r["previous_tier"] for r in revised)

    run("history", "export", "-o", str(out), "--connection", "demo", "--since", v2_at.isoformat())
    with open(out, encoding="utf-8") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == since_v2

    pq = pytest.importorskip("pyarrow.parquet")  # pyarrow is in the dev extra: always there in CI
    parquet = tmp_path / "history.parquet"
    run("history", "export", "-o", str(parquet))
    table = pq.read_table(parquet)
    assert table.num_rows == total and tuple(table.column_names) == COLUMNS
    assert set(table.column("icp_version").to_pylist()) == {1, 2}

    assert (
        "must end in .csv or .parquet"
        in run("history", "export", "-o", str(tmp_path / "h.xlsx"), code=2).output
    )
    assert (
        "no connection 'nope'"
        in run("history", "export", "-o", str(out), "--connection", "nope", code=2).output
    )


def test_parquet_without_pyarrow_is_a_clear_exit_2(demo, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = run("history", "export", "-o", str(tmp_path / "h.parquet"), code=2)
    assert "needs pyarrow" in result.output and "icp-fit-worker[parquet]" in result.output
    assert not (tmp_path / "h.parquet").exists() and not (tmp_path / "h.parquet.partial").exists()


def _fill_history(store: Store, n: int) -> None:
    with store.session() as s:
        conn = Connection(name=f"c{n}", crm="files", config={}, created_at=datetime.now(UTC))
        s.add(conn)
        s.flush()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for base in range(0, n, 10_000):
            s.execute(
                insert(FitHistory.__table__),
                [
                    {
                        "connection_id": conn.id,
                        "object_type": "lead",
                        "external_id": f"L{i // 2:08d}",
                        "icp_version": 1 + i % 2,
                        "score": i % 100,
                        "tier": "poor",
                        "previous_tier": None if i % 2 == 0 else "good",
                        "run_id": 1,
                        "scored_at": start + timedelta(seconds=i),
                        "reasons_text": "x" * 120,
                    }
                    for i in range(base, min(n, base + 10_000))
                ],
            )


def _peak(store: Store, path: Path, connection: str) -> tuple[int, int]:
    tracemalloc.start()
    try:
        with store.session() as s:
            count = export_history(s, path, connection=connection, batch=1000)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_streams_memory_stays_flat_as_rows_grow(store, tmp_path):
    """Four times the rows must not need much more memory: rows are streamed, never all held."""
    _fill_history(store, 8_000)
    _fill_history(store, 32_000)
    small, small_peak = _peak(store, tmp_path / "small.csv", "c8000")
    large, large_peak = _peak(store, tmp_path / "large.csv", "c32000")
    assert (small, large) == (8_000, 32_000)
    # 24,000 more rows of ~200 bytes each would be ~5 MB if they were held
    assert large_peak < 1.5 * small_peak + 256 * 1024, (small_peak, large_peak)
    with open(tmp_path / "large.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["cause"] for r in rows[:2]] == ["first", "revision"]  # inferred for entries without a cause
    assert rows[1]["previous_version"] == "1" and rows[1]["previous_score"] == "0"


def test_a_change_of_the_records_own_data_is_a_data_change_in_its_history(demo, demo_dir):
    """Runs last in this module: it syncs the demo's CRM export again after editing one account."""
    path = demo_dir / "crm" / "accounts.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0])
    target = next(
        r
        for r in rows
        if (r["NumberOfEmployees"] or "").isdigit() and 200 <= int(r["NumberOfEmployees"]) < 500
    )
    before = explain_json(target["Id"], "--object", "account")
    assert before["reasons"][1]["key"] == "employees"
    target["NumberOfEmployees"] = "742"
    target["LastModifiedDate"] = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    run("sync", "--connection", "demo")
    after = explain_json(target["Id"], "--object", "account")
    last = after["history"][-1]
    assert (last["cause"], last["why"]) == ("data", "the record's data changed")
    assert last["icp_version"] == last["previous_version"] == 2
    assert last["from"] == {"score": before["score"], "tier": before["tier"]}
    assert last["to"]["score"] == before["score"] + 10 == after["score"]  # employees 0.6 → 1.0 of weight 25
    employees = next(r for r in after["reasons"] if r["key"] == "employees")
    assert (employees["raw"], employees["value"], employees["text"]) == (
        742,
        "742",
        "employees 742 ≥ 500: +25",
    )
    assert "employees 742 +25" in last["reasons_text"]


def test_explain_shows_the_crm_value_beside_the_normalised_one(demo, demo_dir):
    with open(demo_dir / "crm" / "accounts.csv", encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["BillingCountry"] == "USA")
    data = explain_json(row["Id"], "--object", "account")
    country = next(r for r in data["reasons"] if r["key"] == "country")
    assert (country["raw"], country["normalised"], country["value"]) == ("USA", "US", "US")
    text = run("explain", row["Id"], "--object", "account").stdout
    assert "USA" in text
