"""``icp derive`` and ``icp backtest`` end to end: snapshots in SQLite, history, report, draft, exit code."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import typer
from sqlalchemy import insert
from typer.testing import CliRunner

from worker.cli.analysis import register
from worker.icp.outcomes import load_history, synthetic_history
from worker.icp.spec import parse_icp
from worker.settings import get_settings
from worker.store.db import Store, get_store
from worker.store.models import Connection, RecordSnapshot

SPLIT = "2023-07-01"
NOW = datetime(2026, 11, 23, tzinfo=UTC)
PLAIN = """
name: Plain
criteria:
  - key: founded
    attribute: founded_year
    weight: 50
    type: bands
    bands: [{min: 2000, credit: 1.0}, {min: 1985, max: 2000, credit: 0.5}]
  - key: stack
    attribute: tech_stack
    weight: 50
    type: contains_any
    values: [Okta, Salesforce]
"""


def _insert_history(store: Store, name: str, history) -> int:
    """Accounts and their closed opportunities as snapshots, plus an open deal and an orphan, like a sync."""
    with store.session() as s:
        conn = Connection(name=name, crm="files", config={}, created_at=NOW)
        s.add(conn)
        s.flush()
        rows = []
        for a in history:
            rows.append(
                dict(connection_id=conn.id, object_type="account", external_id=a.account_id, name=a.name,
                     attributes=dict(a.attributes), status={}, pulled_at=NOW)
            )  # fmt: skip
            for d in a.deals:
                status = {"account_id": a.account_id, "stage": "Closed Won" if d.won else "Closed Lost",
                          "is_closed": True, "is_won": d.won, "amount": d.amount,
                          "close_date": d.close_date.isoformat()}  # fmt: skip
                rows.append(
                    dict(connection_id=conn.id, object_type="opportunity", external_id=d.opportunity_id,
                         name=None, attributes={}, status=status, pulled_at=NOW)
                )  # fmt: skip
        extra = [
            (
                "open-1",
                {"account_id": history[0].account_id, "is_closed": False, "is_won": False, "amount": 5},
            ),
            ("orphan-1", {"account_id": "nobody", "is_closed": True, "is_won": True, "amount": 5}),
        ]
        for ext, status in extra:
            rows.append(
                dict(connection_id=conn.id, object_type="opportunity", external_id=ext, name=None,
                     attributes={}, status=status, pulled_at=NOW)
            )  # fmt: skip
        s.execute(insert(RecordSnapshot), rows)
        return conn.id


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("analysis") / "t.db"
    url = f"sqlite:///{path}"
    store = Store(url)
    _insert_history(store, "acme", synthetic_history(2000, seed=4, planted=True))
    _insert_history(store, "flat", synthetic_history(2000, seed=1, planted=False))
    store.dispose()
    return url


@pytest.fixture
def cli(store_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", store_url)
    get_settings.cache_clear()
    root = typer.Typer()
    icp_app = typer.Typer()
    register(icp_app)
    root.add_typer(icp_app, name="icp")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(root, ["icp", *args])

    yield run
    get_store(store_url).dispose()
    get_settings.cache_clear()


def test_load_history_reads_accounts_and_closed_deals_only(store_url):
    expected = synthetic_history(2000, seed=4, planted=True)
    store = Store(store_url)
    with store.session() as s:
        conn_id = s.query(Connection.id).filter_by(name="acme").scalar()
        history = load_history(s, conn_id)
    store.dispose()
    assert len(history) == 2000
    by_id = {a.account_id: a for a in history}
    for a in expected[:50]:
        got = by_id[a.account_id]
        assert got.attributes == a.attributes
        assert [(d.opportunity_id, d.won, d.amount, d.close_date) for d in got.deals] == [
            (d.opportunity_id, d.won, d.amount, d.close_date) for d in a.deals
        ]
    assert sum(a.closed for a in history) == sum(len(a.deals) for a in expected)  # no open deal, no orphan


def test_derive_writes_a_draft_and_backtests_it_on_later_deals(cli, tmp_path):
    draft = tmp_path / "draft.yaml"
    result = cli("derive", "--connection", "acme", "-o", str(draft), "--split-date", SPLIT)
    assert result.exit_code == 0, result.output
    spec = parse_icp(draft.read_text(), str(draft))
    assert {"industry", "employees"} <= {c.attribute for c in spec.criteria}
    assert "Proposed criteria" in result.output
    assert "The draft on the deals it did not learn from" in result.output
    assert "ROC AUC" in result.output

    result = cli("backtest", str(draft), "--connection", "acme", "--split-date", SPLIT, "--json")
    assert result.exit_code == 0, result.output
    proposed = json.loads(result.stdout)
    plain = tmp_path / "plain.yaml"
    plain.write_text(PLAIN)
    result = cli("backtest", str(plain), "--connection", "acme", "--split-date", SPLIT, "--json")
    current = json.loads(result.stdout)
    assert proposed["deals"] == current["deals"] > 500
    assert proposed["auc"] > 0.75 > current["auc"] + 0.15
    print(f"\nCLI planted: AUC draft {proposed['auc']:.3f} vs plain {current['auc']:.3f}")

    result = cli("backtest", str(draft), "--connection", "acme")
    assert result.exit_code == 0 and "win rate" in result.output and "calibration" in result.output

    # The draft is there: a second derive refuses to overwrite it without --force.
    result = cli("derive", "--connection", "acme", "-o", str(draft))
    assert result.exit_code == 2 and "--force" in result.output
    assert cli("derive", "--connection", "acme", "-o", str(draft), "--force").exit_code == 0


def test_derive_prints_the_draft_to_stdout_without_output_file(cli):
    result = cli("derive", "--connection", "acme", "--measure", "wins")
    assert result.exit_code == 0
    parse_icp(result.stdout, "stdout.yaml")
    assert "ICP derivation" in result.stderr


def test_no_pattern_writes_no_draft_and_says_so(cli, tmp_path):
    draft = tmp_path / "none.yaml"
    result = cli("derive", "--connection", "flat", "-o", str(draft))
    assert result.exit_code == 1
    assert "No reliable pattern" in result.output
    assert not draft.exists()
    plain = tmp_path / "plain.yaml"
    plain.write_text(PLAIN)
    result = cli("backtest", str(plain), "--connection", "flat", "--json")
    assert abs(json.loads(result.stdout)["auc"] - 0.5) < 0.05


def test_unknown_connection_lists_the_known_ones(cli, tmp_path):
    result = cli("derive", "--connection", "nope", "-o", str(tmp_path / "x.yaml"))
    assert result.exit_code == 2
    assert "unknown connection 'nope'" in result.output and "acme, flat" in result.output
    plain = tmp_path / "plain.yaml"
    plain.write_text(PLAIN)
    result = cli("backtest", str(plain), "--connection", "nope")
    assert result.exit_code == 2 and "acme, flat" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split-date", "July"], "--split-date must be a date"),
        (["--measure", "happiness"], "--measure must be one of"),
        (["--top", "20"], "--top must be a share"),
    ],
)
def test_bad_options_are_clear_errors(cli, args, message):
    result = cli("derive", "--connection", "acme", *args)
    assert result.exit_code == 2 and message in result.output


def test_invalid_icp_file_is_exit_code_2(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncriteria: []\n")
    result = cli("backtest", str(bad), "--connection", "acme")
    assert result.exit_code == 2 and "invalid ICP file" in result.output
