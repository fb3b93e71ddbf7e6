"""``icp derive`` and ``icp backtest`` end to end: snapshots in SQLite, history, report, draft, exit code."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import typer
from sqlalchemy import insert
from typer.testing import CliRunner

from worker.cli.analysis import register
from worker.icp.spec import parse_icp
from worker.icp.synthetic import signalless_history, synthetic_history
from worker.settings import get_settings
from worker.store.db import Store, get_store
from worker.store.history import load_history
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


# ------------------------------------------------------------------------------- the demo, and no signal


DEMO_TODAY = date(2026, 12, 1)
DEMO_SPLIT = date(2026, 1, 15)
FIRMOGRAPHICS = ("industry", "employees", "annual_revenue", "country", "region", "state", "tech_stack")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    """The bundled sample CRM (fixed day), synced through the files connector before any ICP is published
    (``sync --no-score``); the demo's ICP v2 is published afterwards, as the current ICP to beat."""
    from worker.cli.demo import bundled, demo_connection
    from worker.demo.sample_crm import write_sample_crm
    from worker.jobs import publish_file, sync_connection
    from worker.store.models import RecordFit

    folder = tmp_path_factory.mktemp("demo")
    write_sample_crm(folder / "crm", accounts=3000, today=DEMO_TODAY)
    url = f"sqlite:///{folder / 'demo.db'}"
    store = Store(url)
    summary = sync_connection(store, demo_connection(folder), kind="full", now=NOW, score=False)
    assert summary.status == "succeeded", summary
    assert summary.counts["pulled_account"] == 3000 and not summary.counts.get("written")
    with store.session() as s:
        assert s.query(RecordFit).count() == 0  # nothing scored: only snapshots
    publish_file(store, bundled("icp_v2.yaml"), note="demo v2", author="test")
    _insert_history(store, "noise", signalless_history())
    store.dispose()
    return url


@pytest.fixture
def demo_cli(demo_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", demo_url)
    get_settings.cache_clear()
    root = typer.Typer()
    icp_app = typer.Typer()
    register(icp_app)
    root.add_typer(icp_app, name="icp")
    runner = CliRunner()
    yield lambda *args: runner.invoke(root, ["icp", *args])
    get_store(demo_url).dispose()
    get_settings.cache_clear()


def _demo_history(url):
    store = Store(url)
    with store.session() as s:
        history = load_history(s, s.query(Connection.id).filter_by(name="demo").scalar())
    store.dispose()
    return history


def test_derive_needs_no_published_icp(demo_url, tmp_path, monkeypatch):
    """A first-time user syncs with --no-score and derives: no placeholder ICP to publish."""
    from worker.cli.demo import demo_connection
    from worker.demo.sample_crm import write_sample_crm
    from worker.jobs import sync_connection

    folder = tmp_path / "first"
    write_sample_crm(folder / "crm", accounts=400, today=DEMO_TODAY)
    url = f"sqlite:///{folder / 'first.db'}"
    store = Store(url)
    sync_connection(store, demo_connection(folder), kind="full", now=NOW, score=False)
    store.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    root, icp_app = typer.Typer(), typer.Typer()
    register(icp_app)
    root.add_typer(icp_app, name="icp")
    draft = tmp_path / "first.yaml"
    result = CliRunner().invoke(
        root, ["icp", "derive", "--connection", "demo", "-o", str(draft), "--min-support", "5"]
    )
    get_store(url).dispose()
    get_settings.cache_clear()
    assert result.exit_code in (0, 1), result.output
    assert "ICP derivation of connection demo" in result.output
    assert "accounts 400" in result.output


def test_demo_draft_uses_no_outcome_and_matches_a_logistic_regression(demo_cli, demo_url, tmp_path):
    from worker.cli.demo import bundled
    from worker.icp.backtest import backtest
    from worker.icp.logit import yardstick
    from worker.icp.spec import load_icp

    draft = tmp_path / "draft.yaml"
    result = demo_cli(
        "derive", "--connection", "demo", "-o", str(draft), "--split-date", DEMO_SPLIT.isoformat()
    )
    assert result.exit_code == 0, result.output
    assert "left out: account_type" in result.output and "sales state" in result.output
    assert "Verdict: better than chance on deals after 2026-01-15" in result.output
    assert f"--split-date {DEMO_SPLIT.isoformat()}`" in result.output  # the next command repeats it
    spec = parse_icp(draft.read_text(), str(draft))
    used = {c.attribute for c in spec.criteria} | {d.attribute for d in spec.disqualifiers}
    assert used and used <= set(FIRMOGRAPHICS), used
    history = _demo_history(demo_url)
    ours = backtest(spec, history, split_date=DEMO_SPLIT)
    model = yardstick(history, FIRMOGRAPHICS, split_date=DEMO_SPLIT)
    v1 = backtest(load_icp(bundled("icp_v1.yaml")), history, split_date=DEMO_SPLIT)
    v2 = backtest(load_icp(bundled("icp_v2.yaml")), history, split_date=DEMO_SPLIT)
    print(
        f"\ndemo, deals after {DEMO_SPLIT}: draft {ours.auc:.3f} [{ours.auc_lo:.3f}-{ours.auc_hi:.3f}], "
        f"logistic regression on the firmographics {model.auc:.3f}, v1 {v1.auc:.3f}, v2 {v2.auc:.3f}"
    )
    assert ours.auc >= model.auc - 0.03
    assert ours.auc > v2.auc  # the published ICP, which the verdict compared it with
    # The backtest shows the yardstick beside the ICP.
    result = demo_cli("backtest", str(draft), "--connection", "demo", "--split-date", DEMO_SPLIT.isoformat())
    assert result.exit_code == 0 and "a statistical model on the same data" in result.output


def test_including_the_outcome_attribute_is_possible_and_visible(demo_cli, tmp_path):
    draft = tmp_path / "leaky.yaml"
    result = demo_cli("derive", "--connection", "demo", "-o", str(draft), "--include", "account_type")
    assert result.exit_code == 0, result.output
    assert "account_type" in {c.attribute for c in parse_icp(draft.read_text(), "leaky.yaml").criteria}
    assert "in-sample" in result.output


def test_no_signal_exits_1_with_the_verdict_and_writes_nothing(demo_cli, tmp_path):
    draft = tmp_path / "noise.yaml"
    result = demo_cli("derive", "--connection", "noise", "-o", str(draft), "--split-date", "2017-09-15")
    assert result.exit_code == 1, result.output
    assert "No reliable pattern" in result.output and not draft.exists()
    # Ranked by won amount, big accounts with many deals look like a pattern: the backtest on later deals
    # says what it is.
    result = demo_cli(
        "derive",
        "--connection",
        "noise",
        "-o",
        str(draft),
        "--split-date",
        "2017-09-15",
        "--measure",
        "won_amount",
    )
    assert result.exit_code == 1, result.output
    assert "no better than chance on deals after 2017-09-15: no pattern found" in result.output
    assert "No draft ICP written" in result.output and not draft.exists()
    # --force writes it anyway, and says so in the file.
    result = demo_cli(
        "derive", "--connection", "noise", "-o", str(draft), "--split-date", "2017-09-15", "--measure",
        "won_amount", "--force",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    head = draft.read_text().splitlines()[0]
    assert head.startswith("# FORCED: written with --force although no better than chance")
    parse_icp(draft.read_text(), str(draft))


def test_json_with_output_file_prints_one_document(demo_cli, tmp_path):
    draft = tmp_path / "draft.yaml"
    result = demo_cli(
        "derive", "--connection", "demo", "-o", str(draft), "--split-date", DEMO_SPLIT.isoformat(), "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one document, nothing else
    assert data["written"] == str(draft) and data["verdict"]["ok"] is True
    assert data["report"]["excluded"][0]["attribute"] == "account_type"
    assert data["backtest"]["model_auc"] > 0.6 and data["current_backtest"]["icp_name"]
    assert data["next"].endswith(f"--split-date {DEMO_SPLIT.isoformat()}")
    result = demo_cli("derive", "--connection", "noise", "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["report"]["reliable"] is False


def test_stage_words_stand_in_for_missing_flags(tmp_path):
    """An export without IsClosed/IsWon: the stage says Closed Won / Closed Lost."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    history = synthetic_history(50, seed=2, planted=True)
    conn_id = _insert_history(store, "stages", history)
    from sqlalchemy import update

    with store.session() as s:
        for snap in s.query(RecordSnapshot).filter_by(object_type="opportunity"):
            status = {k: v for k, v in snap.status.items() if k not in ("is_closed", "is_won")}
            s.execute(update(RecordSnapshot).where(RecordSnapshot.id == snap.id).values(status=status))
    with store.session() as s:
        loaded = load_history(s, conn_id)
    store.dispose()
    # The open deal of the fixture has no stage and stays open; the orphan has none either (and no account).
    assert sum(a.closed for a in loaded) == sum(len(a.deals) for a in history)
    assert sum(a.wins for a in loaded) == sum(a.wins for a in history)


def test_an_attribute_mapped_from_the_customer_field_is_an_outcome(tmp_path, monkeypatch):
    """Salesforce's ``customer_field`` says which field means "customer": mapped as an attribute under any
    name, derive leaves it out and says why."""
    from worker.cli.analysis import _mapped_outcomes
    from worker.cli.common import STATE

    config = tmp_path / "icp-worker.yaml"
    config.write_text(
        "connections:\n"
        "  - name: sf\n"
        "    crm: salesforce\n"
        "    options:\n"
        "      auth: password\n"
        "      customer_field: Tier__c\n"
        "      fields: {account: {Tier__c: tier, Segment__c: segment}}\n"
    )
    monkeypatch.setattr(STATE, "config_path", config)
    monkeypatch.setattr(STATE, "_config", None)
    outcomes = _mapped_outcomes("sf")
    assert list(outcomes) == ["tier"] and "Tier__c" in outcomes["tier"]
    assert _mapped_outcomes("nope") == {}
    monkeypatch.setattr(STATE, "_config", None)
