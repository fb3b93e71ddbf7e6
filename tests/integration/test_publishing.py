"""worker.icp.publishing and worker.outbox on SQLite and PostgreSQL: a publish is never half-done, held and
rejected versions never score, approve makes a held version current and settles its re-evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from worker import outbox
from worker.config import ConnectionConfig, WorkerConfig
from worker.demo.sample_crm import DEMO_SYNONYMS, write_sample_crm
from worker.icp import publishing, versions
from worker.icp.spec import IcpValidationError
from worker.icp.versions import latest_icp
from worker.jobs import sync_connection
from worker.settings import Settings
from worker.store.models import IcpVersion, ReevaluationRequest, SyncRun

DEMO = Path(__file__).resolve().parents[2] / "worker" / "demo"
V1 = (DEMO / "icp_v1.yaml").read_text(encoding="utf-8")
V2 = (DEMO / "icp_v2.yaml").read_text(encoding="utf-8")
LENIENT = V1.replace("  best: 80\n  good: 60\n", "  best: 30\n  good: 10\n")
SETTINGS = Settings(_env_file=None)


@pytest.fixture
def synced(store, tmp_path):
    write_sample_crm(tmp_path / "crm", accounts=60)
    cfg = ConnectionConfig(name="demo", crm="files", industry_synonyms=DEMO_SYNONYMS,
                           options={"path": str(tmp_path / "crm"), "out": str(tmp_path / "out")})  # fmt: skip
    config = WorkerConfig(connections=[cfg])
    publishing.publish_text(store, config, V1, filename="v1.yaml", note="v1", author="t", settings=SETTINGS)
    sync_connection(store, cfg, kind="full")
    return store, config


def rows(store, model):
    with store.session() as s:
        return list(s.scalars(select(model).order_by(model.id)))


def test_the_version_and_its_reevaluation_request_commit_together_or_not_at_all(synced, monkeypatch):
    store, config = synced

    def broken(*args, **kwargs):
        raise RuntimeError("lost the database between the two inserts")

    monkeypatch.setattr(outbox, "request", broken)
    with pytest.raises(RuntimeError):
        publishing.publish_text(
            store, config, V2, filename="v2.yaml", note="v2", author="t", settings=SETTINGS
        )
    assert [v.number for v in rows(store, IcpVersion)] == [1]
    assert rows(store, ReevaluationRequest) == []


def test_a_published_version_owes_and_then_settles_its_reevaluation(synced):
    store, config = synced
    runs: list[str] = []

    def record(store_, cfg, *, kind, progress=None):
        runs.append(cfg.name)
        return sync_connection(store_, cfg, kind=kind)

    outcome = publishing.publish_text(store, config, V2, filename="v2.yaml", note="v2", author="t",
                                      settings=SETTINGS, yes=True)  # fmt: skip
    assert outcome.action == "published" and outcome.reevaluation is not None
    assert [(r.icp_version, r.status, r.run_id) for r in rows(store, ReevaluationRequest)] == [
        (2, "done", outcome.reevaluation.runs[0].run_id)
    ]
    again = publishing.carry_out(store, config, broker_url="", run=record)
    assert again.mode == "none" and runs == [], "nothing is owed twice"


def test_held_and_rejected_versions_never_score(synced):
    store, config = synced
    held = publishing.publish_text(store, config, LENIENT, filename="l.yaml", note="l", author="t",
                                   settings=SETTINGS)  # fmt: skip
    assert held.action == "held" and held.exit_code == publishing.EXIT_HELD and held.reasons
    with store.session() as s:
        assert latest_icp(s).number == 1 and versions.current_version(s).number == 1
    summary = sync_connection(store, config.connections[0], kind="reevaluate")
    with store.session() as s:
        assert s.get(SyncRun, summary.run_id).icp_version == 1
    publishing.reject(store, 2, by="boss")
    with pytest.raises(publishing.ApprovalError):
        publishing.approve(store, config, 2, by="boss")
    with store.session() as s:
        v2 = versions.get_version(s, 2)
        assert (v2.status, v2.decided_by) == ("rejected", "boss") and v2.decided_at is not None
        assert versions.current_version(s).number == 1


def test_approve_makes_the_held_version_current_and_reevaluates(synced):
    store, config = synced
    publishing.publish_text(
        store, config, LENIENT, filename="l.yaml", note="l", author="t", settings=SETTINGS
    )
    outcome = publishing.approve(store, config, 2, by="boss")
    assert outcome.action == "approved" and outcome.reevaluation.runs[0].counts["written"] > 0
    with store.session() as s:
        assert versions.current_version(s).number == 2
    assert [(r.icp_version, r.reason, r.status) for r in rows(store, ReevaluationRequest)] == [
        (2, "approve", "done")
    ]


def test_a_held_version_overtaken_by_a_newer_current_one_cannot_be_approved(synced):
    store, config = synced
    publishing.publish_text(
        store, config, LENIENT, filename="l.yaml", note="l", author="t", settings=SETTINGS
    )
    publishing.publish_text(store, config, V2, filename="v2.yaml", note="v2", author="t", settings=SETTINGS,
                            yes=True)  # fmt: skip
    with pytest.raises(publishing.ApprovalError, match="v3 became current after v2"):
        publishing.approve(store, config, 2, by="boss")


def test_a_refused_file_stores_nothing(synced):
    store, config = synced
    typo = V2.replace("attribute: industry\n    weight: 30", "attribute: fundng_stage\n    weight: 30")
    with pytest.raises(IcpValidationError, match="did you mean `funding_stage`"):
        publishing.publish_text(
            store, config, typo, filename="t.yaml", note="t", author="t", settings=SETTINGS
        )
    assert [v.number for v in rows(store, IcpVersion)] == [1]
