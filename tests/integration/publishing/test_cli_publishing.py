"""Safe publishing on the command line (issue 9): validation against the connections and the data, the
hold for approval (exit 3), approve/reject, and the outbox when the broker is down. On a files
connection built from the demo's sample CRM (the ``env`` fixture of test_cli)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from sqlalchemy import func, select

from tests.integration.test_cli import BUNDLED, run
from worker.settings import get_settings
from worker.store.db import get_store
from worker.store.models import FitHistory, IcpVersion, RecordFit, ReevaluationRequest, SyncRun

V1 = BUNDLED / "icp_v1.yaml"
V2 = BUNDLED / "icp_v2.yaml"


def crm_files(out: Path) -> dict[str, bytes]:
    """Everything the files connector wrote for the CRM to import (any run folder layout)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def store_state() -> dict[str, object]:
    with get_store().session() as s:
        return {
            "versions": [(v.number, v.status, v.decided_by) for v in s.scalars(select(IcpVersion))],
            "outbox": [(r.icp_version, r.status) for r in s.scalars(select(ReevaluationRequest))],
            "runs": s.scalar(select(func.count()).select_from(SyncRun)),
            "history": s.scalar(select(func.count()).select_from(FitHistory)),
            "fits": sorted(
                s.execute(select(RecordFit.snapshot_id, RecordFit.tier, RecordFit.icp_version)).all()
            ),
        }


def synced_v1(env: Path) -> None:
    run("icp", "publish", str(V1), "--note", "first")
    run("sync")


def variant(env: Path, name: str, old: str, new: str, source: Path = V1) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    path = env / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_misspelled_attribute_and_the_region_europe_are_refused_and_nothing_is_stored(env):
    synced_v1(env)
    typo = variant(
        env, "typo.yaml", "attribute: industry\n    weight: 30", "attribute: fundng_stage\n    weight: 30"
    )
    europe = variant(
        env, "europe.yaml", "  - key: revenue\n",
        "  - key: region\n    attribute: region\n    weight: 10\n    type: categorical\n"
        "    values: {Europe: 1.0, North America: 1.0}\n  - key: revenue\n",
    )  # fmt: skip
    before, files = store_state(), crm_files(env / "out")
    for path in (typo, europe):
        for command in (["icp", "validate", str(path)], ["icp", "publish", str(path), "-m", "x"]):
            result = run(*command, code=2)
            assert "Traceback" not in result.output
            if path == typo:
                assert f"{typo}:10 criteria[0].attribute: unknown attribute 'fundng_stage'" in result.output
                assert "did you mean `funding_stage`?" in result.output
            else:
                assert f"{europe}:34 criteria[3].values['Europe']: 'Europe' is not a region" in result.output
    assert store_state() == before, "a refused publish stores nothing"
    assert crm_files(env / "out") == files, "and writes nothing"


def test_validate_json_lists_errors_and_the_stores_warnings(env):
    synced_v1(env)
    typo = variant(
        env, "typo.yaml", "attribute: industry\n    weight: 30", "attribute: fundng_stage\n    weight: 30"
    )
    refused = json.loads(run("icp", "validate", str(typo), "--json", code=2).stdout)
    assert refused["ok"] is False and [e["field"] for e in refused["errors"]] == ["criteria[0].attribute"]
    assert refused["errors"][0]["line"] == 10 and "funding_stage" in refused["errors"][0]["message"]

    report = json.loads(run("icp", "validate", str(V2), "--json").stdout)
    assert report["ok"] is True and report["errors"] == [] and report["records"] > 0
    warned = {w["field"]: w["message"] for w in report["warnings"]}
    assert "no snapshot has industry 'Staffing'" in warned["disqualifiers[1].values[0]"]
    assert 0 <= report["insufficient_share"] < 1
    plain = run("icp", "validate", str(V2))
    assert "warning:" in plain.output and "ok" in plain.output


def test_a_revision_that_moves_most_tiers_is_held_then_written_after_approve(env, monkeypatch):
    synced_v1(env)
    lenient = variant(env, "lenient.yaml", "  best: 80\n  good: 60\n", "  best: 30\n  good: 10\n")
    before, files = store_state(), crm_files(env / "out")

    held = run("icp", "publish", str(lenient), "-m", "generous", code=3)
    assert "held for approval: icp-worker icp approve 2" in held.output
    assert "change tier, above the hold share 20%" in held.output
    after = store_state()
    assert after["versions"] == [(1, "published", None), (2, "held", None)]
    assert {k: v for k, v in after.items() if k != "versions"} == {
        k: v for k, v in before.items() if k != "versions"
    }
    assert crm_files(env / "out") == files, "a held version writes nothing"

    again = run("icp", "publish", str(lenient), "-m", "again", code=3)
    assert "already held as v2" in again.output
    sync = json.loads(run("sync", "--json").stdout)[0]
    assert sync["counts"].get("written", 0) == 0, (
        "runs keep scoring with the current version, not the held one"
    )
    with get_store().session() as s:
        assert s.scalar(select(SyncRun.icp_version).order_by(SyncRun.id.desc()).limit(1)) == 1

    approved = json.loads(run("icp", "approve", "2", "--by", "lead", "--json").stdout)
    assert approved["action"] == "approved" and approved["status"] == "approved"
    (reeval,) = approved["runs"]
    assert reeval["kind"] == "reevaluate" and reeval["counts"]["written"] > 0
    assert crm_files(env / "out") != files
    history = json.loads(run("icp", "history", "--json").stdout)
    assert [(v["version"], v["status"], v["decided_by"], v["current"]) for v in history] == [
        (1, "published", None, False),
        (2, "approved", "lead", True),
    ]
    assert history[1]["decided_at"] and history[1]["impact"]["reasons"]
    assert store_state()["outbox"] == [(2, "done")]
    run("icp", "approve", "2", code=2)


def test_yes_skips_the_hold_and_reject_drops_a_held_version(env, monkeypatch):
    synced_v1(env)
    lenient = variant(env, "lenient.yaml", "  best: 80\n  good: 60\n", "  best: 30\n  good: 10\n")
    other = variant(env, "other.yaml", "  best: 80\n  good: 60\n", "  best: 40\n  good: 5\n")
    run("icp", "publish", str(other), "-m", "too generous", code=3)
    monkeypatch.setenv("ICP_WORKER_USER", "reviewer")
    get_settings.cache_clear()
    assert "rejected ICP v2 by reviewer" in run("icp", "reject", "2").output
    published = json.loads(run("icp", "publish", str(lenient), "-m", "go", "--yes", "--json").stdout)
    assert published["action"] == "published" and published["version"] == 3
    assert published["runs"][0]["counts"]["written"] > 0
    table = run("icp", "history").output
    assert "rejected" in table and "published (current)" in table
    history = json.loads(run("icp", "history", "--json").stdout)
    assert [(v["status"], v["author"], v["decided_by"]) for v in history] == [
        ("published", history[0]["author"], None),
        ("rejected", history[0]["author"], "reviewer"),
        ("published", "reviewer", None),
    ]
    run("icp", "approve", "2", code=2)
    rollback = run("icp", "rollback", "1", code=3)
    assert "held for approval: icp-worker icp approve 4" in rollback.output
    rolled = json.loads(run("icp", "rollback", "1", "--yes", "--json").stdout)
    assert (rolled["action"], rolled["version"]) == ("approved", 4), "--yes approves the held rollback"
    assert rolled["runs"][0]["kind"] == "reevaluate"
    run("icp", "rollback", "2", code=2)  # rejected: it never scored


def test_a_per_connection_hold_share_holds_a_small_revision(env):
    synced_v1(env)
    config = Path(get_settings().icp_worker_config or env / "icp-worker.yaml")
    config.write_text(config.read_text(encoding="utf-8") + "    hold: {share: 0.0}\n", encoding="utf-8")
    get_settings.cache_clear()
    run("icp", "publish", str(V2), "-m", "q4", code=3)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_with_the_broker_down_publish_says_so_and_the_next_sync_reevaluates_first(env, monkeypatch):
    synced_v1(env)
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{closed_port()}/0")
    get_settings.cache_clear()
    started = time.monotonic()
    result = run("icp", "publish", str(V2), "-m", "q4")
    assert time.monotonic() - started < 60, "bounded timeouts: a dead broker never hangs a publish"
    lines = [line for line in result.output.splitlines() if "re-evaluation not queued" in line]
    assert len(lines) == 1 and "the broker is unreachable" in lines[0] and "icp-worker sync" in lines[0]
    assert store_state()["outbox"] == [(2, "pending")], "the request is kept, not lost"
    again = run("icp", "publish", str(V2), "-m", "q4")
    assert "identical to v2" in again.output and "re-evaluation not queued" in again.output

    monkeypatch.delenv("CELERY_BROKER_URL")
    get_settings.cache_clear()
    run("sync")
    with get_store().session() as s:
        kinds = [(r.kind, r.icp_version) for r in s.scalars(select(SyncRun).order_by(SyncRun.id))]
    assert kinds[-2:] == [("reevaluate", 2), ("incremental", 2)], "the owed re-evaluation runs first"
    assert store_state()["outbox"] == [(2, "done")]
